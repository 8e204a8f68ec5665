"""Tests for the generic interaction-table loader (s3rec.data.tables)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from s3rec.data.dataset import SequenceData
from s3rec.config import EvalConfig
from s3rec.data.loading import DataConfig, load_data
from s3rec.data.tables import from_dataframes, load_id_maps, load_table, save_id_maps
from s3rec.data.splits import LeaveOneOut
from s3rec.pipeline import describe_protocol
from s3rec.errors import DataError, S3RecError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def sequences(data: SequenceData) -> dict[str, list[str]]:
    """Raw user id -> raw item ids, oldest first."""
    return {data.user_ids[u]: [data.item_ids[i] for i in data.sequence(u)] for u in range(data.n_users)}


def assert_same(a: SequenceData, b: SequenceData) -> None:
    for field in ("offsets", "items", "attr_offsets", "attr_values", "user_ids", "item_ids", "attribute_names"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert (a.n_items, a.n_attributes, a.name) == (b.n_items, b.n_attributes, b.name)


def test_orders_by_timestamp_within_user_with_stable_ties(tmp_path):
    path = write(tmp_path / "log.csv", "user_id,item_id,timestamp\nb,x,5\na,p,30\na,q,10\nb,y,5\na,r,10\nb,z,1\na,s,20\n")
    data = load_table(path, min_count=1)
    assert list(data.user_ids) == ["b", "a"]  # order of first appearance in the file
    assert sequences(data) == {"b": ["z", "x", "y"], "a": ["q", "r", "s", "p"]}
    assert list(data.item_ids) == [None, "z", "x", "y", "q", "r", "s", "p"]
    assert data.items.tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert data.name == "log" and data.source == str(path)


def test_without_time_column_file_order_is_time_order(tmp_path):
    path = write(tmp_path / "log.csv", "u,i\n1,c\n2,a\n1,b\n2,b\n1,a\n2,c\n")
    data = load_table(path, user_col="u", item_col="i", time_col=None, min_count=1, name="toy")
    assert sequences(data) == {"1": ["c", "b", "a"], "2": ["a", "b", "c"]}
    assert data.name == "toy"


def test_iso_dates_are_parsed_as_utc(tmp_path):
    text = "user_id,item_id,timestamp\nu,a,2020-01-02\nu,b,2020-01-01T23:00:00-02:00\nu,c,2020-01-01T12:00:00Z\n"
    data = load_table(write(tmp_path / "log.csv", text), min_count=1)
    assert sequences(data) == {"u": ["c", "a", "b"]}  # b is 2020-01-02T01:00Z


def test_k_core_is_iterated_to_a_fixed_point(tmp_path):
    # One pass only drops (u4, v); then u4 falls to 2, then w falls to 2, then u5 and u6 fall to 2.
    rows = [("u5", "w"), ("u1", "x"), ("u4", "x"), ("u2", "y"), ("u3", "z"), ("u4", "w"), ("u6", "w"), ("u1", "y"),
            ("u4", "v"), ("u5", "y"), ("u2", "x"), ("u3", "x"), ("u1", "z"), ("u6", "x"), ("u2", "z"), ("u5", "z"),
            ("u3", "y"), ("u6", "y")]
    text = "user_id,item_id\n" + "".join(f"{u},{i}\n" for u, i in rows)
    data = load_table(write(tmp_path / "log.csv", text), time_col=None, min_count=3)
    assert list(data.user_ids) == ["u1", "u2", "u3"]
    assert sequences(data) == {"u1": ["x", "y", "z"], "u2": ["y", "x", "z"], "u3": ["z", "x", "y"]}
    assert list(data.item_ids) == [None, "x", "y", "z"]
    assert data.n_items == 3 and data.offsets.tolist() == [0, 3, 6, 9]


def test_min_count_zero_or_one_disables_filtering_and_repeats_are_kept(tmp_path):
    path = write(tmp_path / "log.csv", "user_id,item_id,timestamp\n1,a,1\n1,a,2\n1,b,3\n")
    for k in (0, 1):
        data = load_table(path, min_count=k)
        assert sequences(data) == {"1": ["a", "a", "b"]}


def test_ids_are_contiguous_and_raw_maps_are_kept(tmp_path):
    path = write(tmp_path / "log.csv", "user_id,item_id,timestamp\n42,900,3\n7,12,1\n42,12,2\n7,900,2\n42,5,1\n7,5,3\n")
    data = load_table(path, min_count=1)
    assert list(data.user_ids) == ["42", "7"]
    assert list(data.item_ids) == [None, "5", "12", "900"]
    assert data.items.tolist() == [1, 2, 3, 2, 3, 1]
    assert data.items.dtype == np.int64 and data.offsets.dtype == np.int64
    assert data.n_attributes == 0 and data.attr_values.size == 0
    assert data.attr_offsets.tolist() == [0, 0, 0, 0]


def test_attributes_merge_columns_with_prefixes_and_split_values(tmp_path):
    log = write(tmp_path / "log.csv", "user_id,item_id,timestamp\nu,i1,1\nu,i2,2\nu,i3,3\nu,i4,4\n")
    meta = write(
        tmp_path / "items.csv",
        "asin,categories,brand\n"
        "zz,Unused|Other,Ghost\n"  # not an interacted item: ignored, adds no attribute
        "i2,Lipstick| a ,Acme\n"
        "i1,a|b|a,\n"  # a repeated value counts once
        "i4,,a\n",  # i3 is missing from the item table
    )
    data = load_table(log, item_table=meta, item_table_item_col="asin", attribute_cols=("categories", "brand"), min_count=1)
    assert list(data.attribute_names) == [None, "categories=a", "categories=b", "categories=Lipstick", "brand=Acme", "brand=a"]
    assert data.n_attributes == 5
    assert data.attr_offsets.tolist() == [0, 2, 5, 5, 6]
    assert [data.attributes_of(i).tolist() for i in range(1, 5)] == [[1, 2], [3, 1, 4], [], [5]]
    assert data.item_attribute_counts().tolist() == [0, 2, 3, 0, 1]


def test_csv_tsv_txt_and_parquet_give_identical_data(tmp_path):
    rng = np.random.default_rng(0)
    log = pd.DataFrame({
        "user_id": rng.integers(100, 106, 120), "item_id": rng.choice(["a", "b", "c", "d", "e", "f"], 120),
        "timestamp": rng.integers(0, 50, 120),
    })
    meta = pd.DataFrame({"item_id": ["a", "c", "d", "f"], "categories": ["x|y", "y", None, "z|x"]})
    meta.to_csv(tmp_path / "meta.csv", index=False)
    meta.to_parquet(tmp_path / "meta.parquet", index=False)
    log.to_csv(tmp_path / "log.csv", index=False)
    log.to_csv(tmp_path / "log.tsv", sep="\t", index=False)
    log.to_csv(tmp_path / "log.txt", sep="\t", index=False)
    log.to_parquet(tmp_path / "log.parquet", index=False)
    log.to_parquet(tmp_path / "log.pq", index=False)
    ref = load_table(tmp_path / "log.csv", item_table=tmp_path / "meta.csv", min_count=3)
    assert ref.n_users > 0 and ref.n_attributes == 3
    for other in ("log.tsv", "log.txt", "log.parquet", "log.pq"):
        assert_same(ref, load_table(tmp_path / other, item_table=tmp_path / "meta.parquet", min_count=3))


def test_save_and_load_id_maps_round_trip(tmp_path):
    log = write(tmp_path / "log.csv", "user_id,item_id,timestamp\nNA,i1,1\nNA,i2,2\nNA,i1,3\n")
    meta = write(tmp_path / "items.csv", "item_id,categories\ni1,x|y\n")
    data = load_table(log, item_table=meta, min_count=1)
    save_id_maps(data, tmp_path / "maps")
    maps = load_id_maps(tmp_path / "maps")
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["attributes.csv", "items.csv", "users.csv"]
    assert maps["users"].to_dict("list") == {"row": [0], "raw_id": ["NA"]}
    assert maps["items"].to_dict("list") == {"item": [1, 2], "raw_id": ["i1", "i2"]}
    assert maps["attributes"].to_dict("list") == {"attribute": [1, 2], "raw_name": ["categories=x", "categories=y"]}


def test_id_maps_without_attributes(tmp_path):
    data = load_table(write(tmp_path / "log.csv", "user_id,item_id\nu,a\nu,b\nu,c\n"), time_col=None, min_count=1)
    save_id_maps(data, tmp_path)
    assert load_id_maps(tmp_path)["attributes"].empty


def test_id_maps_of_s3rec_files_list_their_attribute_ids(tmp_path):
    """S3-Rec files number attributes themselves: the map is the identity, one row per attribute."""
    (tmp_path / "d.txt").write_text("1 1 2 3\n2 2 3 1\n")
    (tmp_path / "d_item2attributes.json").write_text('{"1": [1, 2], "2": [3], "3": [3]}')
    data = load_data(DataConfig(path=str(tmp_path / "d.txt"), min_count=1))
    save_id_maps(data, tmp_path / "maps")
    assert load_id_maps(tmp_path / "maps")["attributes"].to_dict("list") == {"attribute": [1, 2, 3],
                                                                             "raw_name": ["1", "2", "3"]}


TABLE = "user_id,item_id,timestamp\n"


@pytest.mark.parametrize(
    ("file", "content", "line", "fragment"),
    [
        ("log.json", TABLE + "u,a,1\n", None, "unknown table format"),
        ("log.txt", "user_id item_id\nu a\n", None, "tab-separated"),
        ("log.csv", "", None, "empty"),
        ("log.csv", TABLE, None, "no rows"),
        ("log.csv", "user,item_id\nu,a\n", None, "'user_id', 'timestamp'; found 'user', 'item_id'"),
        ("log.csv", TABLE + "u,a,1\n,b,2\n", 3, "missing value in column 'user_id'"),
        ("log.tsv", TABLE.replace(",", "\t") + "u\ta\t1\n\nu\t \t2\n", 4, "missing value in column 'item_id'"),
        ("log.csv", TABLE + "u,a,1\nu,b,2\nu,c,soon\n", 4, "cannot parse timestamp 'soon'"),
        ("log.csv", TABLE + "u,a,1\nu,b,inf\nu,c,3\n", 3, "cannot parse timestamp 'inf'"),  # would sort last
        ("log.csv", TABLE + "u,a,1.5\nu,b,2\nu,c,-1e400\n", 4, "cannot parse timestamp '-1e400'"),
        ("log.csv", TABLE + "u,a,2020-01-01\nu,b,\n", 3, "missing timestamp"),
        ("log.csv", TABLE + "u,a,1\nu,b,2,3\n", 3, "cannot parse CSV"),
        ("log.csv", b"user_id,item_id,timestamp\nu,\xff,1\n", 2, "not valid UTF-8 text"),
        ("log.parquet", b"not parquet at all", None, "cannot read Parquet"),
        ("log.csv", TABLE + "u,a,1\nu,b,2\nu,c,3\n", None, "no interactions left after 5-core filtering"),
    ],
)
def test_bad_input_raises_one_line_data_error(tmp_path, file, content, line, fragment):
    path = tmp_path / file
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError) as info:
        load_table(path)
    message = str(info.value)
    assert "\n" not in message and fragment in message
    assert message.startswith(f"{path}:{line}: " if line else f"{path}: ")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file not found$"):
        load_table(tmp_path / "nope.csv")


def test_users_too_short_for_leave_one_out(tmp_path):
    path = write(tmp_path / "log.csv", TABLE + "u,a,1\nu,b,2\nu,c,3\nv,a,1\nw,b,1\nw,c,2\n")
    with pytest.raises(DataError, match=r"log\.csv: 2 users have fewer than 3 .*--min-count"):
        load_table(path, min_count=1)


def test_parquet_row_errors_name_the_row(tmp_path):
    path = tmp_path / "log.parquet"
    pd.DataFrame({"user_id": ["u", None], "item_id": ["a", "b"], "timestamp": [1, 2]}).to_parquet(path)
    with pytest.raises(DataError, match=r"log\.parquet: row 2: missing value in column 'user_id'"):
        load_table(path)


def test_item_table_errors_name_the_item_table(tmp_path):
    log = write(tmp_path / "log.csv", TABLE + "u,a,1\nu,b,2\nu,c,3\n")
    meta = write(tmp_path / "meta.csv", "item_id,brand\na,x\n")
    with pytest.raises(DataError, match=r"meta\.csv: missing column\(s\) 'categories'; found 'item_id', 'brand'"):
        load_table(log, item_table=meta, min_count=1)
    with pytest.raises(DataError, match=r"meta\.csv:3: missing value in column 'item_id'"):
        load_table(log, item_table=write(tmp_path / "meta.csv", "item_id,brand\na,x\n,y\n"), attribute_cols="brand", min_count=1)


def test_a_stray_quote_that_swallows_rows_is_an_error_at_its_line(tmp_path):
    # `"i5 12in` opens a quoted field that runs on to the next quote: rows silently vanished into one id
    rows = ["user_id\titem_id\ttimestamp"] + [f"u{u}\ti{t}\t{10 * t + u}" for u in range(1, 4) for t in range(4)]
    rows[3] = 'u1\t"i5 12in\t21'
    rows[9] = 'u2\ti9"\t99'
    with pytest.raises(DataError, match=r"log\.tsv:4: a field of column 'item_id' runs over several lines"):
        load_table(write(tmp_path / "log.tsv", "\n".join(rows) + "\n"), min_count=1)
    with pytest.raises(DataError, match=r"bad\.csv:4: a quoted field opens here and never closes"):
        load_table(write(tmp_path / "bad.csv", TABLE + 'u,a,1\n\nu,"b,2\nu,c,3\n'), min_count=1)  # no quote follows
    quoted = write(tmp_path / "ok.tsv", 'user_id\titem_id\ttimestamp\nu\t"12"" vinyl"\t1\nu\tb\t2\nu\tc\t3\n')
    assert sequences(load_table(quoted, min_count=1))["u"][0] == '12" vinyl'  # a quoted field as pandas writes it


def test_a_stray_quote_in_a_column_s3rec_does_not_use_is_an_error_too(tmp_path):
    # the swallowed rows vanish from the id columns all the same (u2's rows and one of u3's)
    lines = ["user_id,item_id,timestamp,note", "u1,a,1,x", "u1,b,2,x", 'u1,c,3,"oops', "u2,a,1,x", "u2,b,2,x",
             "u2,c,3,x", 'u3,a,1,fine"', "u3,b,2,x", "u3,c,3,x"]
    with pytest.raises(DataError, match=r"log\.csv:4: a field of column 'note' runs over several lines"):
        load_table(write(tmp_path / "log.csv", "\n".join(lines) + "\n"), min_count=1)
    log = write(tmp_path / "ok.csv", TABLE + "u,a,1\nu,b,2\nu,c,3\n")
    meta = write(tmp_path / "meta.csv", 'item_id,categories,notes\na,c1,"big\nb,c2,x\nc,c3,y"\n')
    with pytest.raises(DataError, match=r"meta\.csv:2: a field of column 'notes' runs over several lines"):
        load_table(log, item_table=meta, min_count=1)
    empty = write(tmp_path / "empty_note.csv", "user_id,item_id,timestamp,note\nu,a,1,\nu,b,2,\nu,c,3,\n")
    assert sequences(load_table(empty, min_count=1))["u"] == ["a", "b", "c"]  # an all-missing column is fine


def test_one_column_in_two_roles_is_an_error(tmp_path):
    log = write(tmp_path / "log.csv", TABLE + "u,a,1\nu,b,2\nu,c,3\n")
    with pytest.raises(S3RecError, match=r"must be different columns, got 'user_id', 'item_id', 'item_id'"):
        load_table(log, time_col="item_id", min_count=1)
    with pytest.raises(S3RecError, match="must be different columns"):
        load_table(log, item_col="user_id", min_count=1)


def test_an_item_table_that_names_no_item_of_the_interactions_is_an_error(tmp_path):
    log = write(tmp_path / "log.csv", TABLE + "u,a,1\nu,b,2\nu,c,3\n")
    meta = write(tmp_path / "meta.csv", "item_id,categories\nx1,c1\nx2,c2\n")
    with pytest.raises(DataError, match=r"meta\.csv: no item id in column 'item_id' is an item of the interactions"):
        load_table(log, item_table=meta, min_count=1)


def test_parquet_list_cells_are_multi_valued_attributes(tmp_path):
    log = write(tmp_path / "log.csv", TABLE + "u,a,1\nu,b,2\nu,c,3\n")
    meta = tmp_path / "meta.parquet"
    pd.DataFrame({"item_id": ["a", "b", "c"], "categories": [["x", "y"], ["y"], []]}).to_parquet(meta)
    data = load_table(log, item_table=meta, min_count=1)
    text = write(tmp_path / "meta.csv", "item_id,categories\na,x|y\nb,y\nc,\n")
    assert_same(data, load_table(log, item_table=text, min_count=1))
    assert list(data.attribute_names[1:]) == ["categories=x", "categories=y"]


def test_a_date_among_numeric_timestamps_is_an_error_at_its_line(tmp_path):
    # ISO 8601 also reads 1001 as a year: the column used to become dates, the numbers years
    log = write(tmp_path / "log.csv", TABLE + "u,a,1001\nu,b,1002\nu,c,2020-01-01\nu,d,1003\n")
    with pytest.raises(DataError, match=r"log\.csv:4: cannot parse timestamp '2020-01-01' in column 'timestamp' \(expected a number\)"):
        load_table(log, min_count=1)


def test_too_short_users_are_named(tmp_path):
    log = write(tmp_path / "log.csv", TABLE + "u,a,1\nu,b,2\nu,c,3\nw,a,1\nw,b,2\n")
    with pytest.raises(DataError, match=r"1 users have fewer than 3 interactions .* \(e\.g\. user 'w' with 2\)"):
        load_table(log, min_count=1)


def test_blanks_around_ids_are_not_part_of_them(tmp_path):
    spaced = load_table(write(tmp_path / "a.csv", TABLE + "u, a,1\nu ,b,2\n u,a ,3\n"), min_count=1)
    assert sequences(spaced) == {"u": ["a", "b", "a"]} and spaced.n_items == 2


def test_the_k_core_filter_says_what_it_kept_and_the_protocol_prints_it(tmp_path):
    rows = [f"u{u},i{t},{t}" for u in range(3) for t in range(5)] + ["lone,i0,9", "u0,rare,10"]
    data = load_table(write(tmp_path / "log.csv", TABLE + "\n".join(rows) + "\n"), min_count=3)
    assert data.extra["k_core"] == {"min_count": 3, "users": [3, 4], "items": [5, 6], "interactions": [15, 17],
                                    "duplicate_rows": 0}
    assert "  3-core filter: kept 3 of 4 users, 5 of 6 items, 15 of 17 interactions" in describe_protocol(
        EvalConfig(), LeaveOneOut.from_data(data), max_len=50).splitlines()
    everything = load_table(write(tmp_path / "all.csv", TABLE + "\n".join(rows[:15]) + "\n"), min_count=3)
    described = describe_protocol(EvalConfig(), LeaveOneOut.from_data(everything), max_len=50)
    assert "core filter" not in described and "repeat an earlier row" not in described  # nothing to say: no line


def test_the_protocol_counts_exact_duplicate_rows_and_targets_that_repeat_a_history_item(tmp_path):
    rows = ["u0,a,1", "u0,b,2", "u0,a,3",  # test target a repeats the history: never a hit under exclusion
            "u1,a,1", "u1,b,2", "u1,b,2", "u1,c,3",  # one exact duplicate row: validation target b repeats b
            "u2,a,1", "u2,b,2", "u2,c,3", "u2,c,3"]  # duplicate row at the end: test target c repeats c
    data = load_table(write(tmp_path / "log.csv", TABLE + "\n".join(rows) + "\n"), min_count=1)
    assert data.extra["k_core"]["duplicate_rows"] == 2 and sequences(data)["u1"] == ["a", "b", "b", "c"]  # kept
    split = LeaveOneOut.from_data(data)
    assert (split.repeated_targets("test"), split.repeated_targets("valid")) == (2, 1)
    lines = describe_protocol(EvalConfig(), split, max_len=50).splitlines()
    assert lines[1].startswith("  2 rows repeat an earlier row's user, item and time exactly (kept")
    assert "it can then not be hit; 2 test and 1 validation targets do)" in lines[-2]
    kept = describe_protocol(EvalConfig(exclude_history=False), split, max_len=50)
    assert "history items kept as candidates;" in kept and "targets do" not in kept
    untimed = load_table(write(tmp_path / "untimed.csv", "user_id,item_id\nu,a\nu,a\nu,b\n"), min_count=1, time_col=None)
    assert untimed.extra["k_core"]["duplicate_rows"] == 0  # without times a repeat is a new interaction
    # a duplicate the k-core filter drops is no kept row; one kept duplicate reads in the singular
    core = [f"u{u},{i},{t}" for u in range(3) for t, i in enumerate("xyz")] + ["c,w,1", "c,w,1", "u0,x,0"]
    filtered = load_table(write(tmp_path / "core.csv", TABLE + "\n".join(core) + "\n"), min_count=3)
    assert filtered.extra["k_core"]["duplicate_rows"] == 1
    assert "  1 row repeats an earlier row's user, item and time exactly" in describe_protocol(
        EvalConfig(), LeaveOneOut.from_data(filtered), max_len=50)


@pytest.mark.parametrize("name, sep, hint", [
    ("log.csv", ";", "separated by ';'? a .csv file is read as separated by commas"),
    ("log.csv", "\t", "separated by '\\t'? a .csv file is read as separated by commas"),
    ("log.tsv", ",", "separated by ','? a .tsv file is read as separated by tabs"),
])
def test_a_table_read_as_one_column_names_the_likely_separator(tmp_path, name, sep, hint):
    path = write(tmp_path / name, sep.join(["user_id", "item_id", "timestamp"]) + "\n" + sep.join("ua1") + "\n")
    with pytest.raises(DataError) as excinfo:
        load_table(path)
    assert str(excinfo.value).startswith(f"{path}: missing column(s)") and str(excinfo.value).endswith(hint + ")")


def test_no_separator_hint_when_the_columns_are_simply_other_names(tmp_path):
    with pytest.raises(DataError) as excinfo:
        load_table(write(tmp_path / "log.csv", "user,item,time\nu,a,1\n"))
    assert "separated" not in str(excinfo.value)


def test_a_byte_that_is_not_utf8_is_named_by_its_line(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes((TABLE + "u,a,1\nu,b,2\n").encode() + b"u,caf\xe9,3\n")
    with pytest.raises(DataError, match=r"log\.csv:4: not valid UTF-8 text"):
        load_table(path, min_count=1)


def test_list_valued_ids_in_parquet_are_an_error_at_their_row(tmp_path):
    path = tmp_path / "log.parquet"
    pd.DataFrame({"user_id": ["u", "u", "u"], "item_id": [["a"], ["b"], ["c"]], "timestamp": [1, 2, 3]}).to_parquet(path)
    with pytest.raises(DataError, match=r"log\.parquet: row 1: column 'item_id' holds list values"):
        load_table(path, min_count=1)  # not the ids "['a']", "['b']", ...


def test_a_column_named_twice_in_the_header_is_an_error(tmp_path):
    path = write(tmp_path / "log.csv", "user_id,item_id,item_id,timestamp\nu,a,x,1\nu,b,y,2\nu,c,z,3\n")
    with pytest.raises(DataError, match=r"log\.csv:1: column 'item_id' appears more than once in the header"):
        load_table(path, min_count=1)
    other = write(tmp_path / "ok.csv", "user_id,item_id,note,note,timestamp\nu,a,x,x,1\nu,b,y,y,2\nu,c,z,z,3\n")
    assert sequences(load_table(other, min_count=1))["u"] == ["a", "b", "c"]  # unused columns may repeat


def test_a_non_finite_parquet_timestamp_is_an_error_at_its_row(tmp_path):
    frame = pd.DataFrame({"user_id": ["u", "u", "u"], "item_id": ["a", "b", "c"], "timestamp": [1.0, float("inf"), 3.0]})
    frame.to_parquet(tmp_path / "log.parquet", index=False)
    with pytest.raises(DataError, match=r"log\.parquet: row 2: cannot parse timestamp 'inf'"):
        load_table(tmp_path / "log.parquet", min_count=1)


def test_empty_attribute_values_are_no_attribute():
    log = pd.DataFrame({"user_id": ["u", "u", "u"], "item_id": ["i1", "i2", "i3"], "timestamp": [1, 2, 3]})
    items = pd.DataFrame({"item_id": ["i1", "i2", "i3"], "categories": ["a||b", "a| ", "b|"]})
    data = from_dataframes(log, items, min_count=1)
    assert list(data.attribute_names) == [None, "categories=a", "categories=b"]
    assert data.attr_offsets.tolist() == [0, 2, 3, 4] and data.attr_values.tolist() == [1, 2, 1, 2]


def test_a_data_set_prints_as_its_sizes_not_its_arrays():
    from s3rec.data.synthetic import make_synthetic

    data = make_synthetic(n_users=30, n_items=40, n_attributes=5, n_topics=2, seed=1)
    assert repr(data) == (f"SequenceData(name={data.name!r}, users=30, items=40, interactions={len(data.items):,}, "
                          f"attributes=5, source={data.source!r})")
