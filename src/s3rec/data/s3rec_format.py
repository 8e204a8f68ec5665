"""Loader for the S3-Rec release format: `Name.txt`, `Name_item2attributes.json`, optional `Name_sample.txt`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from s3rec.data.dataset import SequenceData, csr_from_lists
from s3rec.errors import DataError

_MAX_ID = int(np.iinfo(np.int64).max)  # ids are stored as int64


def _read_id_lines(path: Path, min_len: int, what: str) -> tuple[list[int], list[list[int]], list[int]]:
    """Parse `id v v v ...` lines into (ids, value lists, line numbers); errors name the file and line."""
    if not path.is_file():
        raise DataError("file not found", path)
    heads: list[int] = []
    rows: list[list[int]] = []
    linenos: list[int] = []
    try:
        with open(path, encoding="utf-8-sig") as f:  # a byte-order mark is not part of line 1
            for lineno, line in enumerate(f, start=1):
                parts = line.split()
                if not parts:
                    continue
                try:
                    values = [int(p) for p in parts]
                except ValueError:
                    raise DataError(f"non-integer id {_first_non_integer(parts)!r}", path, lineno) from None
                if min(values) < 1:
                    raise DataError(f"ids must be positive integers, got {min(values)}", path, lineno)
                if max(values) > _MAX_ID:
                    raise DataError(f"id {max(values)} is too large (ids must be below 2**63)", path, lineno)
                if len(values) - 1 < min_len:
                    raise DataError(f"{what} has {len(values) - 1} items, needs at least {min_len}", path, lineno)
                heads.append(values[0])
                rows.append(values[1:])
                linenos.append(lineno)
    except UnicodeDecodeError:
        raise not_utf8_error(path) from None
    if not rows:
        raise DataError("empty file", path)
    return heads, rows, linenos


def not_utf8_error(path: Path) -> DataError:
    """A DataError naming the first line of `path` that is not valid UTF-8."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return DataError(f"not valid UTF-8 text ({e.reason})", path, data.count(b"\n", 0, e.start) + 1)
    return DataError("not valid UTF-8 text", path)


def _first_non_integer(parts: list[str]) -> str:
    for p in parts:
        try:
            int(p)
        except ValueError:
            return p
    return parts[0]


def read_attributes(path: Path, n_items: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(attr_offsets, attr_values, n_attributes) from an `item2attributes.json` object."""
    if not path.is_file():
        raise DataError("file not found", path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise not_utf8_error(path) from None
    if not text.strip():
        raise DataError("empty file", path)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON: {e.msg}", path, e.lineno) from None
    except (ValueError, RecursionError) as e:  # an over-long integer literal, or nesting too deep to parse
        raise DataError(f"invalid JSON: {' '.join(str(e).split())}", path) from None
    if not isinstance(obj, dict):
        raise DataError(f"attribute file must be a JSON object {{item: [attributes]}}, got {type(obj).__name__}", path)
    lists: list[list[int]] = [[] for _ in range(n_items)]
    for key, attrs in obj.items():
        try:
            item = int(key)
        except ValueError:
            raise DataError(f"non-integer item id {key!r}", path) from None
        if not isinstance(attrs, list) or not all(isinstance(a, int) and not isinstance(a, bool) and 1 <= a <= _MAX_ID for a in attrs):
            raise DataError(f"item {key}: attributes must be a list of positive integers (below 2**63)", path)
        if 1 <= item <= n_items:  # attributes of items absent from the interactions are unused
            lists[item - 1] = attrs
    offsets, values = csr_from_lists(lists)
    n_attributes = int(values.max()) if len(values) else 0
    if n_attributes > 10 * len(np.unique(values)) + 10_000:
        raise DataError(f"attribute ids must be contiguous-ish (1..A): largest id {n_attributes} for "
                        f"{len(np.unique(values))} distinct attributes", path)
    return offsets, values, n_attributes


def load_s3rec_format(
    interactions: str | Path,
    attributes: str | Path | None = None,
    sample: str | Path | None = None,
    name: str | None = None,
) -> SequenceData:
    """Load `Name.txt` (user item item ...), its attribute JSON and optional fixed negatives."""
    interactions = Path(interactions)
    user_heads, seqs, linenos = _read_id_lines(interactions, min_len=3, what="user")
    offsets, items = csr_from_lists(seqs)
    n_items = int(items.max())
    n_distinct = len(np.unique(items))
    if n_items > 10 * n_distinct + 10_000:  # ids index embedding tables: a huge sparse id space would not fit
        raise DataError(f"item ids must be contiguous-ish (1..n): largest id {n_items} for {n_distinct} distinct items; "
                        "use a CSV/TSV/Parquet table, which remaps ids", interactions)
    user_ids = np.asarray(user_heads, dtype=np.int64)
    if len(np.unique(user_ids)) != len(user_ids):
        first_seen: dict[int, int] = {}
        for u, line in zip(user_heads, linenos):
            if u in first_seen:
                raise DataError(f"user {u} appears twice (first on line {first_seen[u]})", interactions, line)
            first_seen[u] = line
    if attributes is not None:
        attr_offsets, attr_values, n_attributes = read_attributes(Path(attributes), n_items)
    else:
        attr_offsets, attr_values, n_attributes = np.zeros(n_items + 1, np.int64), np.zeros(0, np.int64), 0

    fixed = None
    if sample is not None:
        fixed = _read_fixed_negatives(Path(sample), user_ids, offsets, items, n_items)
    item_ids = np.arange(n_items + 1, dtype=object)
    item_ids[0] = None
    return SequenceData(
        name=name or interactions.stem, offsets=offsets, items=items, n_items=n_items,
        attr_offsets=attr_offsets, attr_values=attr_values, n_attributes=n_attributes,
        user_ids=user_ids, item_ids=item_ids, fixed_negatives=fixed, source=str(interactions),
    )


def _read_fixed_negatives(path: Path, user_ids: np.ndarray, offsets: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """(n_users, K) negatives aligned with the user rows; every user must have a line of equal length."""
    heads, rows, linenos = _read_id_lines(path, min_len=1, what="negative list")
    width = len(rows[0])
    row_of = {int(u): r for r, u in enumerate(user_ids)}
    out = np.zeros((len(user_ids), width), dtype=np.int64)
    seen = np.zeros(len(user_ids), dtype=bool)
    for lineno, u, negs in zip(linenos, heads, rows):
        if u not in row_of:
            raise DataError(f"unknown user {u}", path, lineno)
        if len(negs) != width:
            raise DataError(f"expected {width} negatives, got {len(negs)}", path, lineno)
        if max(negs) > n_items:
            raise DataError(f"unknown item {max(negs)} (largest item id is {n_items})", path, lineno)
        if len(set(negs)) < len(negs):  # a repeated candidate would count twice against the target
            twice = next(i for i in negs if negs.count(i) > 1)
            raise DataError(f"user {u}: negative {twice} is listed twice (a user's negatives are distinct)", path, lineno)
        r = row_of[u]
        if seen[r]:
            raise DataError(f"user {u} has two lines of negatives", path, lineno)
        if np.intersect1d(negs, items[offsets[r] : offsets[r + 1]]).size:
            raise DataError(f"user {u}: a negative is an item the user interacted with", path, lineno)
        out[r] = negs
        seen[r] = True
    if not seen.all():
        raise DataError(f"{int((~seen).sum())} users have no negatives (e.g. user {int(user_ids[~seen][0])})", path)
    return out


def save_s3rec_format(data: SequenceData, folder: str | Path, name: str) -> Path:
    """Write `name.txt` and `name_item2attributes.json` (internal ids) atomically; returns the .txt path."""
    from s3rec.io import write_text

    folder = Path(folder)
    lines = (" ".join(map(str, [u + 1, *data.sequence(u).tolist()])) for u in range(data.n_users))
    write_text(folder / f"{name}.txt", "\n".join(lines) + "\n")
    attrs = {str(i): data.attributes_of(i).tolist() for i in range(1, data.n_items + 1) if len(data.attributes_of(i))}
    write_text(folder / f"{name}_item2attributes.json", json.dumps(attrs) + "\n")
    return folder / f"{name}.txt"
