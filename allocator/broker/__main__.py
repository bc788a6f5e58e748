"""`python -m allocator.broker`: the command line lives in allocator.cli.broker."""

import sys

from allocator.cli.broker import main

sys.exit(main())
