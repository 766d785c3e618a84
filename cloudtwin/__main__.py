"""``python -m cloudtwin``: the same as ``spider twin``."""

import sys

from cloudtwin.cli import main

sys.exit(main())
