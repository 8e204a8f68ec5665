"""Tests for the RecBole atomic-file loader (s3rec.data.recbole) and its wiring into load_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from s3rec.data.loading import DataConfig, load_path
from s3rec.data.recbole import load_atomic
from s3rec.data.tables import load_table
from s3rec.errors import DataError
from test_tables import assert_same, sequences

INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def tsv(*rows: tuple) -> str:
    return "".join("\t".join(map(str, r)) + "\n" for r in rows)


def test_exact_sequence_data_with_item_features(tmp_path):
    inter = write(tmp_path / "toy.inter", INTER + tsv(
        ("b", "x", 4, 5), ("a", "p", 3, 30), ("a", "q", 5, 10), ("b", "y", 1, 5),
        ("a", "r", 2, 10), ("b", "z", 4, 1.5), ("a", "s", 3, 20),
    ))
    item = write(tmp_path / "toy.item", "item_id:token\ttitle:token_seq\tbrand:token\tprice:float\tgenre:token_seq\n" + tsv(
        ("ghost", "Never Seen", "G", 1.0, "x"),  # not an interacted item: adds no attribute
        ("x", "Red  Shoe", "Acme", 3.5, "sport shoes sport"),  # double space and a repeated token
        ("q", "", "Zed", 1.0, "sport"),  # empty token_seq
        ("p", "Acme", "", "", ""),  # the same raw value in another field is another attribute
    ))
    data = load_atomic(inter, item, min_count=1)
    assert data.name == "toy" and data.source == str(inter)
    assert list(data.user_ids) == ["b", "a"]  # first appearance in the file
    assert sequences(data) == {"b": ["z", "x", "y"], "a": ["q", "r", "s", "p"]}  # ties keep file order
    assert list(data.item_ids) == [None, "z", "x", "y", "q", "r", "s", "p"]
    assert data.offsets.tolist() == [0, 3, 7] and data.items.tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert data.n_items == 7
    assert list(data.attribute_names) == [
        None, "title=Red", "title=Shoe", "brand=Acme", "genre=sport", "genre=shoes", "brand=Zed", "title=Acme",
    ]
    assert data.n_attributes == 7
    assert data.attr_offsets.tolist() == [0, 0, 5, 5, 7, 7, 7, 8]
    assert [data.attributes_of(i).tolist() for i in range(1, 8)] == [[], [1, 2, 3, 4, 5], [], [6, 4], [], [], [7]]
    assert data.items.dtype == np.int64 and data.attr_values.dtype == np.int64


def test_without_timestamp_file_order_is_time_order_and_k_core_applies(tmp_path):
    rows = [("u1", "x"), ("u2", "y"), ("u1", "z"), ("u3", "x"), ("u2", "x"), ("u1", "y"), ("u3", "z"),
            ("u2", "z"), ("u3", "y"), ("u4", "x"), ("u4", "w")]
    inter = write(tmp_path / "log.inter", "item_id:token\tuser_id:token\n" + tsv(*[(i, u) for u, i in rows]))
    data = load_atomic(inter, min_count=3, name="named")
    assert data.name == "named"
    assert sequences(data) == {"u1": ["x", "z", "y"], "u2": ["y", "x", "z"], "u3": ["x", "z", "y"]}  # u4, w dropped
    assert data.n_attributes == 0 and data.attr_offsets.tolist() == [0, 0, 0, 0]


def test_recbole_and_equivalent_csv_give_the_same_data(tmp_path):
    rng = np.random.default_rng(1)
    log = pd.DataFrame({
        "user_id": rng.integers(100, 108, 150).astype(str), "item_id": rng.choice(list("abcdefg"), 150),
        "timestamp": rng.integers(0, 40, 150),
    })
    cats = {"a": ["x", "y"], "c": ["y"], "d": [], "f": ["z", "x"], "g": ["y", "z", "w"]}
    log.to_csv(tmp_path / "log.csv", index=False)
    pd.DataFrame({"item_id": list(cats), "categories": ["|".join(v) for v in cats.values()]}).to_csv(
        tmp_path / "meta.csv", index=False)
    write(tmp_path / "log.inter", "user_id:token\titem_id:token\ttimestamp:float\n"
          + tsv(*log.itertuples(index=False)))
    write(tmp_path / "log.item", "item_id:token\tcategories:token_seq\n" + tsv(*[(k, " ".join(v)) for k, v in cats.items()]))
    ref = load_table(tmp_path / "log.csv", item_table=tmp_path / "meta.csv", min_count=3)
    assert ref.n_users > 0 and ref.n_attributes == 4
    assert_same(ref, load_atomic(tmp_path / "log.inter", tmp_path / "log.item", min_count=3))


def test_load_path_uses_the_item_file_beside_the_inter_file(tmp_path):
    inter = write(tmp_path / "shop.inter", INTER + tsv(("u", "a", 1, 1), ("u", "b", 1, 2), ("u", "c", 1, 3)))
    plain = load_path(DataConfig(path=str(inter), min_count=1))
    assert sequences(plain) == {"u": ["a", "b", "c"]} and plain.n_attributes == 0
    write(tmp_path / "shop.item", "item_id:token\tcolor:token\nb\tred\n")
    with_item = load_path(DataConfig(path=str(inter), min_count=1))
    assert list(with_item.attribute_names) == [None, "color=red"] and with_item.name == "shop"
    other = write(tmp_path / "other.item", "item_id:token\tsize:token\nc\tL\n")
    chosen = load_path(DataConfig(path=str(inter), min_count=1, item_table=str(other)))
    assert list(chosen.attribute_names) == [None, "size=L"]
    with pytest.raises(DataError, match=r"no interactions left after 5-core filtering"):
        load_path(DataConfig(path=str(inter)))  # the default min_count applies


GOOD = tsv(("u", "a", 1, 1), ("u", "b", 1, 2), ("u", "c", 1, 3))


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ("", None, "file is empty"),
        ("\n \n", None, "file is empty"),
        (INTER, None, "table has no rows"),
        ("\n" + INTER + GOOD, 1, "header line is empty"),
        ("user_id\titem_id\n" + tsv(("u", "a")), 1, "header field 'user_id' is not typed as name:type"),
        ("user_id:token item_id:token\n", 1, "header is not tab-separated"),
        ("user_id:token\titem_id:int\n", 1, "unknown type 'int'"),
        ("user_id:token\tuser_id:float\titem_id:token\n", 1, "header field 'user_id' appears twice"),
        ("user:token\titem_id:token\n" + tsv(("u", "a")), 1, "missing field 'user_id:token' in the header; found 'user:token'"),
        ("user_id:float\titem_id:token\n", 1, "field 'user_id' must have type token, found user_id:float"),
        ("user_id:token\titem_id:token\ttimestamp:token\n", 1, "field 'timestamp' must have type float"),
        (INTER + GOOD + "\tb\t1\t4\n", 5, "missing value in column 'user_id:token'"),
        (INTER + "u\ta\t1\t1\n\nu\t \t1\t2\n", 4, "missing value in column 'item_id:token'"),
        (INTER + "u\ta\t1\t1\nu\tb\t1\tsoon\n", 3, "cannot parse timestamp 'soon' in column 'timestamp:float'"),
        (INTER + GOOD + "u\td\t1\t4\t9\n", 5, "cannot parse TSV"),
        (INTER.encode() + b"u\t\xff\t1\t1\n", 2, "not valid UTF-8 text"),
        (b"user_id:token\t\xff:token\n", 1, "header line is not valid UTF-8"),
        (INTER + GOOD, None, "no interactions left after 5-core filtering"),
    ],
)
def test_bad_inter_file_raises_one_line_data_error(tmp_path, content, line, fragment):
    path = write(tmp_path / "bad.inter", content)
    with pytest.raises(DataError) as info:
        load_atomic(path)
    message = str(info.value)
    assert "\n" not in message and fragment in message, message
    assert message.startswith(f"{path}:{line}: " if line else f"{path}: "), message
    assert info.value.path == path


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ("", None, "file is empty"),
        ("item:token\tcolor:token\nb\tred\n", 1, "missing field 'item_id:token'"),
        ("item_id:token\tcolor\nb\tred\n", 1, "header field 'color' is not typed"),
        ("item_id:token\tcolor:token\nb\tred\n\tblue\n", 3, "missing value in column 'item_id:token'"),
        ("item_id:token\tcolor:token\nb\tred\tbig\n", None, "the first data row has 3 fields, the header 2"),
    ],
)
def test_bad_item_file_errors_name_the_item_file(tmp_path, content, line, fragment):
    inter = write(tmp_path / "ok.inter", INTER + GOOD)
    item = write(tmp_path / "bad.item", content)
    with pytest.raises(DataError) as info:
        load_atomic(inter, item, min_count=1)
    message = str(info.value)
    assert "\n" not in message and fragment in message, message
    assert message.startswith(f"{item}:{line}: " if line else f"{item}: "), message


def test_missing_files(tmp_path):
    with pytest.raises(DataError, match=r"nope\.inter: file not found$"):
        load_atomic(tmp_path / "nope.inter")
    inter = write(tmp_path / "ok.inter", INTER + GOOD)
    with pytest.raises(DataError, match=r"nope\.item: file not found$"):
        load_atomic(inter, tmp_path / "nope.item", min_count=1)
    with pytest.raises(DataError, match=r"gone\.inter: file not found$"):
        load_path(DataConfig(path=str(tmp_path / "gone.inter")))
