"""`python -m core.catdog`: the catdog lab's command line (see `core.catdog.classify.main`)."""

import sys

from core.catdog.classify import main

sys.exit(main())
