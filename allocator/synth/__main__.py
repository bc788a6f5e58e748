"""`python -m allocator.synth`: generate the recorded dataset or print a file's statistics."""

import sys

from allocator.synth.generator import main

sys.exit(main())
