"""`python -m s3rec` runs the command-line interface."""

import sys

from s3rec.cli import main

sys.exit(main())
