"""Shared fixtures. Real-data tests read S3REC_DATA_DIR; with S3REC_REQUIRE_DATA=1 they must run, not skip."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The folder holding the S3-Rec benchmark files, or a skip (a failure when S3REC_REQUIRE_DATA=1)."""
    d = os.environ.get("S3REC_DATA_DIR")
    if d and Path(d, "LastFM.txt").is_file():
        return Path(d)
    if os.environ.get("S3REC_REQUIRE_DATA") == "1":
        pytest.fail(f"S3REC_REQUIRE_DATA=1 but no data in S3REC_DATA_DIR={d!r}")
    pytest.skip("real data not available: set S3REC_DATA_DIR")


@pytest.fixture
def one_thread():
    """torch on one thread for the test, as each --jobs worker is: the same run, bit for bit, both ways."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
