"""``python -m rnngraph``: the command line."""

import sys

from rnngraph.tools.cli import main

if __name__ == "__main__":
    sys.exit(main())
