import sys

from rigsize.shells.cli import main

sys.exit(main())
