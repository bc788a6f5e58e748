"""`python -m allocator.study`: see allocator.cli.study."""

import sys

from allocator.cli.study import run

if __name__ == "__main__":
    sys.exit(run())
