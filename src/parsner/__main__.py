import sys

from parsner.cli import main

sys.exit(main())
