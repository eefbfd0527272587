"""``python -m sem_upgrade``: the command line, as ``sem-upgrade``."""

import sys

from .cli import main

sys.exit(main())
