"""`s3rec reproduce` end to end on a small synthetic set: one pre-training, seeds, table, reuse."""

import json

import pytest

from s3rec.cli import main
from s3rec.data.s3rec_format import load_s3rec_format, save_s3rec_format
from s3rec.data.synthetic import make_synthetic

TINY = ["--set", "encoder.d=16", "--set", "encoder.max_len=10", "--set", "encoder.n_layers=1",
        "--pretrain-epochs", "1", "--epochs", "2", "--quiet"]


def without_pretraining(argv: list[str]) -> list[str]:
    """argv without its --pretrain-epochs N (an error beside --init)."""
    i = argv.index("--pretrain-epochs")
    return argv[:i] + argv[i + 2:]


def test_synthetic_data_round_trips_through_the_s3rec_format(tmp_path):
    data = make_synthetic(n_users=50, n_items=60, n_attributes=12, n_topics=6, seed=4)
    back = load_s3rec_format(*[save_s3rec_format(data, tmp_path, "syn"), tmp_path / "syn_item2attributes.json"])
    assert (back.offsets == data.offsets).all() and (back.items == data.items).all()
    assert (back.attr_values == data.attr_values).all() and back.n_attributes == data.attr_values.max()


def test_reproduce_runs_seeds_writes_table_and_reuses_runs(tmp_path, capsys):
    path = save_s3rec_format(make_synthetic(n_users=120, n_items=150, n_attributes=12, n_topics=6, seed=4), tmp_path, "syn")
    out = tmp_path / "rep"
    args = ["reproduce", "--data", str(path), "--seeds", "1,2", "--out", str(out), "--protocol", "both", *TINY]
    assert main(args) == 0
    table = (out / "reproduction.md").read_text()
    assert "| NDCG@10 |" in table and "## full ranking" in table and "## sampled ranking" in table
    assert table.startswith("# S3-Rec reproduction on syn") and "over seeds 1, 2 (" in table  # named as compare does
    for run_dir in ("s3rec-seed1", "s3rec-seed2", "sasrec-seed1", "sasrec-seed2"):
        assert (out / run_dir / "metrics.json").is_file()
    assert (out / "pretrain" / "pretrain-epoch1.pt").is_file()
    config = json.loads((out / "s3rec-seed2" / "config.json").read_text())
    assert config["seed"] == 2 and config["init"].endswith("pretrain-epoch1.pt")
    stamp = (out / "s3rec-seed1" / "metrics.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0  # everything is reused
    assert (out / "s3rec-seed1" / "metrics.json").stat().st_mtime_ns == stamp
    assert capsys.readouterr().out.strip() == table.strip()


def test_a_missing_init_checkpoint_is_a_one_line_error_that_writes_nothing(tmp_path, capsys):
    path = save_s3rec_format(make_synthetic(n_users=40, n_items=60, n_attributes=12, n_topics=6, seed=4), tmp_path, "syn")
    out = tmp_path / "rep"
    assert main(["reproduce", "--data", str(path), "--seeds", "1", "--out", str(out),
                 "--init", str(tmp_path / "none.pt"), *TINY]) == 2
    assert capsys.readouterr().err.strip() == ("s3rec: error: --pretrain-epochs sets the pre-training, and this run "
                                               "has none: it fine-tunes from --init")  # once ignored
    assert main(["reproduce", "--data", str(path), "--seeds", "1", "--out", str(out),
                 "--init", str(tmp_path / "none.pt"), *without_pretraining(TINY)]) == 2
    assert capsys.readouterr().err.strip() == f"s3rec: error: {tmp_path / 'none.pt'}: checkpoint not found"
    assert not out.exists()


def test_jobs_run_the_missing_pretraining_and_runs_first_with_the_same_table(tmp_path, capsys, one_thread):
    path = save_s3rec_format(make_synthetic(n_users=60, n_items=60, n_attributes=12, n_topics=6, seed=4), tmp_path, "syn")
    base = ["reproduce", "--data", str(path), "--seeds", "1", *TINY]
    assert main([*base, "--out", str(tmp_path / "one")]) == 0
    assert main([*base, "--out", str(tmp_path / "two"), "--jobs", "3"]) == 0
    capsys.readouterr()
    one = json.loads((tmp_path / "one" / "reproduction.json").read_text())["runs"]
    two = json.loads((tmp_path / "two" / "reproduction.json").read_text())["runs"]
    assert [[r["test"] for r in one[m]] for m in one] == [[r["test"] for r in two[m]] for m in two]
    bad = ["--out", str(tmp_path / "bad"), "--jobs", "2", "--init", str(tmp_path / "none.pt")]
    assert main([*without_pretraining(base), *bad]) == 2
    assert capsys.readouterr().err.strip() == f"s3rec: error: {tmp_path / 'none.pt'}: checkpoint not found"
    assert not (tmp_path / "bad").exists()  # nothing started


def test_seed_mean_std_is_over_the_runs_that_evaluated_the_protocol():
    from s3rec.reproduce import seed_mean_std

    runs = [{"test": {"full": {"NDCG@10": 0.1}}}, {"test": {"full": {"NDCG@10": 0.3}, "sampled": {"NDCG@10": 0.5}}}]
    assert seed_mean_std(runs, "full", "NDCG@10") == pytest.approx((0.2, 0.1 * 2 ** 0.5))  # sample std, ddof 1
    assert seed_mean_std(runs, "sampled", "NDCG@10") == (0.5, 0.0)
