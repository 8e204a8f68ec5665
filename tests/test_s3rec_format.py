"""Tests of the S3-Rec release-format loader (Name.txt, Name_item2attributes.json, Name_sample.txt)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from s3rec.data import registry
from s3rec.data.loading import DataConfig, load_data
from s3rec.data.s3rec_format import load_s3rec_format, read_attributes
from s3rec.data.stats import dataset_statistics
from s3rec.errors import DataError, S3RecError

# Read at import time, so that fixtures of other test files that clear the variables cannot hide them.
_DATA_DIR_ENV = os.environ.get("S3REC_DATA_DIR")
_REQUIRE_DATA = os.environ.get("S3REC_REQUIRE_DATA") == "1"


def real_data_dir(*needed: str) -> Path:
    """The real-data folder from $S3REC_DATA_DIR; skip if unset (fail instead when S3REC_REQUIRE_DATA=1)."""
    if not _DATA_DIR_ENV:
        if _REQUIRE_DATA:
            pytest.fail("S3REC_REQUIRE_DATA=1 but S3REC_DATA_DIR is not set")
        pytest.skip("real data not available: set S3REC_DATA_DIR")
    folder = Path(_DATA_DIR_ENV)
    missing = [n for n in needed if not (folder / n).is_file()]
    if missing:
        if _REQUIRE_DATA:
            pytest.fail(f"S3REC_REQUIRE_DATA=1 but {', '.join(missing)} missing in {folder}")
        pytest.skip(f"{', '.join(missing)} not in {folder}")
    return folder


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# The tiny hand-written data set
# ---------------------------------------------------------------------------------------------

TINY_TXT = "1 1 2 3\n2 2 3 4 5\n5 5 1 7\n"  # users 1, 2, 5; largest item id 7 (item 6 never appears)
# item 2 has no entry, item 4 an empty list, item 9 is not in the interactions (ignored)
TINY_ATTRS = '{"1": [1, 2], "3": [3], "4": [], "5": [2, 4], "9": [3]}'
TINY_SAMPLE = "5 2 6\n1 4 7\n2 1 6\n"  # lines in another order than the users


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path, Path]:
    return (write(tmp_path / "tiny.txt", TINY_TXT), write(tmp_path / "tiny_item2attributes.json", TINY_ATTRS),
            write(tmp_path / "tiny_sample.txt", TINY_SAMPLE))


def test_tiny_data_set_loads_exactly(tiny):
    txt, attrs, sample = tiny
    data = load_s3rec_format(txt, attrs, sample)
    assert data.name == "tiny"
    assert data.source == str(txt)
    assert data.n_users == 3
    assert data.n_items == 7
    np.testing.assert_array_equal(data.offsets, [0, 3, 7, 10])
    np.testing.assert_array_equal(data.items, [1, 2, 3, 2, 3, 4, 5, 5, 1, 7])
    assert data.offsets.dtype == np.int64 and data.items.dtype == np.int64
    np.testing.assert_array_equal(data.user_ids, [1, 2, 5])
    assert list(data.item_ids) == [None, 1, 2, 3, 4, 5, 6, 7]
    np.testing.assert_array_equal(data.lengths, [3, 4, 3])
    np.testing.assert_array_equal(data.sequence(2), [5, 1, 7])
    # attributes: items 1..7 have [1,2], [], [3], [], [2,4], [], []
    np.testing.assert_array_equal(data.attr_offsets, [0, 2, 2, 3, 3, 5, 5, 5])
    np.testing.assert_array_equal(data.attr_values, [1, 2, 3, 2, 4])
    assert data.n_attributes == 4
    np.testing.assert_array_equal(data.attributes_of(1), [1, 2])
    np.testing.assert_array_equal(data.attributes_of(2), [])
    np.testing.assert_array_equal(data.attributes_of(5), [2, 4])
    np.testing.assert_array_equal(data.item_attribute_counts(), [0, 2, 0, 1, 0, 2, 0, 0])
    # negatives aligned with the user rows (1, 2, 5), not with the file's line order
    assert data.fixed_negatives.dtype == np.int64
    np.testing.assert_array_equal(data.fixed_negatives, [[4, 7], [1, 6], [2, 6]])


def test_tiny_without_attributes_or_sample(tiny):
    txt, _, _ = tiny
    data = load_s3rec_format(txt, name="given")
    assert data.name == "given"
    assert data.n_attributes == 0
    assert len(data.attr_values) == 0
    np.testing.assert_array_equal(data.attr_offsets, np.zeros(8))
    assert data.fixed_negatives is None


def test_blank_lines_and_extra_spaces_are_ignored(tmp_path):
    txt = write(tmp_path / "spaced.txt", "\n1  1 2\t3\n\n   \n2 2 3 4 5   \n")
    data = load_s3rec_format(txt)
    np.testing.assert_array_equal(data.offsets, [0, 3, 7])
    np.testing.assert_array_equal(data.items, [1, 2, 3, 2, 3, 4, 5])
    np.testing.assert_array_equal(data.user_ids, [1, 2])


def test_a_byte_order_mark_is_not_part_of_the_first_id(tmp_path):
    plain = load_s3rec_format(write(tmp_path / "Plain.txt", "1 1 2 3\n2 2 3 4\n"))
    (tmp_path / "Bom.txt").write_bytes(b"\xef\xbb\xbf1 1 2 3\n2 2 3 4\n")  # as Notepad saves UTF-8
    (tmp_path / "Bom_item2attributes.json").write_bytes(b'\xef\xbb\xbf{"1": [1], "2": [2]}')
    bom = load_s3rec_format(tmp_path / "Bom.txt", tmp_path / "Bom_item2attributes.json")
    np.testing.assert_array_equal(bom.items, plain.items)
    np.testing.assert_array_equal(bom.user_ids, [1, 2])
    assert bom.n_attributes == 2


def test_repeated_items_in_a_sequence_are_kept(tmp_path):
    data = load_s3rec_format(write(tmp_path / "rep.txt", "3 4 4 4 1\n"))
    np.testing.assert_array_equal(data.items, [4, 4, 4, 1])
    assert data.n_items == 4


def test_load_data_finds_the_attribute_and_sample_files_beside_the_txt(tiny):
    txt, _, _ = tiny
    data = load_data(DataConfig(path=str(txt)), progress=False)
    assert data.n_attributes == 4
    np.testing.assert_array_equal(data.fixed_negatives, [[4, 7], [1, 6], [2, 6]])


def test_load_data_keeps_the_newest_train_fraction_of_an_s3rec_file(tmp_path):
    """--train-fraction applies to a user's Name.txt too: the oldest training items go, valid and test stay."""
    txt = write(tmp_path / "Frac.txt", "1 1 2 3 4 5 6\n2 7 8 9\n3 1 3 5 7 9\n")
    data = load_data(DataConfig(path=str(txt), train_fraction=0.5), progress=False)
    # training parts 1-4, 7 and 1 3 5 keep max(1, round(0.5 * n)) = 2, 1, 2 newest items
    assert [data.sequence(u).tolist() for u in range(3)] == [[3, 4, 5, 6], [7, 8, 9], [3, 5, 7, 9]]
    np.testing.assert_array_equal(data.user_ids, [1, 2, 3])
    assert data.n_items == 9
    assert data.extra["train_fraction"] == 0.5


def test_tab_after_the_user_id_is_still_s3rec_format(tiny):
    """`1<TAB>5 7 9` (ids only in the first line) is Name.txt, not a table whose header is numbers."""
    txt, _, _ = tiny
    tabbed = txt.with_name("tabbed.txt")
    tabbed.write_text("".join(line.replace(" ", "\t", 1) + "\n" for line in txt.read_text().splitlines()))
    assert "\t" in tabbed.read_text()
    a = load_data(DataConfig(path=str(txt)), progress=False)
    b = load_data(DataConfig(path=str(tabbed)), progress=False)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_array_equal(a.user_ids, b.user_ids)


# ---------------------------------------------------------------------------------------------
# Bad input: one-line DataError naming the file (and 1-based line)
# ---------------------------------------------------------------------------------------------


def check_error(excinfo: pytest.ExceptionInfo, path: Path, line: int | None, *fragments: str) -> str:
    err = excinfo.value
    assert isinstance(err, DataError)
    msg = str(err)
    assert "\n" not in msg
    assert path.name in msg
    if line is not None:
        assert f"{path.name}:{line}:" in msg
        assert err.line == line
    else:
        assert err.line is None
        assert f"{path.name}:" in msg and not any(f":{n}:" in msg for n in range(1, 10))
    assert err.path == path
    for frag in fragments:
        assert frag in msg, (frag, msg)
    return msg


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("1 1 2 3\n2 2 x 4\n", 2, "'x'"),
        ("1 1 2 3\n2 2 3 4.5\n", 2, "'4.5'"),
        ("u1 1 2 3\n", 1, "'u1'"),
        ("1 1 2 3\n2 2 3 4\n3,3,4,5\n", 3, "non-integer"),
    ],
)
def test_non_integer_id(tmp_path, text, line, fragment):
    path = write(tmp_path / "bad.txt", text)
    with pytest.raises(DataError) as e:
        load_s3rec_format(path)
    check_error(e, path, line, fragment)


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("1 1 2 3\n2 0 3 4\n", 2, "got 0"),
        ("1 1 2 3\n2 2 3 4\n0 1 2 3\n", 3, "got 0"),  # user id 0
        ("-1 1 2 3\n", 1, "got -1"),
        ("1 1 2 3\n2 2 -5 4\n", 2, "got -5"),
    ],
)
def test_zero_or_negative_id(tmp_path, text, line, fragment):
    path = write(tmp_path / "neg.txt", text)
    with pytest.raises(DataError) as e:
        load_s3rec_format(path)
    check_error(e, path, line, "positive", fragment)


@pytest.mark.parametrize("text, line", [("1 1 2 3\n2 2 3\n", 2), ("1 1\n", 1), ("1 1 2 3\n2 2 3 4\n7\n", 3)])
def test_user_with_fewer_than_three_items(tmp_path, text, line):
    path = write(tmp_path / "short.txt", text)
    with pytest.raises(DataError) as e:
        load_s3rec_format(path)
    check_error(e, path, line, "at least 3")


def test_duplicate_user(tmp_path):
    path = write(tmp_path / "dup.txt", "1 1 2 3\n2 2 3 4\n1 3 4 5\n")
    with pytest.raises(DataError) as e:
        load_s3rec_format(path)
    check_error(e, path, 3, "user 1", "twice")


def test_duplicate_user_reports_the_second_occurrence(tmp_path):
    path = write(tmp_path / "dup2.txt", "4 1 2 3\n2 2 3 4\n3 2 3 4\n2 3 4 5\n4 3 4 5\n")
    with pytest.raises(DataError) as e:
        load_s3rec_format(path)
    check_error(e, path, 4, "user 2", "twice")


def test_duplicate_user_line_counts_blank_lines(tmp_path):
    path = write(tmp_path / "dupblank.txt", "1 1 2 3\n\n2 2 3 4\n1 3 4 5\n")
    with pytest.raises(DataError) as e:
        load_s3rec_format(path)
    check_error(e, path, 4, "user 1")


def test_double_minus_token_is_a_data_error(tmp_path):
    path = write(tmp_path / "minus.txt", "1 1 2 3\n2 2 --3 4\n")
    with pytest.raises(DataError) as e:
        load_s3rec_format(path)
    check_error(e, path, 2, "'--3'")


@pytest.mark.parametrize("text", ["", "\n\n   \n"])
def test_empty_file(tmp_path, text):
    path = write(tmp_path / "empty.txt", text)
    with pytest.raises(DataError) as e:
        load_s3rec_format(path)
    check_error(e, path, None, "empty")


def test_missing_interactions_file(tmp_path):
    path = tmp_path / "nothere.txt"
    with pytest.raises(DataError) as e:
        load_s3rec_format(path)
    check_error(e, path, None, "not found")


def test_missing_attribute_file(tiny, tmp_path):
    txt, _, _ = tiny
    path = tmp_path / "none_item2attributes.json"
    with pytest.raises(DataError) as e:
        load_s3rec_format(txt, path)
    check_error(e, path, None, "not found")


def test_missing_sample_file(tiny, tmp_path):
    txt, attrs, _ = tiny
    path = tmp_path / "none_sample.txt"
    with pytest.raises(DataError) as e:
        load_s3rec_format(txt, attrs, path)
    check_error(e, path, None, "not found")


@pytest.mark.parametrize("text, fragment", [("[1, 2, 3]", "list"), ('"items"', "str"), ("42", "int"),
                                            ("null", "NoneType")])
def test_attribute_json_not_an_object(tiny, tmp_path, text, fragment):
    txt, _, _ = tiny
    path = write(tmp_path / "a_item2attributes.json", text)
    with pytest.raises(DataError) as e:
        load_s3rec_format(txt, path)
    check_error(e, path, None, "JSON object", fragment)


@pytest.mark.parametrize("text, line", [('{"1": [1, 2],\n"2": [3,]}', 2), ('{"1": [1, 2]', 1),
                                        ('{"1": [1]}\n\n{"2": [1]}', 3), ("{'1': [1]}", 1)])
def test_invalid_json(tiny, tmp_path, text, line):
    txt, _, _ = tiny
    path = write(tmp_path / "b_item2attributes.json", text)
    with pytest.raises(DataError) as e:
        load_s3rec_format(txt, path)
    check_error(e, path, line, "invalid JSON")


def test_empty_attribute_file(tiny, tmp_path):
    txt, _, _ = tiny
    path = write(tmp_path / "c_item2attributes.json", " \n")
    with pytest.raises(DataError) as e:
        load_s3rec_format(txt, path)
    check_error(e, path, None, "empty")


@pytest.mark.parametrize("obj, fragment", [
    ({"1": [1, "a"]}, "item 1"),
    ({"3": [1.5]}, "item 3"),
    ({"2": [True]}, "item 2"),
    ({"1": [0]}, "item 1"),
    ({"1": [-2]}, "item 1"),
    ({"4": "1 2"}, "item 4"),
    ({"4": 3}, "item 4"),
    ({"1": [1], "x": [1]}, "'x'"),
])
def test_attribute_list_with_bad_values(tiny, tmp_path, obj, fragment):
    txt, _, _ = tiny
    path = write(tmp_path / "d_item2attributes.json", json.dumps(obj))
    with pytest.raises(DataError) as e:
        load_s3rec_format(txt, path)
    check_error(e, path, None, fragment)


def test_read_attributes_directly(tmp_path):
    path = write(tmp_path / "e.json", '{"2": [5, 1], "1": [3]}')
    offsets, values, n_attr = read_attributes(path, 3)
    np.testing.assert_array_equal(offsets, [0, 1, 3, 3])
    np.testing.assert_array_equal(values, [3, 5, 1])
    assert n_attr == 5


@pytest.mark.parametrize("text, line, fragments", [
    ("1 4 7\n3 1 6\n5 2 6\n", 2, ("unknown user 3",)),
    ("1 4 7\n2 1 6\n5 2\n", 3, ("expected 2 negatives, got 1",)),
    ("1 4 7\n2 1 6 6\n5 2 6\n", 2, ("expected 2 negatives, got 3",)),
    ("1 4 7\n2 1 3\n5 2 6\n", 2, ("user 2", "interacted")),  # item 3 is in user 2's sequence
    ("1 4 7\n2 1 4\n5 2 6\n", 2, ("user 2", "interacted")),  # item 4 is user 2's validation item
    ("1 4 7\n2 5 6\n5 2 6\n", 2, ("user 2", "interacted")),  # item 5 is user 2's test item
    ("1 4 7\n2 6 6\n5 2 6\n", 2, ("user 2: negative 6 is listed twice",)),  # would count twice against the target
    ("1 4 7\n2 1 6\n1 4 6\n5 2 6\n", 3, ("user 1 has two lines of negatives",)),  # which line would win is a guess
    ("1 4 1\n2 1 6\n5 2 6\n", 1, ("user 1", "interacted")),
    ("1 4 7\n2 1 6\n5 2 8\n", 3, ("unknown item 8",)),
    ("1 4 7\n2 1 x\n5 2 6\n", 2, ("'x'",)),
    ("1 4 7\n2 1 0\n5 2 6\n", 2, ("positive",)),
    ("1 4 7\n2\n5 2 6\n", 2, ("at least 1",)),
])
def test_bad_sample_file(tiny, tmp_path, text, line, fragments):
    txt, attrs, _ = tiny
    path = write(tmp_path / "bad_sample.txt", text)
    with pytest.raises(DataError) as e:
        load_s3rec_format(txt, attrs, path)
    check_error(e, path, line, *fragments)


@pytest.mark.parametrize("text, fragment", [("1 4 7\n5 2 6\n", "user 2"), ("2 1 6\n", "2 users")])
def test_users_without_negatives_line(tiny, tmp_path, text, fragment):
    txt, attrs, _ = tiny
    path = write(tmp_path / "part_sample.txt", text)
    with pytest.raises(DataError) as e:
        load_s3rec_format(txt, attrs, path)
    check_error(e, path, None, "no negatives", fragment)


def test_empty_sample_file(tiny, tmp_path):
    txt, attrs, _ = tiny
    path = write(tmp_path / "empty_sample.txt", "")
    with pytest.raises(DataError) as e:
        load_s3rec_format(txt, attrs, path)
    check_error(e, path, None, "empty")


def test_sample_file_line_counts_blank_lines(tiny, tmp_path):
    txt, attrs, _ = tiny
    path = write(tmp_path / "blank_sample.txt", "1 4 7\n\n2 1 3\n5 2 6\n")
    with pytest.raises(DataError) as e:
        load_s3rec_format(txt, attrs, path)
    check_error(e, path, 3, "interacted")


def test_data_error_is_an_s3rec_error():
    err = DataError("bad thing", "some/file.txt", 7)
    assert isinstance(err, S3RecError)
    assert str(err) == "some/file.txt:7: bad thing"
    assert str(DataError("bad thing", "f.txt")) == "f.txt: bad thing"
    assert str(DataError("bad thing")) == "bad thing"


# ---------------------------------------------------------------------------------------------
# Real data: the README's statistics table
# ---------------------------------------------------------------------------------------------

# set: (users, items, interactions, avg seq len, attributes, avg attrs/item) from the data README
README_TABLE = {
    "Beauty": (22_363, 12_101, 198_502, 8.88, 637, 3.72),
    "LastFM": (1_090, 3_646, 52_551, 48.21, 388, 31.52),
}


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No cache outside tmp_path and no network for the registry resolver."""
    monkeypatch.setenv("S3REC_CACHE", str(tmp_path / "cache"))

    def no_network(*a, **k):
        raise AssertionError("the network must not be used")

    monkeypatch.setattr(registry, "_urlopen", no_network)


@pytest.mark.parametrize("name", sorted(README_TABLE))
def test_real_statistics_match_readme(name, offline):
    folder = real_data_dir(f"{name}.txt", f"{name}_item2attributes.json")
    users, items, inter, avg_len, attrs, avg_attrs = README_TABLE[name]
    data = load_data(DataConfig(dataset=name.lower(), data_dir=str(folder)), progress=False)
    stats = dataset_statistics(data)
    assert stats["users"] == users
    assert stats["items"] == items
    assert stats["interactions"] == inter
    assert round(stats["avg_actions_per_user"], 2) == avg_len
    assert stats["attributes"] == attrs
    assert round(stats["avg_attributes_per_item"], 2) == avg_attrs
    assert stats["min_seq_len"] >= 5  # 5-core


def test_real_lastfm_fixed_negatives(offline):
    folder = real_data_dir("LastFM.txt", "LastFM_item2attributes.json", "LastFM_sample.txt")
    data = load_s3rec_format(folder / "LastFM.txt", folder / "LastFM_item2attributes.json",
                             folder / "LastFM_sample.txt")
    assert data.fixed_negatives.shape == (1_090, 99)
    assert data.fixed_negatives.min() >= 1 and data.fixed_negatives.max() <= data.n_items


@pytest.mark.parametrize("name", sorted(README_TABLE))
def test_real_data_info_cli_prints_readme_figures(name, offline, capsys):
    from s3rec.cli import main

    folder = real_data_dir(f"{name}.txt", f"{name}_item2attributes.json")
    users, items, inter, avg_len, attrs, avg_attrs = README_TABLE[name]
    assert main(["data", "info", "--dataset", name.lower(), "--data-dir", str(folder), "--quiet"]) == 0
    out = capsys.readouterr().out
    table = out.split("users by sequence length:")[0]  # the key/value rows; a histogram follows
    rows = {line.strip().rsplit("  ", 1)[0].strip(): line.strip().rsplit("  ", 1)[1].strip()
            for line in table.splitlines()[1:] if line.strip()}
    assert out.splitlines()[0] == f"data set: {name}"
    assert rows["users"] == f"{users:,}"
    assert rows["items"] == f"{items:,}"
    assert rows["interactions"] == f"{inter:,}"
    assert rows["avg. actions / user"] == f"{avg_len:.2f}"
    assert rows["attributes"] == f"{attrs:,}"
    assert rows["avg. attributes / item"] == f"{avg_attrs:.2f}"


def test_huge_sparse_ids_are_rejected_not_allocated(tmp_path):
    txt = tmp_path / "big.txt"
    txt.write_text("1 1 2 1000000000000\n")
    with pytest.raises(DataError, match="contiguous"):
        load_s3rec_format(txt)
    txt.write_text("1 1 2 3\n")
    attrs = tmp_path / "big_item2attributes.json"
    attrs.write_text('{"1": [1, 99999999999]}')
    with pytest.raises(DataError, match="contiguous"):
        load_s3rec_format(txt, attrs)
