"""One entry point from a DataConfig to a SequenceData: a registry name or a file of the user's."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from s3rec.data.dataset import SequenceData
from s3rec.data.recbole import load_atomic
from s3rec.data.registry import get_spec, resolve_dataset
from s3rec.data.s3rec_format import load_s3rec_format
from s3rec.data.splits import keep_train_fraction
from s3rec.data.tables import load_table
from s3rec.errors import DataError, S3RecError


@dataclass(slots=True)
class DataConfig:
    """Where the data come from and how they are read."""

    dataset: str | None = None  # a registry name (beauty, sports, toys, yelp, lastfm)
    path: str | None = None  # or a file: S3-Rec `Name.txt`, or a CSV/TSV/Parquet interaction table
    data_dir: str | None = None  # folder with the registry's files (else $S3REC_DATA_DIR, cache, download)
    item_table: str | None = None
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str | None = "timestamp"
    attribute_cols: list[str] = field(default_factory=lambda: ["categories"])
    attr_sep: str = "|"
    min_count: int = 5
    train_fraction: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.attribute_cols, str):  # "brand,categories", as --attribute-cols takes them
            self.attribute_cols = column_list(self.attribute_cols)
        if isinstance(self.time_col, str) and self.time_col.lower() == "none":  # a config file's `time_col: none`
            self.time_col = None

    @property
    def label(self) -> str:
        """The data's short name in folder names and tables: the registry key, else the data file's stem."""
        if self.dataset is not None:
            return get_spec(self.dataset).key
        return Path(self.path).stem if self.path else "data"


def column_list(text: str) -> list[str]:
    """Column names from comma-separated text ("brand, categories"), blanks around names dropped."""
    return [c.strip() for c in text.split(",") if c.strip()]


def load_data(cfg: DataConfig, progress: bool = True) -> SequenceData:
    """Load, then keep `train_fraction` of each user's training items."""
    if (cfg.dataset is None) == (cfg.path is None):
        raise S3RecError("give exactly one of --dataset NAME or --data PATH (in Python: DataConfig dataset= or path=)")
    if cfg.dataset is not None:
        if cfg.item_table is not None:
            raise S3RecError(f"--item-table is for --data tables; {cfg.dataset} brings its own attributes")
        spec = get_spec(cfg.dataset)
        files = resolve_dataset(cfg.dataset, data_dir=cfg.data_dir, progress=progress)
        data = load_s3rec_format(files.interactions, files.attributes, files.sample, name=spec.upstream)
    else:
        data = load_path(cfg)
    return keep_train_fraction(data, cfg.train_fraction)


def load_path(cfg: DataConfig) -> SequenceData:
    """A user's file: S3-Rec format for `.txt` that is not a tab-separated table (attributes/sample files beside it)."""
    path = Path(cfg.path)
    if not path.is_file():
        raise DataError("is a folder, not a file" if path.is_dir() else "file not found", path)
    kind = _source_kind(cfg)
    if kind == "s3rec":
        attrs = path.with_name(f"{path.stem}_item2attributes.json")
        if cfg.item_table is not None:  # it would be ignored
            raise DataError(f"--item-table is for interaction tables; an S3-Rec file takes its attributes from "
                            f"{attrs.name} beside it", path)
        sample = path.with_name(f"{path.stem}_sample.txt")
        return load_s3rec_format(path, attrs if attrs.exists() else None, sample if sample.exists() else None)
    if kind == "recbole":  # RecBole atomic files: `<stem>.item` beside it (or --item-table)
        item = Path(cfg.item_table) if cfg.item_table else path.with_suffix(".item")
        return load_atomic(path, item if cfg.item_table or item.exists() else None, min_count=cfg.min_count)
    return load_table(path, user_col=cfg.user_col, item_col=cfg.item_col, time_col=cfg.time_col,
                      item_table=cfg.item_table, attribute_cols=tuple(cfg.attribute_cols), attr_sep=cfg.attr_sep,
                      min_count=cfg.min_count)


# the flags each kind of data source would ignore, and why (--item-table: load_data's own errors)
_IGNORED_FLAGS = {
    "registry": ("the registry's files are read as published (the authors' 5-core data)",
                 ("--user-col", "--item-col", "--time-col", "--attribute-cols", "--min-count")),
    "s3rec": ("an S3-Rec Name.txt is read as it is (its ids, its order, no filter; attributes from "
              "Name_item2attributes.json beside it)",
              ("--user-col", "--item-col", "--time-col", "--attribute-cols", "--min-count")),
    "recbole": ("a RecBole .inter file has the fields user_id, item_id and timestamp, and every token/token_seq "
                "field of its .item file is an attribute",
                ("--user-col", "--item-col", "--time-col", "--attribute-cols")),
}


def check_data_flags(cfg: DataConfig, given: list[str]) -> None:
    """Flags (given on the command line) that the data source would ignore are errors, named with the reason."""
    kind = _source_kind(cfg)
    if kind == "table":
        if "--attribute-cols" in given and cfg.item_table is None:
            raise S3RecError("--attribute-cols names columns of --item-table FILE, which is not given")
        return
    reason, flags = _IGNORED_FLAGS[kind]
    ignored = [flag for flag in given if flag in flags]
    if ignored:
        raise S3RecError(f"{', '.join(ignored)} would be ignored: {reason}")


def _source_kind(cfg: DataConfig) -> str:
    """registry, s3rec (Name.txt), recbole (.inter) or table (CSV/TSV/Parquet, tab-separated .txt)."""
    if cfg.dataset is not None:
        return "registry"
    path = Path(cfg.path or "")
    if path.suffix.lower() == ".inter":
        return "recbole"
    if path.suffix.lower() == ".txt" and path.is_file() and _is_s3rec_format(path):
        return "s3rec"
    return "table"


def _is_s3rec_format(path: Path) -> bool:
    """No tab in the first line, or a first line of ids only (`1<TAB>5 7 9`: no table has a header of numbers)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline()
    return "\t" not in first or all(field.isdigit() for field in first.split())
