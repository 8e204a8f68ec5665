"""Property tests of every input parser: whatever the text, a parser returns a valid SequenceData (or config
mapping) or raises a one-line S3RecError/DataError naming the file -- never any other exception.

Inputs are both structured-but-wrong (a valid file with a few random corruptions: zeros, negatives, letters,
short users, extra fields, bad timestamps, JSON of the wrong shape) and arbitrary text or bytes.
S3REC_FUZZ_EXAMPLES sets the number of examples per test (default 60) for longer local runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3rec.config import read_options_file
from s3rec.data.dataset import SequenceData
from s3rec.data.recbole import load_atomic
from s3rec.data.s3rec_format import load_s3rec_format
from s3rec.data.tables import load_table
from s3rec.errors import DataError, S3RecError

FUZZ = settings(
    max_examples=int(os.environ.get("S3REC_FUZZ_EXAMPLES", "60")), deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# ---------------------------------------------------------------------------------------------
# The property: a valid result or a one-line error naming the file
# ---------------------------------------------------------------------------------------------


def check_valid(data: SequenceData) -> None:
    """The invariants every loader promises."""
    assert isinstance(data, SequenceData)
    n_users, n_items = data.n_users, data.n_items
    offsets, items = data.offsets, data.items
    assert n_users >= 1 and offsets.dtype == np.int64 and items.dtype == np.int64
    assert offsets[0] == 0 and offsets[-1] == len(items)
    assert np.all(np.diff(offsets) >= 3)  # monotone, and every user can be split leave-one-out
    assert items.min() >= 1 and items.max() <= n_items
    assert len(data.user_ids) == n_users and len(data.item_ids) == n_items + 1 and data.item_ids[0] is None
    attr_offsets, attr_values = data.attr_offsets, data.attr_values
    assert len(attr_offsets) == n_items + 1 and attr_offsets[0] == 0 and np.all(np.diff(attr_offsets) >= 0)
    assert attr_offsets[-1] == len(attr_values) and attr_values.dtype == np.int64
    if len(attr_values):
        assert attr_values.min() >= 1 and attr_values.max() <= data.n_attributes
    if data.attribute_names is not None:
        assert len(data.attribute_names) == data.n_attributes + 1
    if data.fixed_negatives is not None:
        negs = data.fixed_negatives
        assert negs.shape[0] == n_users and negs.min() >= 1 and negs.max() <= n_items


def check_error(error: S3RecError, path: Path) -> None:
    message = str(error)
    assert len(message.splitlines()) == 1 and "\n" not in message and "\r" not in message, repr(message)
    assert str(path) in message, (message, path)
    if isinstance(error, DataError):
        assert error.path == path, (error.path, path)


def outcome(call, path: Path):
    """Run a parser; check its result or its error. Any other exception type fails the test."""
    try:
        result = call()
    except S3RecError as e:
        check_error(e, path)
        return None
    if isinstance(result, SequenceData):
        check_valid(result)
    return result


def put(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", errors="surrogatepass"))
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------

ANY_TEXT = st.one_of(st.text(max_size=300), st.binary(max_size=300))
BAD_IDS = st.sampled_from(["0", "-1", "-7", "x", "1.5", "1e3", "\u0663", "1_0", "+4", "0x10", "--3", "9" * 25,
                           "9" * 19, str(2**63), "NaN", "", "\u00a0", "\x00", "\ufeff1", ",", "\"", "#"])
BAD_CELLS = st.one_of(BAD_IDS, st.sampled_from(["soon", "2020-13-45", "2020-01-01T10:00:00Z", "1e400", "inf", "-inf",
                                                 "nan", "NA", "null", " ", "a b", "a|b", "\t", "\"x", "x\"y"]),
                      st.text(max_size=8))


ROW_EDITS = ("cell", "cell", "drop", "add", "dup", "blank", "garbage", "truncate")
CELL_EDITS = ("cell", "drop", "add")  # for a header: the row itself stays


@st.composite
def corrupted(draw, rows: list[list[str]], bad: st.SearchStrategy[str], max_edits: int = 3,
              kinds: tuple[str, ...] = ROW_EDITS) -> list[list[str]]:
    """`rows` of cells with up to `max_edits` random corruptions of the given kinds."""
    rows = [list(r) for r in rows]
    for _ in range(draw(st.integers(0, max_edits))):
        kind = draw(st.sampled_from(kinds))
        if not rows:
            rows.append([draw(bad)])
            continue
        r = draw(st.integers(0, len(rows) - 1))
        if kind == "cell" and rows[r]:
            rows[r][draw(st.integers(0, len(rows[r]) - 1))] = draw(bad)
        elif kind == "drop" and rows[r]:
            del rows[r][draw(st.integers(0, len(rows[r]) - 1))]
        elif kind == "add":
            rows[r].insert(draw(st.integers(0, len(rows[r]))), draw(bad))
        elif kind == "dup":
            rows.insert(r, list(rows[r]))
        elif kind == "blank":
            rows.insert(r, [])
        elif kind == "garbage":
            rows.insert(r, [draw(st.text(max_size=20))])
        elif kind == "truncate":
            del rows[r:]
    return rows


def join(draw, rows: list[list[str]], seps: list[str]) -> str:
    sep = draw(st.sampled_from(seps))
    end = draw(st.sampled_from(["\n", "", "\r\n", "\n\n"]))
    return end.replace("\n\n", "\n").join(sep.join(r) for r in rows) + end


@st.composite
def id_lines_file(draw) -> str:
    """An S3-Rec `Name.txt`: `user item item ...` lines, valid before corruption."""
    users = draw(st.lists(st.integers(1, 40), min_size=1, max_size=6, unique=True))
    rows = [[str(u)] + [str(i) for i in draw(st.lists(st.integers(1, 25), min_size=3, max_size=8))] for u in users]
    rows = draw(corrupted(rows, BAD_IDS))
    return join(draw, rows, [" ", "\t", "  ", " \t "])


# A fixed valid interaction file for the attribute and sample parsers: 4 users, items 1..12.
SEQS = {1: [1, 2, 3, 4], 2: [2, 5, 6], 3: [7, 8, 9, 1], 5: [10, 11, 12]}
N_ITEMS = 12

JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**70), st.floats(allow_nan=True), st.text(max_size=5))
JSON_ANY = st.recursive(JSON_LEAF, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=4), c, max_size=4)),
                        max_leaves=12)
ATTR_ID = st.one_of(st.integers(1, 9), st.integers(1, 9), st.integers(-2, 0), st.integers(2**62, 2**66),
                    st.booleans(), st.floats(), st.text(max_size=3), st.none(), st.lists(st.integers(1, 3), max_size=2))
ITEM_KEY = st.one_of(st.integers(-2, N_ITEMS + 3).map(str), st.sampled_from(["x", "1.0", " 2 ", "\u0663", "", "0x1", str(2**70)]))


@st.composite
def attribute_json(draw) -> str | bytes:
    """An `item2attributes.json`: an object of item -> attribute ids (often wrong), random JSON, or text."""
    kind = draw(st.sampled_from(["mapping", "mapping", "mapping", "any", "text"]))
    if kind == "text":
        return draw(ANY_TEXT)
    if kind == "any":
        return json.dumps(draw(JSON_ANY))
    obj = draw(st.dictionaries(ITEM_KEY, st.one_of(st.lists(ATTR_ID, max_size=4), ATTR_ID), max_size=6))
    text = json.dumps(obj, indent=draw(st.sampled_from([None, 1])))
    if draw(st.booleans()):  # cut or splice the text to break the syntax
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["", ",", "]", "}", "{", "'", "\n", "[" * 2000]))
    return text


@st.composite
def sample_file(draw) -> str:
    """A `Name_sample.txt`: `user neg neg ...` per user of SEQS, valid before corruption."""
    width = draw(st.integers(1, 4))
    rows = []
    for u, seq in SEQS.items():
        pool = [i for i in range(1, N_ITEMS + 1) if i not in seq]
        rows.append([str(u)] + [str(i) for i in draw(st.lists(st.sampled_from(pool), min_size=width, max_size=width))])
    rows = draw(st.permutations(rows))
    bad = st.one_of(BAD_IDS, st.integers(1, N_ITEMS + 2).map(str), st.sampled_from([str(u) for u in SEQS] + ["4", "99"]))
    return join(draw, draw(corrupted(rows, bad)), [" ", "\t"])


@st.composite
def log_rows(draw) -> list[tuple[str, str, str]]:
    """(user, item, timestamp) rows over a few users and items, dense enough to survive small k-cores."""
    users = draw(st.lists(st.sampled_from(["u1", "u2", "u3", "u4", "NA", "7"]), min_size=1, max_size=4, unique=True))
    rows = []
    for u in users:
        for i in draw(st.lists(st.sampled_from(list("abcdef")), min_size=3, max_size=8)):
            rows.append((u, i, str(draw(st.integers(-5, 50)))))
    return draw(st.permutations(rows))


@st.composite
def table_file(draw, sep: str) -> str:
    """A CSV/TSV interaction table (header user_id,item_id,timestamp in some order), valid before corruption."""
    header = draw(st.permutations(["user_id", "item_id", "timestamp"]))
    if draw(st.integers(0, 4)) == 0:
        header = draw(corrupted([header], st.sampled_from(["user", "item_id", "extra", "", "timestamp"]), 2, CELL_EDITS))[0]
    rows = [[{"user_id": u, "item_id": i, "timestamp": t}.get(h, "z") for h in header] for u, i, t in draw(log_rows())]
    rows = draw(corrupted(rows, BAD_CELLS))
    return join(draw, [header] + rows, [sep])


FIELDS = ["user_id:token", "item_id:token", "timestamp:float", "rating:float", "tags:token_seq", "v:float_seq"]
BAD_FIELDS = st.sampled_from(["user_id", "item_id:int", "user_id:float", "timestamp:token", ":token", "x:", "user_id:token",
                              "a b:token", "item_id:token ", "", "\ufeffuser_id:token"])


@st.composite
def inter_file(draw) -> str:
    """A RecBole `.inter` file, valid before corruption."""
    header = draw(st.permutations(draw(st.sampled_from([FIELDS[:2], FIELDS[:3], FIELDS[:4], FIELDS]))))
    if draw(st.integers(0, 3)) == 0:
        header = draw(corrupted([header], BAD_FIELDS, 2, CELL_EDITS))[0]
    cells = {"rating:float": "4", "tags:token_seq": "x y", "v:float_seq": "1.0 2.5"}
    rows = [[{"user_id:token": u, "item_id:token": i, "timestamp:float": t}.get(h, cells.get(h, "q")) for h in header]
            for u, i, t in draw(log_rows())]
    rows = draw(corrupted(rows, BAD_CELLS))
    return join(draw, [header] + rows, ["\t"])


@st.composite
def item_file(draw) -> str:
    """A RecBole `.item` file for items a..f, valid before corruption."""
    header = draw(st.permutations(["item_id:token", "genre:token_seq", "brand:token", "price:float"]))
    if draw(st.integers(0, 3)) == 0:
        header = draw(corrupted([header], BAD_FIELDS, 2, CELL_EDITS))[0]
    rows = []
    for item in draw(st.lists(st.sampled_from(list("abcdefz")), max_size=7)):
        values = {"item_id:token": item, "genre:token_seq": draw(st.sampled_from(["", "x", "x y", "y  x z"])),
                  "brand:token": draw(st.sampled_from(["", "acme", "a b"])), "price:float": "1.5"}
        rows.append([values.get(h, "w") for h in header])
    rows = draw(corrupted(rows, BAD_CELLS))
    return join(draw, [header] + rows, ["\t"])


YAML_VALUES = st.sampled_from([
    "1", "2020-13-45", "2001-12-14t21:59:43.10-99:99", "!!int x", "!!float x", "!!bool x", "!!timestamp x",
    "!!binary '%%'", "!!python/object:os.system x", "&a [*a]", "*b", "[", "{", "}", "\"x", "'x", "!!set {a: 1}",
    "!!omap [1]", "[" * 3000, "? [1]", "|\n  text", ">-", "%YAML 1.1", "---", "...", "0o99", ".nan", "~", "\t",
    "{a: 1, a: 2}", "@x", "`x", "\x00", "\ufeff",
])


@st.composite
def config_file(draw) -> str | bytes:
    """A YAML/JSON options file: `key: value` lines with odd values, a random JSON value, or any text."""
    kind = draw(st.sampled_from(["lines", "lines", "json", "text"]))
    if kind == "text":
        return draw(ANY_TEXT)
    if kind == "json":
        return json.dumps(draw(JSON_ANY))
    keys = st.sampled_from(["seed", "model", "data", "  path", "- x", "eval", "? k", "k"])
    lines = [f"{draw(keys)}: {draw(st.one_of(YAML_VALUES, st.text(max_size=10)))}" for _ in range(draw(st.integers(0, 4)))]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# S3-Rec release format
# ---------------------------------------------------------------------------------------------


@FUZZ
@given(content=st.one_of(id_lines_file(), id_lines_file(), ANY_TEXT))
def test_s3rec_interactions_file(work, content):
    path = put(work / "Fuzz.txt", content)
    outcome(lambda: load_s3rec_format(path), path)


@pytest.fixture(scope="module")
def interactions(work) -> Path:
    return put(work / "Valid.txt", "".join(f"{u} {' '.join(map(str, s))}\n" for u, s in SEQS.items()))


@FUZZ
@given(content=attribute_json())
def test_s3rec_attribute_json(work, interactions, content):
    path = put(work / "Valid_item2attributes.json", content)
    data = outcome(lambda: load_s3rec_format(interactions, path), path)
    if data is not None:
        assert data.n_items == N_ITEMS


@FUZZ
@given(content=st.one_of(sample_file(), sample_file(), ANY_TEXT))
def test_s3rec_sample_file(work, interactions, content):
    path = put(work / "Valid_sample.txt", content)
    data = outcome(lambda: load_s3rec_format(interactions, None, path), path)
    if data is not None:
        for row in range(data.n_users):  # negatives are never items the user interacted with
            assert not set(data.fixed_negatives[row]) & set(data.sequence(row).tolist())


# ---------------------------------------------------------------------------------------------
# Generic tables, RecBole atomic files, config files
# ---------------------------------------------------------------------------------------------


@FUZZ
@given(data=st.data(), suffix=st.sampled_from([".csv", ".tsv"]), min_count=st.sampled_from([0, 1, 2, 3, 3, 5]))
def test_interaction_table(work, data, suffix, min_count):
    content = data.draw(st.one_of(table_file("," if suffix == ".csv" else "\t"), ANY_TEXT), label="content")
    path = put(work / f"fuzz{suffix}", content)
    outcome(lambda: load_table(path, min_count=min_count), path)


@FUZZ
@given(content=st.one_of(inter_file(), inter_file(), ANY_TEXT), min_count=st.sampled_from([0, 1, 2, 3, 3, 5]))
def test_recbole_inter_file(work, content, min_count):
    path = put(work / "fuzz.inter", content)
    outcome(lambda: load_atomic(path, min_count=min_count), path)


@pytest.fixture(scope="module")
def valid_inter(work) -> Path:
    rows = [(u, i, t) for t, (u, i) in enumerate((u, i) for u in ("u1", "u2", "u3") for i in "abcdef")]
    return put(work / "valid.inter", "user_id:token\titem_id:token\ttimestamp:float\n"
               + "".join(f"{u}\t{i}\t{t}\n" for u, i, t in rows))


@FUZZ
@given(content=st.one_of(item_file(), item_file(), ANY_TEXT))
def test_recbole_item_file(work, valid_inter, content):
    path = put(work / "fuzz.item", content)
    data = outcome(lambda: load_atomic(valid_inter, path, min_count=1), path)
    if data is not None:
        assert data.n_items == 6 and all("=" in name for name in data.attribute_names[1:])


@FUZZ
@given(content=config_file())
def test_config_file(work, content):
    path = put(work / "options.yaml", content)
    result = outcome(lambda: read_options_file(str(path)), path)
    assert result is None or isinstance(result, dict)


# ---------------------------------------------------------------------------------------------
# Regressions: inputs that once escaped as other exceptions or were silently misread
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "content", "fragment"),
    [
        ("Bad.txt", b"1 2 3 4\n2 3 \xff 5\n", "Bad.txt:2: not valid UTF-8"),  # was UnicodeDecodeError
        ("Bad.txt", "1 2 3 " + "9" * 30 + "\n", "Bad.txt:1: id 999"),  # was OverflowError
        ("Bad.txt", "9" * 20 + " 2 3 4\n", "too large"),  # was OverflowError (user id)
        ("Bad_item2attributes.json", b'{"1": [1]}\xff', "not valid UTF-8"),  # was UnicodeDecodeError
        ("Bad_item2attributes.json", '{"1": [%s]}' % ("9" * 30), "positive integers"),  # was OverflowError
        ("Bad_item2attributes.json", "[" * 100000, "invalid JSON"),  # was RecursionError
        ("Bad_item2attributes.json", '{"1": [%s]}' % ("9" * 5000), "invalid JSON"),  # was ValueError
        ("Bad_sample.txt", b"1 5\xff\n", "Bad_sample.txt:1: not valid UTF-8"),  # was UnicodeDecodeError
    ],
)
def test_s3rec_format_regressions(tmp_path, file, content, fragment):
    good = put(tmp_path / "Good.txt", "1 1 2 3\n2 2 3 4\n")
    path = put(tmp_path / file, content)
    args = {"Bad.txt": (path,), "Bad_item2attributes.json": (good, path), "Bad_sample.txt": (good, None, path)}[file]
    with pytest.raises(DataError) as info:
        load_s3rec_format(*args)
    check_error(info.value, path)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"seed: 1\xff\n", "not valid UTF-8"),  # was UnicodeDecodeError
        ("seed: 2020-13-45\n", "month must be in 1..12"),  # was ValueError
        ("seed: !!int x\n", "ValueError"),
        ("seed: !!bool x\n", "KeyError"),
        ("seed: !!timestamp x\n", "AttributeError"),
        ("[" * 3000, "RecursionError"),
    ],
)
def test_config_file_regressions(tmp_path, content, fragment):
    path = put(tmp_path / "options.yaml", content)
    with pytest.raises(S3RecError) as info:
        read_options_file(str(path))
    check_error(info.value, path)
    assert fragment in str(info.value)


def test_rows_one_field_longer_than_the_header_are_an_error_not_a_column_shift(tmp_path):
    # pandas silently used the first field as the index, shifting every column (trailing separators).
    path = put(tmp_path / "log.csv", "user_id,item_id,timestamp\nu,a,1,\nu,b,2,\nu,c,3,\n")
    with pytest.raises(DataError, match=r"log\.csv: cannot parse CSV: the first data row has 4 fields, the header 3"):
        load_table(path, min_count=1)


def test_timestamps_beyond_int64_keep_their_order(tmp_path):
    # An all-positive column beyond int64 parses as uint64, which wrapped to negative numbers.
    path = put(tmp_path / "log.csv", "user_id,item_id,timestamp\nu,a,18446744073709551615\nu,b,1\nu,c,2\n")
    data = load_table(path, min_count=1)
    assert [data.item_ids[i] for i in data.sequence(0)] == ["b", "c", "a"]
