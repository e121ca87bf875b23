"""`python -m core.architectures`: the architectures lab's command line (see `core.architectures.results.main`)."""

import sys

from core.architectures.results import main

sys.exit(main())
