"""User-facing errors (one line, naming the file and line at fault) and the console log of the CLI."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def one_line(text: object) -> str:
    """`text` (an exception's message, say) on one line: runs of blanks and newlines become one space."""
    return " ".join(str(text).split())


class S3RecError(Exception):
    """An error caused by input or configuration; the CLI prints it as one line and exits 2."""


class ConfigError(S3RecError, ValueError):
    """An invalid option value or name (a ValueError too, which option errors were before)."""


class DataError(S3RecError):
    """Malformed or unusable data, located by file and (where known) line."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")
        self.path = None if path is None else Path(path)
        self.line = line


def close_stdout() -> None:
    """Point standard output at the null device, so that later writes and the exit-time flush succeed."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # a stream without a descriptor (captured, notebook)
        sys.stdout = open(os.devnull, "w")
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


_stdout_open = True


def print_out(*args, **kwargs) -> None:
    """print and flush; once the reader of standard output has gone, print nothing and carry on."""
    # a reader that goes away (`s3rec run ... | head`) must not end hours of training: a run's results
    # go to files, so it goes on without its log
    global _stdout_open
    if not _stdout_open:
        return
    try:
        print(*args, **{"flush": True, **kwargs})
    except BrokenPipeError:
        _stdout_open = False
        close_stdout()
        try:
            print("warning: standard output was closed; the run goes on without printing its log", file=sys.stderr)
        except BrokenPipeError:  # stderr went with it (`2>&1 | head`)
            pass


def write_out(text: str) -> None:
    """Write `text` whole to standard output; BrokenPipeError once its reader has gone (the CLI exits 141)."""
    # one write(2) may take only part of a large text (its reader left, a signal came); unbuffered
    # standard output (PYTHONUNBUFFERED, common in containers) would drop the rest without an error
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # captured output, a notebook
        sys.stdout.write(text)
        return
    rest = memoryview(text.encode(sys.stdout.encoding or "utf-8", sys.stdout.errors or "strict"))
    while rest:
        rest = rest[os.write(fd, rest):]


def console_log(quiet: bool):
    """The CLI's `log`: print_out; under --quiet only warnings (lines starting "warning:"), to stderr."""
    if not quiet:
        return print_out

    def warnings_only(*args, **kwargs) -> None:
        if args and str(args[0]).startswith("warning:"):
            print(*args, file=sys.stderr)
    return warnings_only
