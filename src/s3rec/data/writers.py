"""Writers of a SequenceData in every format the loaders read, each file written atomically.

  s3rec    Name.txt + Name_item2attributes.json (internal ids; `s3rec_format.save_s3rec_format`)
  csv/tsv  interactions (user_id, item_id, timestamp) + `<stem>_items<suffix>` (item_id, categories: a|b)
  parquet  the same two tables as Parquet
  recbole  RecBole atomic files Name.inter (user_id:token, item_id:token, timestamp:float) + Name.item
           (item_id:token, categories:token_seq)

Tables use the raw ids (`user_ids`, `item_ids`, `attribute_names`, else attribute ids); the timestamp
is the position in the user's sequence, so every loader restores the order. The companion file is
written before the interactions file, so a complete interactions file always has its companion.
Built with Arrow's vectorised writers: 20M interactions take seconds, not minutes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from s3rec.data.dataset import SequenceData
from s3rec.data.s3rec_format import save_s3rec_format
from s3rec.errors import DataError
from s3rec.io import atomic_path

FORMATS = {"s3rec": ".txt", "csv": ".csv", "tsv": ".tsv", "parquet": ".parquet", "recbole": ".inter"}


def companion_path(path: str | Path, fmt: str) -> Path:
    """The attribute file written beside the interactions file `path` in format `fmt`."""
    path = Path(path)
    if fmt == "s3rec":
        return path.with_name(f"{path.stem}_item2attributes.json")
    if fmt == "recbole":
        return path.with_suffix(".item")
    return path.with_name(f"{path.stem}_items{path.suffix}")


def write_data(data: SequenceData, path: str | Path, fmt: str) -> list[Path]:
    """Write `data` to `path` (its suffix must be the format's) and its attribute file; returns the paths written."""
    path = Path(path)
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})", path)
    if path.suffix.lower() != FORMATS[fmt]:
        raise DataError(f"format {fmt} needs a {FORMATS[fmt]} file name", path)
    if fmt == "s3rec":
        save_s3rec_format(data, path.parent, path.stem)
        return [path, companion_path(path, fmt)]
    written = []
    items = _item_table(data, sep=" " if fmt == "recbole" else "|")
    if items is not None:
        written.append(_write(items, companion_path(path, fmt), fmt))
    written.append(_write(_interaction_table(data), path, fmt))
    return written[::-1]


def _interaction_table(data: SequenceData) -> pa.Table:
    """user_id, item_id (raw ids), timestamp (position within the user's sequence)."""
    lengths = data.lengths
    rows = np.repeat(np.arange(data.n_users), lengths)
    position = np.arange(len(data.items)) - np.repeat(data.offsets[:-1], lengths)
    return pa.table({"user_id": _ids(data.user_ids).take(pa.array(rows)),
                     "item_id": _ids(data.item_ids[1:]).take(pa.array(data.items - 1)),
                     "timestamp": pa.array(position)})


def _item_table(data: SequenceData, sep: str) -> pa.Table | None:
    """item_id, categories (the item's attribute names joined by `sep`; null when it has none), or None."""
    if data.n_attributes == 0:
        return None
    names = data.attribute_names if data.attribute_names is not None else np.arange(data.n_attributes + 1).astype(str)
    names = np.asarray(names, dtype=object)
    if any(sep in str(n) for n in names[1:]):
        raise DataError(f"an attribute name contains the separator {sep!r}", data.source or data.name)
    counts = np.diff(data.attr_offsets)
    # join per item with one vectorised pass: pieces are names followed by sep, minus the trailing sep
    joined = np.full(data.n_items, None, dtype=object)
    has = counts > 0
    if len(data.attr_values):
        pieces = names[data.attr_values].astype(str).astype(object) + sep
        sums = np.add.reduceat(pieces, data.attr_offsets[:-1][has])
        joined[has] = [s[: -len(sep)] for s in sums]
    return pa.table({"item_id": _ids(data.item_ids[1:]), "categories": pa.array(joined, type=pa.string())})


def _ids(raw: np.ndarray) -> pa.Array:
    """Raw ids as an Arrow string array."""
    return pa.array(np.asarray(raw, dtype=object).astype(str), type=pa.string())


def _write(table: pa.Table, path: Path, fmt: str) -> Path:
    """Write one table atomically in `fmt`."""
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            pq.write_table(table, tmp)
        elif fmt == "recbole":  # typed header, no quoting (RecBole reads fields verbatim)
            types = {"user_id": "token", "item_id": "token", "timestamp": "float",
                     "categories": "token_seq"}
            with open(tmp, "wb") as f:
                f.write(("\t".join(f"{c}:{types[c]}" for c in table.column_names) + "\n").encode())
                pa_csv.write_csv(table, f, pa_csv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none"))
        else:
            with open(tmp, "wb") as f:
                pa_csv.write_csv(table, f, pa_csv.WriteOptions(delimiter="\t" if fmt == "tsv" else ","))
    return path
