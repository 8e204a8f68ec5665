"""Loader for generic interaction tables (CSV, TSV, Parquet, or pandas DataFrames via `from_dataframes`)
with an optional item-attribute table.

The interaction table has one row per interaction (user, item, optional timestamp). Rows are ordered by
timestamp within each user (ties keep file order), k-core filtered, and remapped to contiguous ids:
user rows 0..U-1 in order of first appearance in the file, items 1..n_items in order of first appearance
in the time-sorted stream (user by user). The item table's attribute columns hold `attr_sep`-separated
values; names are prefixed by their column (``brand=Acme``) so that columns never collide.

Errors name the file and, for text tables, the 1-based line of the row at fault (assuming no quoted
field spans lines: a field over several lines, in any column, is an error); Parquet rows are named by
their 1-based row number in the message.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from s3rec.data.dataset import SequenceData
from s3rec.data.s3rec_format import not_utf8_error
from s3rec.errors import DataError, S3RecError, one_line
from s3rec.io import atomic_path

_SEPARATORS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
_PARQUET = {".parquet", ".pq"}
_MIN_SPLIT_LENGTH = 3  # leave-one-out needs a training, a validation and a test item
_ID_MAPS = {"users": ("row", "users.csv"), "items": ("item", "items.csv"), "attributes": ("attribute", "attributes.csv")}


@dataclass(frozen=True)
class _Table:
    """A table read from `path`, with the mapping from frame rows back to file positions."""

    path: Path
    frame: pd.DataFrame
    parquet: bool

    def error(self, message: str, row: int) -> DataError:
        """A DataError located at frame index `row`."""
        if self.parquet:
            return DataError(f"row {row + 1}: {message}", self.path)
        return DataError(message, self.path, row + 2)  # +1 for the header, +1 for 1-based lines


def load_table(
    path: str | Path,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str | None = "timestamp",
    item_table: str | Path | None = None,
    item_table_item_col: str | None = None,
    attribute_cols: Sequence[str] | str = ("categories",),
    attr_sep: str = "|",
    min_count: int = 5,
    name: str | None = None,
) -> SequenceData:
    """Load an interaction table (and optional item-attribute table) as k-core filtered SequenceData."""
    path = Path(path)
    table = _read_table(path, _columns(user_col, item_col, time_col))
    cols = [attribute_cols] if isinstance(attribute_cols, str) else list(attribute_cols)
    items_col = item_table_item_col or item_col
    # Read lazily, so errors of the interaction table come first.
    read_items = None if item_table is None else (lambda: _read_table(Path(item_table), [items_col, *cols]))
    return _sequence_data(table, read_items, user_col, item_col, time_col, items_col, cols, attr_sep, min_count,
                          name or path.stem)


def from_dataframes(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None = None,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str | None = "timestamp",
    items_item_col: str | None = None,
    attribute_cols: Sequence[str] | str = ("categories",),
    attr_sep: str = "|",
    min_count: int = 5,
    name: str = "dataframe",
) -> SequenceData:
    """In-memory tables as SequenceData, exactly as `load_table` reads files (errors name the 1-based row).

    Example::

        data = from_dataframes(log, items, user_col="user", item_col="sku", time_col="ts",
                               attribute_cols=["brand"], min_count=1)
    """
    cols = [attribute_cols] if isinstance(attribute_cols, str) else list(attribute_cols)
    items_col = items_item_col or item_col
    table = _frame_table(interactions, "interactions", _columns(user_col, item_col, time_col))
    read_items = None if items is None else (lambda: _frame_table(items, "items", [items_col, *cols]))
    return _sequence_data(table, read_items, user_col, item_col, time_col, items_col, cols, attr_sep, min_count, name)


def _columns(user_col: str, item_col: str, time_col: str | None) -> list[str]:
    columns = [user_col, item_col] + ([time_col] if time_col is not None else [])
    if len(set(columns)) < len(columns):
        raise S3RecError(f"the user, item and time columns must be different columns, got {', '.join(map(repr, columns))}")
    return columns


def _sequence_data(table: _Table, read_items, user_col: str, item_col: str, time_col: str | None, items_col: str,
                   attribute_cols: list[str], attr_sep: str, min_count: int, name: str) -> SequenceData:
    """SequenceData from a read interaction table and, if `read_items` is given, the item table it returns."""
    users = _id_column(table, user_col)
    items = _id_column(table, item_col)
    if time_col is not None:
        time_key = _time_key(table, time_col)
    else:
        time_key = np.arange(len(users))  # file order is the time order

    offsets, seq_items, user_ids, item_ids, k_core = build_sequences(table.path, users, items, time_key, min_count)

    if read_items is not None:
        attr_offsets, attr_values, attribute_names = _read_attributes(read_items(), items_col, attribute_cols,
                                                                      attr_sep, item_ids)
    else:
        attr_offsets, attr_values = np.zeros(0, np.int64), np.zeros(0, np.int64)
        attribute_names = np.array([None], dtype=object)

    return SequenceData(
        name=name, offsets=offsets, items=seq_items, n_items=len(item_ids) - 1,
        attr_offsets=attr_offsets, attr_values=attr_values, n_attributes=len(attribute_names) - 1,
        user_ids=user_ids, item_ids=item_ids,
        attribute_names=attribute_names, source=str(table.path), extra={"k_core": k_core},
    )


def build_sequences(
    path: Path, users: pd.Series, items: pd.Series, time_key: np.ndarray, min_count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    """(offsets, items, user_ids, item_ids, k_core): k-core filtered, stably time-ordered, contiguously remapped
    sequences, and what the filter kept ({"min_count", "users", "items", "interactions"}: [kept, read]; with
    "duplicate_rows": kept rows that repeat an earlier row's user, item and time)."""
    user_codes, user_raw = pd.factorize(users)
    item_codes, item_raw = pd.factorize(items)
    keep = np.flatnonzero(_k_core(user_codes, item_codes, min_count))
    if len(keep) == 0:
        raise DataError(f"no interactions left after {min_count}-core filtering", path)

    # Re-factorising the kept rows (still in file order) numbers users by first appearance.
    rows_of, kept_users = pd.factorize(user_codes[keep])
    order = np.lexsort((time_key[keep], rows_of))  # stable: equal timestamps keep file order
    item_ids_new, kept_items = pd.factorize(item_codes[keep][order])

    lengths = np.bincount(rows_of, minlength=len(kept_users))
    short = int((lengths < _MIN_SPLIT_LENGTH).sum())
    if short:
        first = int(np.flatnonzero(lengths < _MIN_SPLIT_LENGTH)[0])
        raise DataError(
            f"{short} users have fewer than {_MIN_SPLIT_LENGTH} interactions after filtering and cannot be split "
            f"leave-one-out (e.g. user {str(user_raw[kept_users[first]])!r} with {int(lengths[first])}); "
            f"use --min-count (min_count) {_MIN_SPLIT_LENGTH} or larger",
            path,
        )
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    item_ids = np.concatenate([[None], item_raw.to_numpy(dtype=object)[kept_items]])
    duplicates = int(pd.DataFrame({"u": user_codes[keep], "i": item_codes[keep], "t": time_key[keep]}).duplicated().sum())
    k_core = {"min_count": int(min_count), "users": [len(kept_users), len(user_raw)],
              "items": [len(kept_items), len(item_raw)], "interactions": [len(keep), len(users)],
              "duplicate_rows": duplicates}
    return offsets, item_ids_new + 1, user_raw.to_numpy(dtype=object)[kept_users], item_ids, k_core


def save_id_maps(data: SequenceData, directory: str | Path) -> None:
    """Write users.csv, items.csv and attributes.csv (id, raw id) atomically into `directory`."""
    directory = Path(directory)
    # without names (S3-Rec files, RecBole without .item) the ids are the raw ids: the map is the identity
    names = data.attribute_names if data.attribute_names is not None else np.arange(data.n_attributes + 1).astype(str)
    raws = {"users": data.user_ids, "items": data.item_ids[1:], "attributes": names[1:]}
    for key, (id_col, file) in _ID_MAPS.items():
        first = 0 if key == "users" else 1
        raw = np.asarray(raws[key], dtype=object)
        frame = pd.DataFrame({id_col: np.arange(first, first + len(raw)), _raw_col(key): raw})
        with atomic_path(directory / file) as tmp:
            frame.to_csv(tmp, index=False)


def load_id_maps(directory: str | Path) -> dict[str, pd.DataFrame]:
    """Read the maps written by `save_id_maps`: {"users", "items", "attributes"} -> DataFrame."""
    directory = Path(directory)
    maps = {}
    for key, (id_col, file) in _ID_MAPS.items():
        path = directory / file
        if not path.is_file():
            raise DataError("file not found", path)
        raw_col = _raw_col(key)
        try:
            # keep_default_na=False: a raw id such as "NA" is an id, not a missing value
            frame = pd.read_csv(path, dtype={id_col: np.int64, raw_col: str}, keep_default_na=False)
        except (ValueError, UnicodeDecodeError) as e:
            raise DataError(f"cannot read id map: {one_line(e)}", path) from None
        if list(frame.columns) != [id_col, raw_col]:
            raise DataError(f"expected columns {id_col},{raw_col}, found {','.join(map(str, frame.columns))}", path)
        maps[key] = frame
    return maps


def _raw_col(key: str) -> str:
    return "raw_name" if key == "attributes" else "raw_id"


def _read_table(path: Path, columns: list[str]) -> _Table:
    """Read `columns` of the table at `path` (format by suffix); fail on a missing file, column or rows."""
    if not path.is_file():
        raise DataError("file not found", path)
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        return _read_parquet(path, columns)
    if suffix in _SEPARATORS:
        return _read_text(path, columns, _SEPARATORS[suffix])
    if suffix == ".txt":
        with open(path, encoding="utf-8", errors="replace") as f:
            header = f.readline()
        if "\t" in header:
            return _read_text(path, columns, "\t")
        if not header.strip():
            raise DataError("file is empty", path)
        raise DataError("a .txt table must be tab-separated (no tab in the header line)", path)
    raise DataError(f"unknown table format {path.suffix!r} (expected .csv, .tsv, .tab, .parquet, .pq or tab-separated .txt)", path)


def _read_text(path: Path, columns: list[str], sep: str, quoting: int = csv.QUOTE_MINIMAL) -> _Table:
    """Read a delimited text table as strings; empty fields are missing, rows with no value are skipped."""
    try:
        header = pd.read_csv(path, sep=sep, nrows=0, encoding="utf-8", quoting=quoting).columns
        _check_columns(path, columns, header, sep)
        with open(path, encoding="utf-8-sig", newline="") as f:  # pandas renames a repeated name to name.1
            names = next(csv.reader(f, delimiter=sep, quoting=quoting), [])
        if twice := [c for c in columns if names.count(c) > 1]:
            raise DataError(f"column {twice[0]!r} appears more than once in the header", path, 1)
        frame = pd.read_csv(
            # No usecols: with it pandas silently accepts rows with too many fields.
            path, sep=sep, dtype=str, encoding="utf-8", quoting=quoting,
            keep_default_na=False, na_values=[""],  # "NA" or "null" may be real ids
            skip_blank_lines=False,  # keeps frame index = line - 2
        )
    except pd.errors.EmptyDataError:
        raise DataError("file is empty", path) from None
    except UnicodeDecodeError:
        raise not_utf8_error(path) from None
    except pd.errors.ParserError as e:
        kind = "TSV" if sep == "\t" else "CSV"
        unclosed = re.search(r"EOF inside string starting at row (\d+)", str(e))  # row 0: the header line
        if unclosed:
            raise DataError("a quoted field opens here and never closes: an unclosed quote (\")?", path,
                            int(unclosed.group(1)) + 1) from None
        line = re.search(r"\bline (\d+)", str(e))  # the C parser names the offending line
        raise DataError(f"cannot parse {kind}: {one_line(e)}", path, int(line.group(1)) if line else None) from None
    if not isinstance(frame.index, pd.RangeIndex):  # pandas made the first field an index: rows are one field too long
        kind = "TSV" if sep == "\t" else "CSV"
        raise DataError(f"cannot parse {kind}: the first data row has {len(header) + 1} fields, the header {len(header)}", path)
    _check_one_line_fields(path, frame)  # every column: a quote in an unused one swallows rows all the same
    frame = frame.dropna(how="all")[columns]
    if frame.empty:
        raise DataError("table has no rows", path)
    return _Table(path, frame, parquet=False)


def _check_one_line_fields(path: Path, frame: pd.DataFrame) -> None:
    """No field may span lines: a stray quote (`"i5 12in`) opens a quoted field that swallows the rows up to
    the next quote, silently, when one follows."""
    for col in frame.columns:
        spans = frame[col].str.contains("\n", regex=False, na=False).to_numpy()
        if spans.any():
            row = int(np.flatnonzero(spans)[0])
            raise DataError(f"a field of column {col!r} runs over several lines, from here: an unclosed quote (\")?",
                            path, row + 2)  # lines before it are one row each


def _read_parquet(path: Path, columns: list[str]) -> _Table:
    """Read `columns` of a Parquet file with nullable dtypes (integer ids stay integers)."""
    try:
        _check_columns(path, columns, pq.read_schema(path).names)
        frame = pd.read_parquet(path, columns=columns, dtype_backend="numpy_nullable")
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"cannot read Parquet: {one_line(e)}", path) from None
    if frame.empty:
        raise DataError("table has no rows", path)
    return _Table(path, frame.reset_index(drop=True), parquet=True)


def _frame_table(frame: pd.DataFrame, what: str, columns: list[str]) -> _Table:
    """`columns` of an in-memory DataFrame, named `<what> DataFrame` in errors; rows are numbered like Parquet rows."""
    where = Path(f"<{what} DataFrame>")
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, got {type(frame).__name__}", where)
    _check_columns(where, columns, [str(c) for c in frame.columns])
    if frame.empty:
        raise DataError("table has no rows", where)
    return _Table(where, frame[columns].reset_index(drop=True), parquet=True)


def _check_columns(path: Path, wanted: list[str], found: Sequence[str], sep: str | None = None) -> None:
    """Every wanted column is present; `sep`: the separator a text table was read with (for the hint)."""
    present = set(found)
    missing = [c for c in dict.fromkeys(wanted) if c not in present]
    if missing:
        hint = ""
        if sep is not None and len(found) == 1 and (seen := next((c for c in ";|\t, " if c in str(found[0])), None)):
            name = {",": "commas", "\t": "tabs"}[sep]
            hint = f" (one column: are the fields separated by {seen!r}? a {path.suffix} file is read as separated by {name})"
        raise DataError(
            f"missing column(s) {', '.join(map(repr, missing))}; found {', '.join(map(repr, map(str, found)))}{hint}",
            path,
        )


def _id_column(table: _Table, col: str) -> pd.Series:
    """Column `col` as strings without surrounding blanks (`u1, i1` names item `i1`); a missing or blank value
    is an error at its row."""
    column = table.frame[col]
    if table.parquet and column.dtype == object:  # lists or structs: astype would turn [i14] into the id "['i14']"
        nested = column.map(lambda v: isinstance(v, (list, tuple, dict, np.ndarray))).to_numpy(dtype=bool)
        if nested.any():
            value = column.iloc[int(np.flatnonzero(nested)[0])]
            kind = "dict" if isinstance(value, dict) else "list"
            raise table.error(f"column {col!r} holds {kind} values; ids are strings or integers",
                              int(column.index[nested][0]))
    values = column.astype("string").str.strip()
    bad = values.isna() | (values == "")
    if bad.any():
        raise table.error(f"missing value in column {col!r}", int(values.index[bad.to_numpy(dtype=bool)][0]))
    return values


def _time_key(table: _Table, col: str) -> np.ndarray:
    """A sortable numeric key for `col`: numbers as they are, else ISO dates (UTC) as integer ticks."""
    values = table.frame[col]
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed, kind = values, "date"
    else:
        numbers = pd.to_numeric(values, errors="coerce")
        if pd.api.types.is_float_dtype(numbers):  # inf / 1e400 would silently sort a row first or last
            numbers = numbers.where(np.isfinite(numbers))
        if numbers.notna().all():
            # uint64 (values beyond int64) would wrap around as int64: order those as floats
            return numbers.to_numpy(dtype=np.int64 if pd.api.types.is_signed_integer_dtype(numbers) else np.float64)
        if pd.api.types.is_numeric_dtype(values):  # a numeric column (Parquet) holds no dates
            parsed, kind = numbers, "number"
        else:
            # a plain number is never read as a date: in a mixed column, 1001 would otherwise become the year 1001
            dates = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601").where(numbers.isna())
            # Report bad values under whichever reading fits more of the column.
            parsed, kind = (dates, "date") if dates.notna().sum() > numbers.notna().sum() else (numbers, "number")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = values.iloc[row]
        what = "missing timestamp" if pd.isna(value) or str(value).strip() == "" else f"cannot parse timestamp {str(value)!r}"
        expected = "an ISO date" if kind == "date" else "a number"
        raise table.error(f"{what} in column {col!r} (expected {expected})", int(values.index[row]))
    if parsed.dt.tz is not None:
        parsed = parsed.dt.tz_convert(None)
    return parsed.to_numpy().astype(np.int64)  # ticks of the column's own unit: only the order matters


def _k_core(users: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """Mask of interactions in the k-core: users and items with >= k interactions, iterated to a fixed point."""
    keep = np.ones(len(users), dtype=bool)
    if k <= 1:
        return keep
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
    while True:
        user_counts = np.bincount(users[keep], minlength=n_users)
        item_counts = np.bincount(items[keep], minlength=n_items)
        new = keep & (user_counts[users] >= k) & (item_counts[items] >= k)
        if np.array_equal(new, keep):
            return keep
        keep = new


def _read_attributes(
    table: _Table, item_col: str, attribute_cols: list[str], sep: str, item_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(attr_offsets, attr_values, attribute_names) for items 1..n_items from a read item table."""
    item_of = item_rows(item_ids, _id_column(table, item_col))
    if not (item_of > 0).any():
        raise DataError(f"no item id in column {item_col!r} is an item of the interactions "
                        f"(e.g. {str(table.frame[item_col].iloc[0])!r}; the interactions have {str(item_ids[1])!r})", table.path)
    known = table.frame[item_of > 0]  # rows of items not in the filtered interactions are ignored
    columns = [(col, _split_cells(known[col], sep)) for col in attribute_cols]
    return attribute_vocabulary(len(item_ids) - 1, item_of, columns)


def _split_cells(cells: pd.Series, sep: str) -> pd.Series:
    """One row per value of multi-valued cells: `a|b|c` text, or Parquet lists (list<string>) as they are."""
    present = cells.dropna()
    if len(present) and isinstance(present.iloc[0], (list, tuple, np.ndarray)):
        return cells.explode()
    return cells.astype("string").str.split(sep, regex=False).explode()


def item_rows(item_ids: np.ndarray, raw_items: pd.Series) -> pd.Series:
    """Item id (1..n_items; 0 = not in the data) of each item-table row, indexed like `raw_items`."""
    return pd.Series(pd.Index(item_ids[1:]).get_indexer(raw_items) + 1, index=raw_items.index)


def attribute_vocabulary(
    n_items: int, item_of: pd.Series, columns: Sequence[tuple[str, pd.Series]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(attr_offsets, attr_values, attribute_names) from (column, row-indexed single values) pairs, named column=value."""
    parts = []
    for position, (col, values) in enumerate(columns):
        values = values.astype("string").str.strip()
        values = values[values.notna() & (values != "")]
        parts.append(pd.DataFrame({
            "item": item_of.loc[values.index].to_numpy(), "row": values.index, "column": position,
            "name": (col + "=" + values).to_numpy(dtype=object),
        }))
    pairs = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["item", "row", "column", "name"])
    # Stable sort keeps split order within a cell; attributes are numbered by first appearance over items.
    pairs = pairs.sort_values(["item", "row", "column"], kind="stable").drop_duplicates(["item", "name"])
    codes, names = pd.factorize(pairs["name"].to_numpy(dtype=object))
    offsets = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(np.bincount(pairs["item"].to_numpy(dtype=np.int64) - 1, minlength=n_items), out=offsets[1:])
    attribute_names = np.concatenate([[None], np.asarray(names, dtype=object)])
    return offsets, codes.astype(np.int64) + 1, attribute_names
