"""Tests of the data-set registry and resolver (no network: the URL opener is monkeypatched)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import socket
import urllib.error
from pathlib import Path

import pytest

from s3rec.data import registry
from s3rec.data.registry import DataFile, DatasetSpec, dataset_names, get_spec, resolve_dataset, sha256_file
from s3rec.errors import DataError, S3RecError

# Read before the autouse fixture clears the variables.
REAL_DATA_DIR = os.environ.get("S3REC_DATA_DIR")
REQUIRE_DATA = os.environ.get("S3REC_REQUIRE_DATA") == "1"

TXT = b"1 1 2 3 4 5\n2 2 3 4 5 6\n"
ATTRS = b'{"1": [1], "2": [1, 2]}\n'
SAMPLE = b"1 7 8 9\n2 7 8 9\n"
PAYLOAD = {"LastFM.txt": TXT, "LastFM_item2attributes.json": ATTRS, "LastFM_sample.txt": SAMPLE}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakeResponse:
    def __init__(self, data: bytes, content_length: bool = True):
        self._buf = io.BytesIO(data)
        self.headers = {"Content-Length": str(len(data))} if content_length else {}

    def read(self, n: int = -1) -> bytes:
        return self._buf.read(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeServer:
    """Serves bytes by file name; records the URLs asked for."""

    def __init__(self, files: dict[str, bytes], error: Exception | None = None):
        self.files = files
        self.error = error
        self.calls: list[str] = []

    def __call__(self, url: str, timeout: float | None = None):
        self.calls.append(url)
        if self.error is not None:
            raise self.error
        name = url.rsplit("/", 1)[-1]
        if name not in self.files:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        return FakeResponse(self.files[name])


def no_network(url, timeout=None):
    raise AssertionError(f"unexpected download of {url}")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No env configuration, a fake home (so ~/.cache is never the real one) and no network."""
    monkeypatch.delenv("S3REC_DATA_DIR", raising=False)
    monkeypatch.delenv("S3REC_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(registry, "_urlopen", no_network)


@pytest.fixture
def tiny(monkeypatch) -> DatasetSpec:
    """Replace the `lastfm` spec by one whose hashes are those of the tiny payloads above."""
    spec = DatasetSpec(
        key="lastfm",
        upstream="LastFM",
        files=(
            DataFile("LastFM.txt", sha(TXT)),
            DataFile("LastFM_item2attributes.json", sha(ATTRS)),
            DataFile("LastFM_sample.txt", sha(SAMPLE), optional=True),
        ),
        licence="HetRec 2011 Last.fm",
    )
    monkeypatch.setitem(registry.REGISTRY, "lastfm", spec)
    return spec


def put(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


# ---------------------------------------------------------------- registry and names


def test_dataset_names():
    assert dataset_names() == ["beauty", "sports", "toys", "yelp", "lastfm"]


@pytest.mark.parametrize(
    "name, key",
    [
        ("beauty", "beauty"), ("BEAUTY", "beauty"), ("Beauty", "beauty"),
        ("sports", "sports"), ("Sports_and_Outdoors", "sports"), ("sports_and_outdoors", "sports"),
        ("Toys", "toys"), ("Toys_and_Games", "toys"), ("toys-and-games", "toys"),
        ("Yelp", "yelp"), ("LastFM", "lastfm"), ("lastFM", "lastfm"), (" lastfm ", "lastfm"),
    ],
)
def test_name_normalisation(name, key):
    assert get_spec(name).key == key


def test_unknown_name_lists_known_names():
    with pytest.raises(S3RecError) as err:
        get_spec("movielens")
    msg = str(err.value)
    assert "movielens" in msg and "\n" not in msg
    for key in dataset_names():
        assert key in msg
    with pytest.raises(S3RecError):
        resolve_dataset("movielens", download=False)


def test_specs():
    for key in dataset_names():
        spec = get_spec(key)
        assert spec.interactions.name == f"{spec.upstream}.txt"
        assert spec.attributes.name == f"{spec.upstream}_item2attributes.json"
        assert spec.licence and "\n" not in spec.licence
        for f in spec.files:
            assert f.url == f"https://raw.githubusercontent.com/RUCAIBox/CIKM2020-S3Rec/master/data/{f.name}"
            assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0
    assert get_spec("lastfm").sample.optional
    assert get_spec("beauty").sample is None
    assert "McAuley" in get_spec("toys").licence
    assert "Yelp" in get_spec("yelp").licence
    assert "HetRec" in get_spec("lastfm").licence
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_spec("beauty").key = "x"  # type: ignore[misc]


# ---------------------------------------------------------------- local look-up


def test_data_dir_beats_cache_and_is_not_checksummed(tiny, tmp_path):
    data = put(tmp_path / "data", {"LastFM.txt": b"1 1 2 3 4 5 9\n", "LastFM_item2attributes.json": b"{}\n"})
    cache = put(tmp_path / "cache", PAYLOAD)
    files = resolve_dataset("lastfm", data_dir=data, cache_dir=cache, progress=False)
    assert files.spec is tiny
    assert files.interactions == data / "LastFM.txt"
    assert files.attributes == data / "LastFM_item2attributes.json"
    assert files.sample == cache / "LastFM_sample.txt"  # per file: not in the data dir, so from the cache
    with pytest.raises(dataclasses.FrozenInstanceError):
        files.sample = None  # type: ignore[misc]


def test_env_data_dir_honoured_and_argument_wins(tiny, tmp_path, monkeypatch):
    env_dir = put(tmp_path / "env", PAYLOAD)
    arg_dir = put(tmp_path / "arg", {"LastFM.txt": TXT})
    monkeypatch.setenv("S3REC_DATA_DIR", str(env_dir))
    files = resolve_dataset("LastFM", cache_dir=tmp_path / "cache", download=False)
    assert (files.interactions, files.attributes, files.sample) == (
        env_dir / "LastFM.txt", env_dir / "LastFM_item2attributes.json", env_dir / "LastFM_sample.txt",
    )
    put(tmp_path / "cache", {"LastFM_item2attributes.json": ATTRS})
    files = resolve_dataset("lastfm", data_dir=arg_dir, cache_dir=tmp_path / "cache", download=False)
    assert files.interactions == arg_dir / "LastFM.txt"
    assert files.attributes == tmp_path / "cache" / "LastFM_item2attributes.json"
    assert files.sample is None


def test_env_cache_honoured(tiny, tmp_path, monkeypatch):
    cache = put(tmp_path / "envcache", PAYLOAD)
    monkeypatch.setenv("S3REC_CACHE", str(cache))
    files = resolve_dataset("lastfm", download=False)
    assert files.interactions == cache / "LastFM.txt"


def test_missing_data_dir_is_an_error(tiny, tmp_path):
    with pytest.raises(S3RecError, match="not a directory"):
        resolve_dataset("lastfm", data_dir=tmp_path / "nope", cache_dir=tmp_path / "cache")


def test_corrupt_cache_file_is_an_error(tiny, tmp_path):
    cache = put(tmp_path / "cache", {**PAYLOAD, "LastFM_item2attributes.json": b'{"1": [2]}\n'})
    with pytest.raises(DataError) as err:
        resolve_dataset("lastfm", cache_dir=cache, progress=False)
    msg = str(err.value)
    assert "LastFM_item2attributes.json" in msg and "delete" in msg and "\n" not in msg
    assert sha(ATTRS) in msg


def test_optional_sample_absent_gives_none(tiny, tmp_path):
    cache = put(tmp_path / "cache", {"LastFM.txt": TXT, "LastFM_item2attributes.json": ATTRS})
    files = resolve_dataset("lastfm", cache_dir=cache, progress=False)  # no_network: nothing downloaded
    assert files.sample is None
    assert files.interactions.read_bytes() == TXT


# ---------------------------------------------------------------- download


def test_download_verified_into_cache(tiny, tmp_path, monkeypatch):
    server = FakeServer(PAYLOAD)
    monkeypatch.setattr(registry, "_urlopen", server)
    cache = tmp_path / "cache"
    files = resolve_dataset("lastfm", cache_dir=cache, progress=False)
    assert files.interactions == cache / "LastFM.txt" and files.interactions.read_bytes() == TXT
    assert files.attributes.read_bytes() == ATTRS
    assert files.sample == cache / "LastFM_sample.txt" and files.sample.read_bytes() == SAMPLE
    assert sorted(p.name for p in cache.iterdir()) == sorted(PAYLOAD)  # no temporary files
    assert server.calls == [f.url for f in tiny.files]
    # A second call finds everything in the cache.
    monkeypatch.setattr(registry, "_urlopen", no_network)
    assert resolve_dataset("lastfm", cache_dir=cache, progress=False) == files


def test_download_only_missing_files_with_progress(tiny, tmp_path, monkeypatch, capsys):
    server = FakeServer(PAYLOAD)
    monkeypatch.setattr(registry, "_urlopen", server)
    cache = put(tmp_path / "cache", {"LastFM.txt": TXT})
    files = resolve_dataset("lastfm", cache_dir=cache, progress=True)
    assert [u.rsplit("/", 1)[-1] for u in server.calls] == ["LastFM_item2attributes.json", "LastFM_sample.txt"]
    assert files.sample is not None


def test_optional_file_unavailable_upstream_is_not_fatal(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_urlopen", FakeServer({"LastFM.txt": TXT, "LastFM_item2attributes.json": ATTRS}))
    files = resolve_dataset("lastfm", cache_dir=tmp_path / "cache", progress=False)
    assert files.sample is None
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["LastFM.txt", "LastFM_item2attributes.json"]


def test_download_checksum_mismatch_leaves_nothing(tiny, tmp_path, monkeypatch):
    bad = TXT + b"3 1 2 3 4 5\n"
    monkeypatch.setattr(registry, "_urlopen", FakeServer({**PAYLOAD, "LastFM.txt": bad}))
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as err:
        resolve_dataset("lastfm", cache_dir=cache, progress=False)
    msg = str(err.value)
    assert "LastFM.txt" in msg and sha(TXT) in msg and sha(bad) in msg and "\n" not in msg
    assert list(cache.iterdir()) == []  # neither the file nor a temporary one


def test_download_function_directly(tmp_path, monkeypatch):
    f = DataFile("X.txt", sha(b"abc"))
    monkeypatch.setattr(registry, "_urlopen", FakeServer({"X.txt": b"abc"}))
    assert registry.download_file(f, tmp_path / "X.txt", progress=False).read_bytes() == b"abc"
    assert sha256_file(tmp_path / "X.txt") == sha(b"abc")


@pytest.mark.parametrize(
    "error",
    [urllib.error.URLError("[Errno -3] Temporary failure\nin name resolution"), socket.timeout("timed out")],
)
def test_offline_is_one_line_naming_files_and_folders(tiny, tmp_path, monkeypatch, error):
    server = FakeServer(PAYLOAD, error=error)
    monkeypatch.setattr(registry, "_urlopen", server)
    data = put(tmp_path / "data", {"other.txt": b""})
    monkeypatch.setenv("S3REC_DATA_DIR", str(data))
    cache = tmp_path / "cache"
    with pytest.raises(S3RecError) as err:
        resolve_dataset("lastfm", cache_dir=cache, progress=False)
    assert not isinstance(err.value, DataError)
    msg = str(err.value)
    assert "\n" not in msg
    assert "LastFM.txt" in msg and "LastFM_item2attributes.json" in msg
    assert "LastFM_sample.txt" not in msg  # optional: not required
    assert str(data) in msg and "S3REC_DATA_DIR" in msg and str(cache) in msg
    assert "download failed" in msg and "--data-dir" in msg
    assert not cache.exists() or list(cache.iterdir()) == []


def test_download_disabled(tiny, tmp_path):
    cache = put(tmp_path / "cache", {"LastFM.txt": TXT})
    with pytest.raises(S3RecError) as err:
        resolve_dataset("lastfm", cache_dir=cache, download=False)
    msg = str(err.value)
    assert "LastFM_item2attributes.json" in msg and "LastFM.txt" not in msg.split(" not found")[0]
    assert "download is disabled" in msg and "\n" not in msg


# ---------------------------------------------------------------- the real files


def test_real_files_match_registry(tmp_path):
    if not REAL_DATA_DIR:
        if REQUIRE_DATA:
            pytest.fail("S3REC_REQUIRE_DATA=1 but S3REC_DATA_DIR is not set")
        pytest.skip("S3REC_DATA_DIR not set")
    data = Path(REAL_DATA_DIR)
    cache = tmp_path / "empty-cache"
    lastfm = resolve_dataset("lastfm", data_dir=data, cache_dir=cache, download=False)
    beauty = resolve_dataset("Beauty", data_dir=data, cache_dir=cache, download=False)
    assert lastfm.sample is not None and beauty.sample is None
    for files in (lastfm, beauty):
        for path in (files.interactions, files.attributes, files.sample):
            if path is None:
                continue
            assert path.is_file() and path.parent == data
            assert sha256_file(path) == files.spec.file(path.name).sha256, path.name
    # Any other registry file present there must match too.
    for key in dataset_names():
        for f in get_spec(key).files:
            if (data / f.name).is_file():
                assert sha256_file(data / f.name) == f.sha256, f.name
