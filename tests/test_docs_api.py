"""docs/api.md runs (every ```python block, in order, in one namespace, in a temporary folder), and the
DataFrame entry point it builds on, `from_dataframes`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from s3rec import DataError, from_dataframes
from s3rec.data.tables import load_table

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_api_walkthrough_runs(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    ns: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name}, python block {i + 1}", "exec"), ns)  # noqa: S102
    # what the prose claims about the results
    assert set(ns["metrics"]["test"]["full"]) >= {"NDCG@10", "HR@10"}
    assert len(ns["recs"][0]["items"]) == 5 and ns["recs"][0]["unknown_items"] == ["sku-not-in-training"]
    assert not {"sku12", "sku18"} & set(ns["recs"][0]["items"])
    assert ns["data"].n_attributes > 0 and ns["per_user"]["test/full/NDCG@10"].shape == (ns["data"].n_users,)
    assert len(ns["item_ids"]) == ns["data"].n_items + 1
    assert ns["best"].finetune.loss == "ce" and (ns["from_file"].model, ns["from_file"].finetune.epochs) == ("sasrec", 5)
    assert ns["recorded"].seed == 1 and ns["recorded"].pretrain.epochs == 2  # the run of block 2


def test_from_dataframes_reads_like_load_table(tmp_path):
    """The in-memory path is the file path: same sequences, ids and attributes as the CSV files."""
    log = pd.DataFrame({"user": ["u1", "u2", "u1", "u2", "u1", "u2", "u1"],
                        "sku": ["b", "a", "a", "c", "c", "b", "d"], "ts": [3, 1, 1, 2, 5, 9, 7]})
    items = pd.DataFrame({"sku": ["a", "b", "c", "z"], "brand": ["x", "y", "x", "w"], "tags": ["p|q", None, "q", "r"]})
    log.to_csv(tmp_path / "log.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    args = dict(user_col="user", item_col="sku", time_col="ts", attribute_cols=["brand", "tags"], min_count=1)
    got = from_dataframes(log, items, **args)
    ref = load_table(tmp_path / "log.csv", item_table=tmp_path / "items.csv", **args)
    for field in ("offsets", "items", "attr_offsets", "attr_values", "user_ids", "item_ids", "attribute_names"):
        assert np.array_equal(getattr(got, field), getattr(ref, field)), field
    assert got.item_ids.tolist() == [None, "a", "b", "c", "d"] and got.name == "dataframe"


def test_from_dataframes_errors_name_the_table_and_row():
    log = pd.DataFrame({"user_id": ["u1", "u1", "u1", None], "item_id": ["a", "b", "c", "d"], "timestamp": [1, 2, 3, 4]})
    with pytest.raises(DataError, match=r"^<interactions DataFrame>: row 4: missing value in column 'user_id'$"):
        from_dataframes(log, min_count=1)
    with pytest.raises(DataError, match=r"^<interactions DataFrame>: missing column\(s\) 'ts'"):
        from_dataframes(log, time_col="ts")
    with pytest.raises(DataError, match=r"^<items DataFrame>: missing column\(s\) 'categories'"):
        from_dataframes(log.dropna(), pd.DataFrame({"item_id": ["a"]}), min_count=1)
    with pytest.raises(DataError, match="expected a pandas DataFrame, got list"):
        from_dataframes([("u1", "a", 1)])
