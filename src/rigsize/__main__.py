import sys

from rigsize.cli import main

sys.exit(main())
