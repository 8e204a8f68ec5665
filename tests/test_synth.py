"""`s3rec data synth` and s3rec.data.synthetic: planted structure, every format round-trips, bad options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from s3rec.cli import main
from s3rec.data import synthetic, writers
from s3rec.data.dataset import SequenceData
from s3rec.data.writers import FORMATS, companion_path, write_data
from s3rec.data.loading import DataConfig, load_data
from s3rec.data.synthetic import make_synthetic, successor_share

SMALL = ["--users", "300", "--items", "80", "--avg-len", "9", "--attributes", "12", "--topics", "4", "--seed", "5"]


def _attribute_sets(data, names) -> dict[str, set[str]]:
    """raw item id -> set of attribute names (table loaders prefix names with their column)."""
    out = {}
    for i in range(1, data.n_items + 1):
        attrs = data.attributes_of(i)
        out[str(data.item_ids[i])] = {str(names[a]).removeprefix("categories=") for a in attrs}
    return out


def test_planted_successor_and_topic_structure_are_detectable():
    data = make_synthetic(n_users=2000, n_items=200, avg_len=12, n_attributes=30, n_topics=10, p_next=0.6, seed=1)
    planted = successor_share(data.offsets, data.items, data.extra["successor"])
    assert 0.57 < planted < 0.65  # p_next plus the rare in-topic / uniform draw that hits it
    assert successor_share(data.offsets, data.items) >= planted - 1e-9  # the most frequent next item finds it
    noise = make_synthetic(n_users=2000, n_items=200, avg_len=12, n_attributes=30, n_topics=10, p_next=0.0,
                           p_topic=0.0, seed=1)
    assert successor_share(noise.offsets, noise.items, noise.extra["successor"]) < 0.02
    # consecutive items share their topic attribute (id 1..T, listed first) far above chance 1/T
    first_attr = data.attr_values[data.attr_offsets[:-1]]  # topic attribute of item i at row i - 1
    last = np.zeros(len(data.items), dtype=bool)
    last[data.offsets[1:] - 1] = True
    a, b = data.items[:-1][~last[:-1]], data.items[1:][~last[:-1]]
    assert np.mean(first_attr[a - 1] == first_attr[b - 1]) > 0.8
    assert set(first_attr) == set(range(1, 11)) and data.attr_values.max() <= 30


def test_blocks_of_users_give_consistent_sequences(monkeypatch):
    monkeypatch.setattr(synthetic, "_USER_BLOCK", 64)
    data = make_synthetic(n_users=300, n_items=60, avg_len=10, n_attributes=8, n_topics=4, seed=2)
    assert len(data.items) == data.offsets[-1] and data.lengths.min() >= 5
    assert data.items.min() >= 1 and data.items.max() <= 60
    assert 0.55 < successor_share(data.offsets, data.items, data.extra["successor"]) < 0.7


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_round_trips_through_the_loaders(tmp_path, fmt, capsys):
    out = tmp_path / f"syn{FORMATS[fmt]}"
    assert main(["data", "synth", *SMALL, "--out", str(out), "--format", fmt]) == 0
    printed = capsys.readouterr().out
    assert "planted successor" in printed and str(out) in printed
    side = companion_path(out, fmt)
    assert out.is_file() and side.is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # atomic writes leave nothing behind

    ref = make_synthetic(n_users=300, n_items=80, avg_len=9, n_attributes=12, n_topics=4, seed=5)
    table = fmt in ("csv", "tsv", "parquet")
    got = load_data(DataConfig(path=str(out), item_table=str(side) if table else None, min_count=1), progress=False)
    assert np.array_equal(got.offsets, ref.offsets)
    if fmt == "s3rec":  # internal ids are written as they are
        assert np.array_equal(got.items, ref.items) and got.user_ids.tolist() == list(range(1, 301))
        assert np.array_equal(got.attr_offsets, ref.attr_offsets) and np.array_equal(got.attr_values, ref.attr_values)
        return
    # tables and atomic files keep the raw ids, in order; the loader renumbers them
    assert [str(u) for u in got.user_ids] == list(ref.user_ids)
    assert [str(x) for x in got.item_ids[got.items]] == list(ref.item_ids[ref.items])
    ref_names = np.arange(ref.n_attributes + 1).astype(str)
    assert _attribute_sets(got, got.attribute_names) == _attribute_sets(ref, ref_names)
    assert successor_share(got.offsets, got.items) == pytest.approx(successor_share(ref.offsets, ref.items))


def test_format_follows_the_suffix(tmp_path):
    assert main(["data", "synth", *SMALL, "--out", str(tmp_path / "a.parquet"), "--quiet"]) == 0
    assert (tmp_path / "a_items.parquet").is_file()
    assert main(["data", "synth", *SMALL, "--out", str(tmp_path / "b.inter"), "--quiet"]) == 0
    assert (tmp_path / "b.item").is_file()


@pytest.mark.parametrize("args, message", [
    (["--users", "0", "--items", "80", "--out", "x.csv"], "--users must be at least 1"),
    (["--users", "10", "--items", "7", "--out", "x.csv"], "--items must be at least 2 x --topics = 40"),
    (["--users", "10", "--items", "80", "--avg-len", "3", "--out", "x.csv"], "--avg-len must be at least 5"),
    (["--users", "10", "--items", "80", "--avg-len", "nan", "--out", "x.csv"], "--avg-len must be at least 5"),
    (["--users", "10", "--items", "80", "--attributes", "5", "--out", "x.csv"], "--attributes must be at least --topics"),
    (["--users", "10", "--items", "80", "--topics", "0", "--out", "x.csv"], "--topics must be at least 1"),
    (["--users", "10", "--items", "80", "--p-next", "0.9", "--out", "x.csv"], "sum <= 1"),
    (["--users", "10", "--items", "80", "--out", "x.json"], "cannot tell the format"),
    (["--users", "10", "--items", "80", "--seed", "-1", "--out", "x.csv"], "--seed must be a non-negative"),
    (["--users", "10", "--items", "80", "--out", "x.csv", "--format", "parquet"], "writes a .parquet file"),
])
def test_bad_options_are_one_line_errors_and_write_nothing(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["data", "synth", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("s3rec: error: ") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_out_directory_is_an_error(tmp_path, capsys):
    (tmp_path / "d.csv").mkdir()
    assert main(["data", "synth", *SMALL, "--out", str(tmp_path / "d.csv")]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_write_data_checks_suffix_and_separator(tmp_path):
    from s3rec.errors import DataError

    data = make_synthetic(n_users=20, n_items=20, avg_len=6, n_attributes=8, n_topics=4)
    with pytest.raises(DataError, match="needs a .csv file name"):
        write_data(data, tmp_path / "x.tsv", "csv")
    data.attribute_names = np.array([None] + [f"a b{i}" for i in range(8)], dtype=object)
    with pytest.raises(DataError, match="separator"):
        write_data(data, tmp_path / "x.inter", "recbole")
    assert not Path(tmp_path / "x.inter").exists()


def _tiny() -> SequenceData:
    """Users u1: a b c, u2: c a b; item a has attributes x and y, b none, c y."""
    return SequenceData("tiny", np.array([0, 3, 6]), np.array([1, 2, 3, 3, 1, 2]), 3, np.array([0, 2, 2, 3]),
                        np.array([1, 2, 2]), 2, np.array(["u1", "u2"], dtype=object),
                        np.array([None, "a", "b", "c"], dtype=object), np.array([None, "x", "y"], dtype=object))


def test_attribute_cells_join_names_without_a_trailing_separator(tmp_path):
    """`x|y|` would read back as an extra empty attribute in other tools (RecBole, pandas)."""
    write_data(_tiny(), tmp_path / "d.csv", "csv")
    assert (tmp_path / "d_items.csv").read_text() == '"item_id","categories"\n"a","x|y"\n"b",\n"c","y"\n'
    write_data(_tiny(), tmp_path / "d.inter", "recbole")
    assert (tmp_path / "d.item").read_text() == "item_id:token\tcategories:token_seq\na\tx y\nb\t\nc\ty\n"


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "recbole"])
def test_write_data_returns_the_interactions_file_then_its_companion(tmp_path, fmt):
    """The order of the s3rec format and of `data synth`'s "wrote" lines: the file to pass as --data comes first."""
    out = tmp_path / f"d{FORMATS[fmt]}"
    assert write_data(_tiny(), out, fmt) == [out, companion_path(out, fmt)]


def _failing_write_csv(fail_on: str):
    """A pyarrow write_csv that writes a partial line, then fails, for tables with column `fail_on`."""
    real = writers.pa_csv.write_csv

    def write_csv(table, f, *args, **kwargs):
        if fail_on not in table.column_names:
            return real(table, f, *args, **kwargs)
        f.write(b"partial")
        raise OSError("disk full")
    return write_csv


def test_a_failed_write_keeps_the_old_files_and_leaves_no_temporary(tmp_path, monkeypatch):
    """A disk-full rewrite must not truncate the data of an earlier, complete write."""
    write_data(_tiny(), tmp_path / "d.csv", "csv")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr(writers.pa_csv, "write_csv", _failing_write_csv("user_id"))
    with pytest.raises(OSError, match="disk full"):
        write_data(_tiny(), tmp_path / "d.csv", "csv")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_the_companion_is_written_before_the_interactions(tmp_path, monkeypatch):
    """A complete interactions file always has its attribute file: a failed companion write leaves neither."""
    monkeypatch.setattr(writers.pa_csv, "write_csv", _failing_write_csv("categories"))
    with pytest.raises(OSError, match="disk full"):
        write_data(_tiny(), tmp_path / "d.csv", "csv")
    assert list(tmp_path.iterdir()) == []
