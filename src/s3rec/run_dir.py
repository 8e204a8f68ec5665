"""The files of a run directory, named, written and read in one place.

    config.json    the resolved options (RunConfig) and what the run recorded beside them (RECORDED)
    model.pt       the weights of the best validation epoch (s3rec.training.checkpoint)
    id_maps/       raw <-> internal ids of users and items (s3rec.data.tables)
    histories.npz  every user's whole sequence and the item attributes, internal ids: what recommending
                   needs besides the weights
    metrics.json, per_user.npz, train_log.jsonl: results and the training log (s3rec.pipeline)
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from s3rec.config import RECORDED, RunConfig
from s3rec.data.dataset import SequenceData
from s3rec.data.tables import load_id_maps
from s3rec.errors import DataError, S3RecError, one_line
from s3rec.io import atomic_path

CONFIG = "config.json"
MODEL = "model.pt"
ID_MAPS = "id_maps"
HISTORIES = "histories.npz"


def read_config_json(path: Path, remedy: str) -> dict:
    """A config.json as saved (options and RECORDED), or an S3RecError that ends with `remedy`."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise S3RecError(f"{path}: unreadable config ({one_line(e)}); {remedy}") from None


def read_run_config(run_dir: Path) -> RunConfig:
    """The options a finished run was made with (its config.json)."""
    if not run_dir.is_dir():
        raise S3RecError(f"{run_dir}: " + ("not a directory; pass a run directory" if run_dir.exists() else "run directory not found"))
    path = run_dir / CONFIG
    if not (run_dir / MODEL).is_file() and (run_dir / "last.pt").is_file():
        raise S3RecError(f"{run_dir}: a pre-training folder, which has no trained model; fine-tune from one of its "
                         f"checkpoints first (s3rec finetune --init {run_dir / 'pretrain-epochN.pt'} ...)")
    if not path.is_file():
        raise S3RecError(f"{path}: not found; is {run_dir} a run directory?")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return RunConfig.from_dict({k: v for k, v in raw.items() if k not in RECORDED})
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError, AttributeError) as e:
        raise S3RecError(f"{path}: unreadable config ({one_line(e)})") from None  # AttributeError: not an object


def save_histories(data: SequenceData, path: Path) -> None:
    """Every user's sequence (CSR `offsets`/`items`) and the item attributes (`attr_offsets`/`attr_values`,
    `n_attributes`), internal ids."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, offsets=data.offsets, items=data.items, attr_offsets=data.attr_offsets,
                                attr_values=data.attr_values, n_attributes=np.int64(data.n_attributes))


def read_histories(path: str | Path, n_users: int | None = None,
                   n_items: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read and check histories.npz: `offsets` (n_users + 1,) from 0, non-decreasing; `items` in 1..n_items
    (the counts are checked where given)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if not {"offsets", "items"} <= set(z.files):
                raise DataError(f"expected arrays 'offsets' and 'items', found {', '.join(z.files) or 'none'}", path)
            offsets, items = z["offsets"], z["items"]
    except DataError:
        raise
    except Exception as e:  # zip/pickle/format errors
        raise DataError(f"cannot read histories ({type(e).__name__}: {one_line(e)})", path) from None
    if (offsets.ndim != 1 or items.ndim != 1 or not np.issubdtype(offsets.dtype, np.integer)
            or not np.issubdtype(items.dtype, np.integer)):
        raise DataError("'offsets' and 'items' must be 1-D integer arrays", path)
    if len(offsets) == 0:  # before offsets[0] is read below
        raise DataError("'offsets' is empty: expected n_users + 1 entries from 0", path)
    if n_users is not None and len(offsets) != n_users + 1:
        raise DataError(f"{len(offsets) - 1} users but id_maps/users.csv lists {n_users}", path)
    if offsets[0] != 0 or offsets[-1] != len(items) or np.any(np.diff(offsets) < 0):
        raise DataError("'offsets' must start at 0, not decrease and end at len(items)", path)
    if len(items) and (items.min() < 1 or (n_items is not None and items.max() > n_items)):
        raise DataError(f"item ids must be in 1..{n_items or 'n_items'}", path)
    return offsets.astype(np.int64), items.astype(np.int64)


def read_attributes(path: Path, n_items: int) -> SimpleNamespace:
    """Item attributes saved in histories.npz (attribute-aware models need them to be rebuilt); none if absent."""
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                if "attr_offsets" in z:
                    return SimpleNamespace(attr_offsets=z["attr_offsets"], attr_values=z["attr_values"],
                                           n_attributes=int(z["n_attributes"]))
        except Exception as e:  # zip/pickle/format errors, a missing array
            raise DataError(f"cannot read item attributes ({type(e).__name__}: {one_line(e)})", path) from None
    return SimpleNamespace(attr_offsets=np.zeros(n_items + 1, np.int64), attr_values=np.zeros(0, np.int64), n_attributes=0)


def check_same_data(data: SequenceData, run_dir: Path, action: str) -> None:
    """Fail unless `data` are the sequences and raw ids a run saved (histories.npz, id_maps/; absent: not compared)."""
    same = True
    if (run_dir / HISTORIES).is_file():
        with np.load(run_dir / HISTORIES) as saved:
            same = np.array_equal(saved["offsets"], data.offsets) and np.array_equal(saved["items"], data.items)
    if same and (run_dir / ID_MAPS).is_dir():  # the same sequences under other raw ids are other data
        maps = load_id_maps(run_dir / ID_MAPS)
        same = (maps["users"]["raw_id"].tolist() == [str(u) for u in data.user_ids]
                and maps["items"]["raw_id"].tolist() == [str(i) for i in data.item_ids[1:]])
    if not same:
        hint = " (a relative data path is read from the current folder)" if action == "evaluate" else ""
        raise S3RecError(f"{run_dir}: cannot {action}: the data loaded now ({data.name}, {data.n_users:,} users, "
                         f"{data.n_items:,} items) are not the data this run was made on{hint}")
