"""`python -m allocator.broker`: one embedded broker in the foreground (see allocator.broker.embedded)."""

import sys

from allocator.broker.embedded import main

sys.exit(main())
