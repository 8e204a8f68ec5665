"""`python -m s3rec.cli` runs the command-line interface, as `python -m s3rec` does."""

import sys

from s3rec.cli import main

sys.exit(main())
