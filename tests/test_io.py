"""Tests of s3rec.io.atomic_path: whole files or nothing, and output paths that are not plain files."""

from __future__ import annotations

import os
import threading

import pytest

from s3rec.errors import S3RecError
from s3rec.io import atomic_path, write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert out.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]


def test_a_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(S3RecError, match=f"^{tmp_path}: is a folder"):
        write_text(tmp_path, "x")
    assert not list(tmp_path.parent.glob(f".{tmp_path.name}.*.tmp"))


def test_a_link_to_a_file_is_followed_and_stays_a_link(tmp_path):
    target, link = tmp_path / "target.txt", tmp_path / "link.txt"
    target.write_text("old")
    link.symlink_to(target)
    write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_stream_is_written_in_place_not_replaced(tmp_path):
    """/dev/stdout or a named pipe: a rename would put a regular file where the stream was."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    write_text(fifo, "through the pipe\n")
    reader.join(timeout=10)
    assert got == ["through the pipe\n"]
    assert fifo.exists() and not fifo.is_file() and os.listdir(tmp_path) == ["pipe"]
