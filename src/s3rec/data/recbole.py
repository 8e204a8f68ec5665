"""Loader for RecBole atomic files: `Name.inter` (interactions) and an optional `Name.item` (item features).

Both are tab-separated with a typed header (``user_id:token	item_id:token	timestamp:float``); the types
are token, token_seq (space-separated tokens), float and float_seq. The user field is ``user_id:token``,
the item field ``item_id:token`` and the time field ``timestamp:float`` (without it, file order is the
time order). In `.item`, every token_seq field and every token field other than item_id becomes an
attribute source; names are prefixed by their field (``categories=Books``), as in `s3rec.data.tables`.

Ordering, k-core filtering and id remapping are those of `s3rec.data.tables.load_table`: rows are sorted
by timestamp within each user (ties keep file order), users are numbered by first appearance and items
by first appearance in the time-sorted stream. Fields are read verbatim (no CSV quoting), so a line
number in an error is the line of the file.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from s3rec.data.dataset import SequenceData
from s3rec.data.tables import _id_column, _read_text, _time_key, attribute_vocabulary, build_sequences, item_rows
from s3rec.errors import DataError

TYPES = ("token", "token_seq", "float", "float_seq")
USER_FIELD, ITEM_FIELD, TIME_FIELD = "user_id:token", "item_id:token", "timestamp:float"


def load_atomic(
    inter_path: str | Path,
    item_path: str | Path | None = None,
    min_count: int = 5,
    name: str | None = None,
) -> SequenceData:
    """Load a RecBole `.inter` file (and optional `.item` file) as k-core filtered SequenceData."""
    inter_path = Path(inter_path)
    fields = read_header(inter_path)
    _require(inter_path, fields, USER_FIELD)
    _require(inter_path, fields, ITEM_FIELD)
    has_time = "timestamp" in fields
    if has_time:
        _require(inter_path, fields, TIME_FIELD)
    columns = [USER_FIELD, ITEM_FIELD] + ([TIME_FIELD] if has_time else [])
    table = _read_text(inter_path, columns, "\t", quoting=csv.QUOTE_NONE)
    users = _id_column(table, USER_FIELD)
    items = _id_column(table, ITEM_FIELD)
    time_key = _time_key(table, TIME_FIELD) if has_time else np.arange(len(users))
    offsets, seq_items, user_ids, item_ids, k_core = build_sequences(inter_path, users, items, time_key, min_count)

    if item_path is not None:
        attr_offsets, attr_values, attribute_names = _read_item_features(Path(item_path), item_ids)
    else:
        attr_offsets, attr_values = np.zeros(0, np.int64), np.zeros(0, np.int64)
        attribute_names = np.array([None], dtype=object)

    return SequenceData(
        name=name or inter_path.stem, offsets=offsets, items=seq_items, n_items=len(item_ids) - 1,
        attr_offsets=attr_offsets, attr_values=attr_values, n_attributes=len(attribute_names) - 1,
        user_ids=user_ids, item_ids=item_ids, attribute_names=attribute_names, source=str(inter_path),
        extra={"k_core": k_core},
    )


def read_header(path: Path) -> dict[str, str]:
    """{field name: type} of the typed header line of the atomic file at `path`, in file order."""
    if not path.is_file():
        raise DataError("file not found", path)
    with open(path, "rb") as f:
        first = f.readline()
        if not first.strip() and not f.read().strip():
            raise DataError("file is empty", path)
    try:
        header = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise DataError("cannot parse TSV: the header line is not valid UTF-8", path, 1) from None
    if not header.strip():
        raise DataError("the header line is empty (expected typed fields such as 'user_id:token')", path, 1)
    if "\t" not in header and len(header.split()) > 1:
        raise DataError("the header is not tab-separated (atomic files separate fields by tabs)", path, 1)
    fields: dict[str, str] = {}
    for field in header.split("\t"):
        name, sep, kind = field.rpartition(":")
        if not sep or not name:
            raise DataError(f"header field {field!r} is not typed as name:type (e.g. 'user_id:token')", path, 1)
        if kind not in TYPES:
            raise DataError(f"header field {field!r} has unknown type {kind!r} (expected {', '.join(TYPES)})", path, 1)
        if name in fields:
            raise DataError(f"header field {name!r} appears twice", path, 1)
        fields[name] = kind
    return fields


def _require(path: Path, fields: dict[str, str], typed: str) -> None:
    """Fail unless the header has field `typed` ("name:type") with exactly that type."""
    name, kind = typed.split(":")
    if name not in fields:
        found = ", ".join(repr(f"{n}:{t}") for n, t in fields.items())
        raise DataError(f"missing field {typed!r} in the header; found {found}", path, 1)
    if fields[name] != kind:
        raise DataError(f"field {name!r} must have type {kind}, found {name}:{fields[name]}", path, 1)


def _read_item_features(path: Path, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(attr_offsets, attr_values, attribute_names) for items 1..n_items from the `.item` file at `path`."""
    fields = read_header(path)
    _require(path, fields, ITEM_FIELD)
    sources = [(n, t) for n, t in fields.items() if t == "token_seq" or (t == "token" and n != "item_id")]
    table = _read_text(path, [ITEM_FIELD] + [f"{n}:{t}" for n, t in sources], "\t", quoting=csv.QUOTE_NONE)
    item_of = item_rows(item_ids, _id_column(table, ITEM_FIELD))
    known = table.frame[item_of > 0]  # rows of items not in the filtered interactions are ignored
    columns = []
    for n, t in sources:
        values = known[f"{n}:{t}"].astype("string")
        columns.append((n, values.str.split().explode() if t == "token_seq" else values))
    return attribute_vocabulary(len(item_ids) - 1, item_of, columns)
