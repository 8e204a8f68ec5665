"""Atomic file output: everything is written to a temporary file in the target folder, then renamed."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from s3rec.errors import S3RecError

try:
    import fcntl
except ImportError:  # Windows: no advisory file locks; folders are not guarded there
    fcntl = None


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    A link to a file is followed (the link stays); a stream that exists already (/dev/stdout, a named
    pipe) is yielded itself, as a rename would replace it with a regular file; a folder is an error.
    """
    path = Path(path)
    if path.is_dir():
        raise S3RecError(f"{path}: is a folder, expected a file path")
    if path.exists() and not path.is_file():
        yield path
        return
    if path.is_symlink():
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> None:
    """Write `text` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    """Write `obj` as indented JSON atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def append_jsonl(path: str | Path, obj: Any) -> None:
    """Append one JSON line (a log; a torn last line is the only possible damage)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


_HELD: set[str] = set()  # the folders whose lock this process holds


@contextmanager
def folder_lock(folder: str | Path, hold: bool = True) -> Iterator[None]:
    """Create `folder` if needed and hold its lock (its `.lock` file) while the block runs, however it ends.

    Two runs writing one run directory (the same command started twice) would interleave its
    checkpoints and logs; the second one gets a one-line error instead. `hold=False` takes no lock
    (the non-writing ranks of a distributed run) and creates nothing. A folder this process holds already
    is held again without a second lock (pretrain_run holds the folder that pretrain then holds).
    """
    if hold:
        make_folder(folder)
    key = os.path.realpath(folder)
    if not hold or fcntl is None or key in _HELD:
        yield
        return
    handle = open(Path(folder) / ".lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise S3RecError(f"{folder}: in use by another s3rec run; wait for it to finish or use another "
                         f"output folder") from None
    _HELD.add(key)
    try:
        yield
    finally:
        _HELD.discard(key)
        handle.close()


def make_folder(folder: str | Path) -> Path:
    """Create `folder` and its parents if missing; a file in the way is a one-line error."""
    folder = Path(folder)
    for part in (folder, *folder.parents):
        if part.exists() and not part.is_dir():
            raise S3RecError(f"{folder}: is a file, not a folder" if part == folder
                             else f"{folder}: cannot be an output folder, {part} is a file")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
