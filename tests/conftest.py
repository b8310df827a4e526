import os
import sys
from pathlib import Path

from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))  # the _hf helpers

# Property tests draw the same examples on every run (CI and here): a failure is then reproducible,
# and a submission's CI does not depend on which random examples it drew.  HYPOTHESIS_PROFILE=explore
# draws fresh ones while working.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
