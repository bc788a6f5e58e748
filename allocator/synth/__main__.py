"""`python -m allocator.synth`: generate the recorded dataset or print a file's statistics."""

import sys

from allocator.synth.cli import main

sys.exit(main())
