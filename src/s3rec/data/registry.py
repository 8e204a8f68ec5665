"""Registry of the public S3-Rec data sets, and a resolver that finds their files or downloads them.

Look-up, file by file:

1. the data directory (`data_dir` argument, else env ``S3REC_DATA_DIR``): a file there is the user's own
   copy and is used as is (not checksummed: people keep modified copies);
2. the cache (`cache_dir` argument, else env ``S3REC_CACHE``, else ``~/.cache/s3rec``): files are stored
   directly in it under their upstream names and are verified against the registry's SHA-256;
3. a download from the authors' repository into the cache, streamed into a temporary file and renamed
   only once its SHA-256 matches.

The optional file (``LastFM_sample.txt``) is downloaded only when a required file had to be downloaded too;
otherwise an absent optional file gives ``sample=None``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from s3rec.errors import DataError, S3RecError, one_line
from s3rec.io import atomic_path

UPSTREAM_URL = "https://raw.githubusercontent.com/RUCAIBox/CIKM2020-S3Rec/master/data/{file}"
DATA_DIR_ENV = "S3REC_DATA_DIR"
CACHE_ENV = "S3REC_CACHE"
DEFAULT_CACHE = Path("~/.cache/s3rec")
TIMEOUT_S = 60.0
_CHUNK = 1 << 20

# The function that opens a URL; tests replace it (monkeypatch) with one that serves local bytes.
# It is called as ``_urlopen(url, timeout=...)`` and must return a context manager with ``read(n)``.
_urlopen: Callable[..., object] = urllib.request.urlopen

# Errors that mean "the download did not work" (as opposed to a bad file or a local disk problem).
_NETWORK_ERRORS = (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException)


@dataclass(frozen=True)
class DataFile:
    """One file of a data set: its upstream name, SHA-256 and whether the set can do without it."""

    name: str
    sha256: str
    optional: bool = False

    @property
    def url(self) -> str:
        return UPSTREAM_URL.format(file=self.name)


@dataclass(frozen=True)
class DatasetSpec:
    """A data set in the registry.

    Args:
        key: canonical (lower-case) name, e.g. ``sports``.
        upstream: the authors' name, e.g. ``Sports_and_Outdoors`` (also the file-name stem).
        files: interactions file, attributes file, then optional files (``<upstream>_sample.txt``).
        licence: one line naming the terms the data come under.
    """

    key: str
    upstream: str
    files: tuple[DataFile, ...]
    licence: str

    def file(self, name: str) -> DataFile | None:
        return next((f for f in self.files if f.name == name), None)

    @property
    def interactions(self) -> DataFile:
        return self.file(f"{self.upstream}.txt")  # type: ignore[return-value]

    @property
    def attributes(self) -> DataFile:
        return self.file(f"{self.upstream}_item2attributes.json")  # type: ignore[return-value]

    @property
    def sample(self) -> DataFile | None:
        return self.file(f"{self.upstream}_sample.txt")


@dataclass(frozen=True)
class DatasetFiles:
    """Local paths of a resolved data set (`sample` is None when the set has none or it is absent)."""

    spec: DatasetSpec
    interactions: Path
    attributes: Path
    sample: Path | None = None


_AMAZON = "Amazon review data (McAuley) for research use"
_YELP = "Yelp Open Dataset terms"
_LASTFM = "HetRec 2011 Last.fm"


def _spec(key: str, upstream: str, licence: str, txt: str, attrs: str, sample: str | None = None) -> DatasetSpec:
    files = [DataFile(f"{upstream}.txt", txt), DataFile(f"{upstream}_item2attributes.json", attrs)]
    if sample is not None:
        files.append(DataFile(f"{upstream}_sample.txt", sample, optional=True))
    return DatasetSpec(key=key, upstream=upstream, files=tuple(files), licence=licence)


REGISTRY: dict[str, DatasetSpec] = {
    s.key: s
    for s in (
        _spec(
            "beauty", "Beauty", _AMAZON,
            "226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8",
            "129e40f67486f6877eff0f5318cfa8530ee8ac23d8b0d1de04e1bb7a2ba0b2d4",
        ),
        _spec(
            "sports", "Sports_and_Outdoors", _AMAZON,
            "2a095e0648872beb9982408958290f5d655db5be2911c3756b5446de9f0b8de2",
            "7fb10733ac4f1811384a52144cdefa7fcc7536fa80a7232c5da9bd789155c34b",
        ),
        _spec(
            "toys", "Toys_and_Games", _AMAZON,
            "176c680c688d497598c4a89a03b402c0fe78d795e5db335c2e78dd5f2d778a3f",
            "d371acd25101eedac04afc727626464b7acec770c4eda708705d51eb76eb1ad0",
        ),
        _spec(
            "yelp", "Yelp", _YELP,
            "724b219106b81dd2349027da997334ddb6da9fe2f152ad6e0d97a93170f7caed",
            "f25acd5e1e680e0b22fd4e3f4fb6be4b2a7461e9222610616e3e1ee6702dd58d",
        ),
        _spec(
            "lastfm", "LastFM", _LASTFM,
            "9ded486adb5b0fe9dc761950afa0a9a05e93ff018992e0c52bf11afec529f802",
            "a4ccd678dc9ff6d43fe5073f491db5c9b02eb98dfa4f8c0382913a784be217ef",
            "60194cc2e4fd1aa8b5dc8872e1f3af9c6abd09c39d478d3df9337cb97e6e2f0d",
        ),
    )
}


def dataset_names() -> list[str]:
    """The canonical keys of the registry, in registry order."""
    return list(REGISTRY)


def _normalise(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip()).lower()


_ALIASES: dict[str, str] = {}
for _s in REGISTRY.values():
    _ALIASES[_s.key] = _s.key
    _ALIASES[_normalise(_s.upstream)] = _s.key


def get_spec(name: str) -> DatasetSpec:
    """The spec for `name` (case-insensitive; canonical key or upstream name such as ``Sports_and_Outdoors``)."""
    key = _ALIASES.get(_normalise(name))
    if key is None:
        known = ", ".join(f"{s.key} ({s.upstream})" for s in REGISTRY.values())
        raise S3RecError(f"unknown data set {name!r}: known data sets are {known}")
    return REGISTRY[key]


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def download_file(file: DataFile, dest: str | Path, progress: bool = True, timeout: float = TIMEOUT_S) -> Path:
    """Download `file` to `dest`, verified against its SHA-256; nothing is left at `dest` on failure.

    Raises:
        DataError: the downloaded bytes do not have the expected SHA-256.
        URLError, TimeoutError, ConnectionError, HTTPException: the download failed.
    """
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        h = hashlib.sha256()
        n = 0
        with _urlopen(file.url, timeout=timeout) as resp:  # type: ignore[attr-defined]
            headers = getattr(resp, "headers", None)
            length = headers.get("Content-Length") if headers is not None else None
            total = int(length) if length and str(length).isdigit() else None
            with open(tmp, "wb") as out, tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024,
                desc=file.name, disable=not progress, leave=False,
            ) as bar:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    n += len(chunk)
                    bar.update(len(chunk))
        actual = h.hexdigest()
        if actual != file.sha256:
            raise DataError(
                f"checksum mismatch for downloaded {file.name} from {file.url} "
                f"(expected sha256 {file.sha256}, got {actual}, {n} bytes); the download was discarded",
                path=dest,
            )
        os.chmod(tmp, 0o644)
    return dest


def _data_dir(data_dir: str | Path | None) -> tuple[Path | None, str]:
    """The data directory to search and how to name it in messages ('' when there is none)."""
    if data_dir is not None and str(data_dir) != "":
        path, label = Path(data_dir).expanduser(), f"data dir {data_dir}"
    elif os.environ.get(DATA_DIR_ENV):
        path, label = Path(os.environ[DATA_DIR_ENV]).expanduser(), f"${DATA_DIR_ENV}={os.environ[DATA_DIR_ENV]}"
    else:
        return None, ""
    if not path.is_dir():
        raise S3RecError(f"{label} is not a directory")
    return path, label


def _cache_dir(cache_dir: str | Path | None) -> tuple[Path, str]:
    if cache_dir is not None and str(cache_dir) != "":
        return Path(cache_dir).expanduser(), f"cache {cache_dir}"
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser(), f"cache ${CACHE_ENV}={os.environ[CACHE_ENV]}"
    return DEFAULT_CACHE.expanduser(), f"cache {DEFAULT_CACHE}"


def _cached(file: DataFile, cache: Path) -> Path | None:
    path = cache / file.name
    if not path.is_file():
        return None
    actual = sha256_file(path)
    if actual != file.sha256:
        raise DataError(
            f"cached {file.name} is corrupt (expected sha256 {file.sha256}, got {actual}): "
            f"delete it and run again to download it afresh",
            path=path,
        )
    return path


def resolve_dataset(
    name: str,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    download: bool = True,
    progress: bool = True,
) -> DatasetFiles:
    """Find the files of data set `name` locally, downloading missing ones into the cache if allowed.

    Raises:
        S3RecError: unknown name; data dir not a directory; required files missing and the download
            disabled or failed (one line naming the files, the folders searched and what to do).
        DataError: a cached or downloaded file does not have the registry's SHA-256.
    """
    spec = get_spec(name)
    data, data_label = _data_dir(data_dir)
    cache, cache_label = _cache_dir(cache_dir)

    found: dict[str, Path] = {}
    missing: list[DataFile] = []
    for f in spec.files:
        if data is not None and (data / f.name).is_file():
            found[f.name] = data / f.name
        elif (path := _cached(f, cache)) is not None:
            found[f.name] = path
        else:
            missing.append(f)

    required = [f for f in missing if not f.optional]
    if required:
        searched = f"{data_label} or {cache_label}" if data_label else f"{cache_label} (no data dir given)"
        names = ", ".join(f.name for f in required)
        where = "one of these folders" if data_label else "that folder"
        hint = f"put them in {where} or pass --data-dir (or set ${DATA_DIR_ENV})"
        if not download:
            raise S3RecError(f"{names} not found in {searched} and download is disabled: {hint}")
        for f in required:
            try:
                found[f.name] = download_file(f, cache / f.name, progress=progress)
            except _NETWORK_ERRORS as exc:
                still = ", ".join(g.name for g in required if g.name not in found)
                reason = one_line(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}")
                raise S3RecError(
                    f"{still} not found in {searched} and download failed "
                    f"({reason}; from {UPSTREAM_URL.format(file='')}): {hint}"
                ) from exc
        # Optional files come along only with a download of the required ones; their absence upstream
        # (or a network hiccup) is not fatal, but a wrong checksum still is.
        for f in missing:
            if f.optional:
                try:
                    found[f.name] = download_file(f, cache / f.name, progress=progress)
                except _NETWORK_ERRORS:
                    pass

    sample = spec.sample
    return DatasetFiles(
        spec=spec,
        interactions=found[spec.interactions.name],
        attributes=found[spec.attributes.name],
        sample=found.get(sample.name) if sample is not None else None,
    )
