"""User-facing errors (one line, naming the file and line at fault) and the console log of the CLI."""

from __future__ import annotations

import sys
from pathlib import Path


class S3RecError(Exception):
    """An error caused by input or configuration; the CLI prints it as one line and exits 2."""


class DataError(S3RecError):
    """Malformed or unusable data, located by file and (where known) line."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")
        self.path = None if path is None else Path(path)
        self.line = line


def console_log(quiet: bool):
    """The CLI's `log`: print; under --quiet only warnings (lines starting "warning:"), to stderr."""
    if not quiet:
        return print

    def warnings_only(*args, **kwargs) -> None:
        if args and str(args[0]).startswith("warning:"):
            print(*args, file=sys.stderr)
    return warnings_only
