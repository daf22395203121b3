"""``python -m parsner.cli``, as when the command line was the module ``parsner/cli.py``: ``python -m parsner``."""

import sys

from parsner.cli import main

sys.exit(main())
