"""`python -m core.kernels`: the kernels lab's command line (see `core.kernels.filtering.main`)."""

import sys

from core.kernels.filtering import main

sys.exit(main())
