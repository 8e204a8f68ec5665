"""`s3rec breakdown`: users binned by their target's training count or history length, per-bin means and
ranks by hand."""

import math

import numpy as np
import pytest

from s3rec.breakdown import bin_labels, breakdown, user_keys
from s3rec.cli import main
from s3rec.errors import S3RecError
from s3rec.evaluation.metrics import METRIC_NAMES

# 4 users, items 1..5; training parts items[:-2]: [1, 1, 2], [1, 3], [2, 4], [1, 2]
# -> training counts: item 1: 4, item 2: 3, item 3: 1, item 4: 1, item 5: 0
SEQS = [[1, 1, 2, 3, 5], [1, 3, 2, 1], [2, 4, 5, 4], [1, 2, 3, 2]]
# test targets 5, 1, 4, 2 -> counts 0, 4, 1, 3; valid targets 3, 2, 5, 3 -> counts 1, 3, 0, 1


def make_run(path, ndcg, mrr, sampled=None):
    """A run directory with histories.npz and per_user.npz holding the given test values."""
    path.mkdir(parents=True)
    offsets = np.cumsum([0] + [len(s) for s in SEQS])
    np.savez(path / "histories.npz", offsets=offsets, items=np.concatenate(SEQS))
    arrays = {f"{split}/{p}/{m}": np.zeros(4) for split in ("test", "valid") for p in ("full", "sampled") for m in METRIC_NAMES}
    arrays["test/full/NDCG@10"] = np.array(ndcg, dtype=float)
    arrays["test/full/MRR"] = np.array(mrr, dtype=float)
    if sampled is not None:
        arrays["test/sampled/NDCG@10"] = np.array(sampled, dtype=float)
    np.savez(path / "per_user.npz", **arrays)
    return path


def test_target_counts_use_training_parts_only_and_lengths_the_split_history(tmp_path):
    run = make_run(tmp_path / "a", [0] * 4, [0] * 4)
    assert user_keys(run, "test").tolist() == [0, 4, 1, 3]
    assert user_keys(run, "valid").tolist() == [1, 3, 0, 1]
    assert user_keys(run, "test", by="length").tolist() == [4, 3, 3, 3]
    assert user_keys(run, "valid", by="length").tolist() == [3, 2, 2, 2]


def test_breakdown_by_history_length(tmp_path):
    run = make_run(tmp_path / "a", [0.1, 0.2, 0.3, 0.4], [0.5] * 4)
    b = breakdown({"A": [run]}, by="length", edges=(4,))  # test histories 4, 3, 3, 3
    assert b.labels == ["0-3", "4+"] and b.users == [3, 1]
    assert b.means["A"] == pytest.approx([0.3, 0.1])
    assert b.ranks["A"] == pytest.approx([2.0, 2.0])


def test_bin_labels():
    assert bin_labels((1, 5, 20, 60)) == ["0", "1-4", "5-19", "20-59", "60+"]
    assert bin_labels((2,)) == ["0-1", "2+"]


def test_breakdown_means_shares_ranks_and_two_groups(tmp_path):
    a1 = make_run(tmp_path / "a1", [0.0, 0.5, 0.2, 0.3], [0.01, 0.5, 0.1, 0.25])
    a2 = make_run(tmp_path / "a2", [0.0, 0.3, 0.0, 0.1], [0.01, 0.5, 0.001, 0.25])
    b1 = make_run(tmp_path / "b1", [0.0, 1.0, 0.0, 0.4], [0.0, 1.0, 0.01, 0.5])
    b = breakdown({"A": [a1, a2], "B": [b1]}, edges=(1, 3))  # bins: 0 | 1-2 | 3+
    assert b.labels == ["0", "1-2", "3+"]
    assert b.users == [1, 1, 2]  # counts 0 | 1 | 4, 3
    # A averages its two runs per user first: [0, 0.4, 0.1, 0.2]
    assert b.means["A"] == pytest.approx([0.0, 0.1, 0.3])
    assert b.means["B"] == pytest.approx([0.0, 0.0, 0.7])
    assert b.share == pytest.approx([0.0, 0.1 / 0.7, 0.6 / 0.7])
    # rank = exp(mean over runs and users of log(1 / MRR)); user 3 (bin 1-2): ranks 10 and 1000 -> 100
    assert b.ranks["A"][0] == pytest.approx(100.0)
    assert b.ranks["A"][1] == pytest.approx(100.0)
    assert b.ranks["A"][2] == pytest.approx(math.sqrt(2 * 4))
    assert math.isnan(b.ranks["B"][0])  # MRR 0: a target that can never be hit has no rank
    assert b.ranks["B"][2] == pytest.approx(math.sqrt(1 * 2))
    assert set(b.p_values) == {"B"} and math.isnan(b.p_values["B"][1])  # one user: no test


def test_breakdown_sampled_has_no_ranks(tmp_path):
    run = make_run(tmp_path / "a", [0.0] * 4, [0.1] * 4, sampled=[0.1, 0.2, 0.3, 0.4])
    b = breakdown({"A": [run]}, protocol="sampled", edges=(1, 3))
    assert b.ranks == {} and b.means["A"] == pytest.approx([0.1, 0.3, 0.3])


def test_cli_prints_and_writes_the_table(tmp_path, capsys):
    a = make_run(tmp_path / "a", [0.0, 0.5, 0.2, 0.3], [0.01, 0.5, 0.1, 0.25])
    b = make_run(tmp_path / "b", [0.0, 1.0, 0.2, 0.6], [0.01, 1.0, 0.1, 0.5])
    out = tmp_path / "table.md"
    assert main(["breakdown", "--runs", str(a), "--runs", str(b), "--names", "base,new", "--bins", "1,3",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text == out.read_text()
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.strip("|").split("|")] for r in text.splitlines() if r.startswith("| ")}
    assert rows["3+"][:5] == ["3+", "2", "80.0%", "0.4000", "3"]  # ranks 2 and 4 -> geometric mean sqrt(8) = 2.8
    assert rows["3+"][7] == "+100.0%"  # new doubles both users of the 3+ bin


@pytest.mark.parametrize("args, message", [
    (["--names", "x,y"], "--names needs 1 distinct names"),
    (["--bins", "5,3"], "--bins must be increasing"),
    (["--bins", "a"], "comma-separated integers"),
    (["--metric", "HR@3"], "unknown metric"),
    (["--by", "length", "--bins", "0"], "--bins must be increasing positive"),
])
def test_cli_rejects_bad_options(tmp_path, capsys, args, message):
    a = make_run(tmp_path / "a", [0.0] * 4, [0.1] * 4)
    assert main(["breakdown", "--runs", str(a), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_files_and_other_data_are_one_line_errors(tmp_path, capsys):
    a = make_run(tmp_path / "a", [0.0] * 4, [0.1] * 4)
    (tmp_path / "empty").mkdir()
    assert main(["breakdown", "--runs", str(tmp_path / "empty")]) == 2
    assert "histories.npz: not found" in capsys.readouterr().err
    assert main(["breakdown", "--runs", str(a), "--runs", str(tmp_path / "empty")]) == 2
    assert "per_user.npz: not found" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    np.savez(other / "per_user.npz", **{"test/full/NDCG@10": np.zeros(3), "test/full/MRR": np.ones(3)})
    with pytest.raises(S3RecError, match="evaluated 3 users"):
        breakdown({"A": [a], "B": [other]})
    shuffled = make_run(tmp_path / "shuffled", [0.0] * 4, [0.1] * 4)  # 4 users too, other sequences
    np.savez(shuffled / "histories.npz", offsets=np.cumsum([0] + [len(s) for s in SEQS[::-1]]),
             items=np.concatenate(SEQS[::-1]))
    with pytest.raises(S3RecError, match="shuffled was run on other data than .*a \\(their histories.npz differ\\)"):
        breakdown({"A": [a], "B": [shuffled]})  # once paired user by user without a word
    with pytest.raises(S3RecError, match="is given twice: each run counts once"):
        breakdown({"A": [a], "B": [tmp_path / "a"]})


def test_a_histories_npz_without_offsets_is_a_one_line_error(tmp_path, capsys):
    """An empty 'offsets' array used to end `s3rec breakdown` in an IndexError traceback."""
    a = make_run(tmp_path / "a", [0.0] * 4, [0.1] * 4)
    np.savez(a / "histories.npz", offsets=np.zeros(0, np.int64), items=np.zeros(0, np.int64))
    assert main(["breakdown", "--runs", str(a)]) == 2
    err = capsys.readouterr().err
    assert f"{a / 'histories.npz'}: 'offsets' is empty" in err and err.count("\n") == 1


def test_a_file_among_the_run_directories_is_a_one_line_error(tmp_path, capsys):
    """A shell glob like runs/ft-seed* also matches the runs' log files (ft-seed1.log)."""
    a = make_run(tmp_path / "ft-seed1", [0.0] * 4, [0.1] * 4)
    log = tmp_path / "ft-seed1.log"
    log.write_text("done\n")
    assert main(["breakdown", "--runs", str(a), str(log)]) == 2
    err = capsys.readouterr().err
    assert "ft-seed1.log/per_user.npz: not found" in err and err.count("\n") == 1
    assert main(["breakdown", "--runs", str(log), str(a)]) == 2  # first: its histories.npz is read first
    err = capsys.readouterr().err
    assert "ft-seed1.log" in err and err.count("\n") == 1


def test_change_is_relative_and_absolute_only_against_zero():
    from s3rec.breakdown import _change

    assert _change(0.06, 0.04) == "+50.0%"
    assert _change(0.0009, 0.0) == "+0.0009 (abs.)"
    assert _change(float("nan"), 0.1) == "–"
