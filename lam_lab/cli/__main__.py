"""``python -m lam_lab.cli ...`` is the same as ``lam-lab ...``."""

import sys

from lam_lab.cli import main

sys.exit(main())
