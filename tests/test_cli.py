"""Tests of the command-line interface (in process through s3rec.cli.main, and once as `python -m s3rec`)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import s3rec
from s3rec.cli import main, make_parser
from s3rec.cli.options import build_config
from s3rec.data import registry
from s3rec.evaluation.metrics import METRIC_NAMES
from s3rec.pipeline import evaluate_run, format_metrics
from s3rec.training.checkpoint import load_checkpoint

# ---------------------------------------------------------------------------------------------
# A tiny data set whose PopRec metrics can be worked out by hand
# ---------------------------------------------------------------------------------------------
#
# user (raw id): sequence                                  train (items[:-2])           valid  test
#   1: 1 1 1 1 1 2 2 2 2 3 3 3 3 4 4 4 5 5 130 120       1x5 2x4 3x4 4x3 5x2          130    120
#   2: 6 7 1 2                                           6 7                          1      2
#   3: 6 9 2 9                                           6 9                          2      9 (in history)
#   4: 8 1 3 4                                           8 1                          3      4
#
# n_items = 130 (largest id). Training counts = PopRec scores:
#   item 1: 6, item 2: 4, item 3: 4, item 4: 3, item 5: 2, item 6: 2, items 7, 8, 9: 1, all others 0.
# Validation/test items are never counted (e.g. 120, 130 score 0).
#
# Full ranking (history items excluded, ties count against the target; rank = # other candidates >= target):
#   valid  u1: history {1..5} excluded, target 130 (0): items 6..130 except 130 -> rank 124
#          u2: history {6,7}, target 1 (6, the top)                               -> rank 0
#          u3: history {6,9}, target 2 (4): item 1 (6), item 3 (4, tie)           -> rank 2
#          u4: history {8,1}, target 3 (4): item 1 excluded, item 2 (4, tie)       -> rank 1
#   test   u1: history {1..5,130}, target 120 (0): items 6..129 except 120        -> rank 123
#          u2: history {6,7,1}, target 2 (4): item 3 (tie); item 1 excluded       -> rank 1
#          u3: target 9 is in the history -> excluded itself, can never be hit    -> no hit, MRR 0
#          u4: history {8,1,3}, target 4 (3): item 2 (4); 1 and 3 excluded        -> rank 1 (3 without exclusion)
#
# Sampled ranking uses the fixed negatives of tiny_sample.txt (99 per user, never interacted; no exclusion):
#   u1: 6, 7, 10..106            valid 130 (0) and test 120 (0): all 99 score >= 0    -> ranks 99, 99
#   u2: 3, 4, 5, 10..105         valid 1 (6): rank 0; test 2 (4): item 3 ties          -> ranks 0, 1
#   u3: 1, 3, 10..106            valid 2 (4): items 1, 3 -> 2; test 9 (1): items 1, 3  -> ranks 2, 2
#   u4: 2, 5, 6, 10..105         valid 3 (4): item 2 ties -> 1; test 4 (3): item 2     -> ranks 1, 1

SEQS = {1: "1 1 1 1 1 2 2 2 2 3 3 3 3 4 4 4 5 5 130 120", 2: "6 7 1 2", 3: "6 9 2 9", 4: "8 1 3 4"}
NEGATIVES = {1: [6, 7, *range(10, 107)], 2: [3, 4, 5, *range(10, 106)], 3: [1, 3, *range(10, 107)],
             4: [2, 5, 6, *range(10, 106)]}
ATTRS = {"1": [1, 2], "2": [2], "130": [3]}

UNREACHABLE = None  # a target excluded from the candidates: counts as a miss for every metric, MRR 0
RANKS = {
    ("valid", "full"): [124, 0, 2, 1],
    ("test", "full"): [123, 1, UNREACHABLE, 1],
    ("valid", "sampled"): [99, 0, 2, 1],
    ("test", "sampled"): [99, 1, 2, 1],
}


def metrics_from_ranks(ranks: list[int | None]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Mean and per-user metrics from 0-based ranks, written out from the definitions."""
    per_user: dict[str, list[float]] = {}
    for k in (1, 5, 10, 20):
        per_user[f"HR@{k}"] = [float(r is not None and r < k) for r in ranks]
    for k in (5, 10, 20):
        per_user[f"NDCG@{k}"] = [1 / math.log2(r + 2) if r is not None and r < k else 0.0 for r in ranks]
    per_user["MRR"] = [0.0 if r is None else 1 / (r + 1) for r in ranks]
    return {m: sum(v) / len(v) for m, v in per_user.items()}, per_user


def write_tiny(folder: Path, name: str = "tiny", sample: bool = True, attrs: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    txt = folder / f"{name}.txt"
    txt.write_text("".join(f"{u} {s}\n" for u, s in SEQS.items()), encoding="utf-8")
    if sample:
        assert all(len(n) == 99 for n in NEGATIVES.values())
        (folder / f"{name}_sample.txt").write_text(
            "".join(f"{u} {' '.join(map(str, n))}\n" for u, n in NEGATIVES.items()), encoding="utf-8")
    if attrs:
        (folder / f"{name}_item2attributes.json").write_text(json.dumps(ATTRS), encoding="utf-8")
    return txt


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Work in tmp_path (default run dirs land there), no real cache and no network."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("S3REC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("S3REC_DATA_DIR", raising=False)

    def no_network(*a, **k):
        raise AssertionError("the network must not be used")

    monkeypatch.setattr(registry, "_urlopen", no_network)


@pytest.fixture
def tiny(tmp_path) -> Path:
    return write_tiny(tmp_path / "data")


def run_pop(txt: Path, out: Path, protocol: str = "both", *extra: str) -> int:
    return main(["run", "--model", "pop", "--data", str(txt), "--protocol", protocol, "--out", str(out), "--quiet",
                 *extra])


def one_line_error(err: str) -> str:
    assert err.endswith("\n")
    lines = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1, err
    assert lines[0].startswith("s3rec: error: "), err
    assert "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------------------------------------
# --version, data info
# ---------------------------------------------------------------------------------------------


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"s3rec {s3rec.__version__}\n"


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2
    assert "usage" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["run", "--model", "pop", "--dataset", "lastfm", "--epochs", "abc"], "s3rec run: error: argument --epochs: invalid int"),
    (["evaluate", "--run", "x", "--protocol", "xyz"], "s3rec evaluate: error: argument --protocol: invalid choice: 'xyz'"),
])
def test_a_bad_flag_value_is_one_line_too(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert f"(usage: s3rec {argv[0]} --help)" in err


def test_data_info(tiny, capsys):
    assert main(["data", "info", "--data", str(tiny)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "data set: tiny"
    table = lines[1 : lines.index("  users by sequence length:")]
    rows = {line.strip().rsplit("  ", 1)[0].strip(): line.strip().rsplit("  ", 1)[1].strip() for line in table}
    assert rows == {
        "users": "4",
        "items": "130",
        "interactions": "32",
        "avg. actions / user": "8.00",
        "avg. actions / item": f"{32 / 130:.2f}",
        "sparsity": f"{100 * (1 - 32 / (4 * 130)):.2f}%",
        "attributes": "3",
        "avg. attributes / item": f"{4 / 130:.2f}",
        "items with attributes": "3",
        "sequence length min / median / max": "4 / 4 / 20",
        "attribute coverage (items)": f"{100 * 3 / 130:.2f}%",
        "attribute coverage (interactions)": "43.75%",
        "seq. length p10/25/50/75/90/max": "4 / 4 / 4 / 8 / 15.2 / 20",
    }
    assert [line.split()[:2] for line in lines[len(table) + 2 :]] == [["3-5", "3"], ["6-10", "0"], ["11-20", "1"]]


# ---------------------------------------------------------------------------------------------
# run / evaluate
# ---------------------------------------------------------------------------------------------

SPLIT_KEYS = {"test", "valid"}


def test_run_pop_writes_the_run_directory(tiny, tmp_path, capsys):
    out = tmp_path / "run1"
    assert run_pop(tiny, out) == 0
    captured = capsys.readouterr()
    # the one warning: tiny's sample file draws negatives from ids that no sequence uses (1..130, 11 used)
    assert captured.err == ("warning: tiny: 119 of the item ids 1..130 occur in no sequence, yet are items of the "
                            "model (ranked, counted in full ranking, recommendable); a CSV/TSV/Parquet table "
                            "remaps ids to contiguous ones\n")
    for name in ("config.json", "metrics.json", "per_user.npz", "model.pt"):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*.tmp"))  # no atomic-write leftovers

    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"dataset", "model", "test", "valid", "seconds"}
    assert metrics["dataset"] == "tiny" and metrics["model"] == "pop"
    for split in SPLIT_KEYS:
        assert set(metrics[split]) == {"full", "sampled"}
        for protocol in ("full", "sampled"):
            assert list(metrics[split][protocol]) == list(METRIC_NAMES)
            assert set(METRIC_NAMES) == {"HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR"}
            assert all(isinstance(v, float) for v in metrics[split][protocol].values())
    assert isinstance(metrics["seconds"], dict) and metrics["seconds"]

    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "pop"
    assert config["data"]["path"] == str(tiny)
    assert config["eval"]["protocol"] == "both"

    with np.load(out / "per_user.npz") as z:
        keys = set(z.files)
        assert keys == {f"{s}/{p}/{m}" for s in SPLIT_KEYS for p in ("full", "sampled") for m in METRIC_NAMES}
        assert all(z[k].shape == (4,) for k in keys)

    ck = load_checkpoint(out / "model.pt", stage="model")
    assert ck["data"]["n_items"] == 130


def test_run_full_protocol_has_no_sampled_key(tiny, tmp_path):
    out = tmp_path / "run_full"
    assert run_pop(tiny, out, "full") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for split in SPLIT_KEYS:
        assert set(metrics[split]) == {"full"}
    with np.load(out / "per_user.npz") as z:
        assert not any("sampled" in k for k in z.files)


def test_run_sampled_protocol_has_no_full_key(tiny, tmp_path):
    out = tmp_path / "run_sampled"
    assert run_pop(tiny, out, "sampled") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for split in SPLIT_KEYS:
        assert set(metrics[split]) == {"sampled"}


def test_pop_metrics_by_hand(tiny, tmp_path):
    out = tmp_path / "run_hand"
    assert run_pop(tiny, out) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    with np.load(out / "per_user.npz") as z:
        for (split, protocol), ranks in RANKS.items():
            mean, per_user = metrics_from_ranks(ranks)
            for m in METRIC_NAMES:
                assert metrics[split][protocol][m] == pytest.approx(mean[m], abs=1e-9), (split, protocol, m)
                np.testing.assert_allclose(z[f"{split}/{protocol}/{m}"], per_user[m], atol=1e-9,
                                           err_msg=f"{split}/{protocol}/{m}")
    # a few of the values written out in full
    assert metrics["valid"]["full"]["HR@1"] == 0.25
    assert metrics["valid"]["full"]["MRR"] == pytest.approx((1 / 125 + 1 + 1 / 3 + 1 / 2) / 4)
    assert metrics["test"]["full"]["HR@5"] == 0.5
    assert metrics["test"]["full"]["NDCG@10"] == pytest.approx(2 / math.log2(3) / 4)
    assert metrics["test"]["full"]["MRR"] == pytest.approx((1 / 124 + 1 / 2 + 0 + 1 / 2) / 4)
    assert metrics["test"]["sampled"]["MRR"] == pytest.approx((1 / 100 + 1 / 2 + 1 / 3 + 1 / 2) / 4)


def test_pop_keep_history_counts_history_items(tiny, tmp_path):
    out = tmp_path / "run_keep"
    assert run_pop(tiny, out, "full", "--keep-history") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # without exclusion: test u1 target 120 (0): items 1..130 except 120 -> 129; u2 target 2 (4): 1, 3 -> 2;
    # u3 target 9 (1): 1,2,3,4,5,6,7,8 -> 8; u4 target 4 (3): 1, 2, 3 -> 3
    mean, _ = metrics_from_ranks([129, 2, 8, 3])
    for m in METRIC_NAMES:
        assert metrics["test"]["full"][m] == pytest.approx(mean[m], abs=1e-9), m


def test_evaluate_reproduces_the_run(tiny, tmp_path, capsys):
    out = tmp_path / "run_eval"
    assert run_pop(tiny, out) == 0
    capsys.readouterr()
    metrics = json.loads((out / "metrics.json").read_text())
    assert main(["evaluate", "--run", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert printed.strip() == format_metrics(metrics).strip()
    again = evaluate_run(out, progress=False, log=lambda *a, **k: None)
    for split in SPLIT_KEYS:
        assert again[split].keys() == metrics[split].keys()
        for protocol in metrics[split]:
            for m in METRIC_NAMES:
                assert again[split][protocol][m] == pytest.approx(metrics[split][protocol][m], abs=1e-12)


def test_evaluate_of_a_non_run_directory(tmp_path, capsys):
    (tmp_path / "empty_run").mkdir()
    assert main(["evaluate", "--run", str(tmp_path / "empty_run"), "--quiet"]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "config.json" in line


def test_run_with_uniform_negatives_and_no_sample_file(tmp_path):
    txt = write_tiny(tmp_path / "nosample", sample=False)
    out = tmp_path / "run_uniform"
    assert run_pop(txt, out) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) == {"full", "sampled"}
    # the full protocol does not depend on the negatives
    mean, _ = metrics_from_ranks(RANKS[("test", "full")])
    assert metrics["test"]["full"]["MRR"] == pytest.approx(mean["MRR"])


# ---------------------------------------------------------------------------------------------
# Bad input: exit 2, one line naming the file (and line), nothing left in the run directory
# ---------------------------------------------------------------------------------------------


def _too_many_negatives(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d, sample=False)
    return (["run", "--model", "pop", "--data", str(txt), "--protocol", "sampled", "--set", "eval.n_negatives=5000"],
            ("cannot draw 5000 distinct unseen negatives",))


def _malformed_line(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)
    txt.write_text(txt.read_text() + "5 7 8\n")  # line 5: a user with 2 items
    return ["run", "--model", "pop", "--data", str(txt)], ("tiny.txt:5:",)


def _malformed_csv_row(d: Path) -> tuple[list[str], tuple[str, ...]]:
    csv = d / "x.csv"
    csv.write_text("user_id,item_id,timestamp\n1,1,1\n1,2,2\n1,3,4,5\n1,4,5\n")
    return ["run", "--model", "pop", "--data", str(csv)], ("x.csv:4:",)


def _non_integer_id(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)
    lines = txt.read_text().splitlines()
    lines[2] = "3 6 nine 2 9"
    txt.write_text("\n".join(lines) + "\n")
    return ["run", "--model", "pop", "--data", str(txt)], ("tiny.txt:3:", "'nine'")


def _attributes_not_object(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)
    (d / "tiny_item2attributes.json").write_text("[[1, 2], [2]]")
    return ["run", "--model", "pop", "--data", str(txt)], ("tiny_item2attributes.json:", "JSON object")


def _bad_sample_line(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)
    (d / "tiny_sample.txt").write_text("1 10 11\n2 10 12\n3 10 11\n4 10 8\n")  # u4 interacted with 8
    return ["run", "--model", "pop", "--data", str(txt), "--protocol", "sampled"], ("tiny_sample.txt:4:",)


def _repeated_sample_negative(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)
    (d / "tiny_sample.txt").write_text("1 10 11\n2 12 12\n3 10 11\n4 10 11\n")
    return (["run", "--model", "pop", "--data", str(txt), "--protocol", "sampled"],
            ("tiny_sample.txt:2: user 2: negative 12 is listed twice",))


def _missing_file(d: Path) -> tuple[list[str], tuple[str, ...]]:
    return ["run", "--model", "pop", "--data", str(d / "nothere.txt")], ("nothere.txt", "not found")


def _csv_missing_columns(d: Path) -> tuple[list[str], tuple[str, ...]]:
    csv = d / "wrong.csv"
    csv.write_text("user,item,timestamp\n1,1,1\n1,2,2\n")
    return ["run", "--model", "pop", "--data", str(csv)], ("wrong.csv:", "missing column", "'user_id'")


def _empty_file(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = d / "empty.txt"
    txt.write_text("")
    return ["run", "--model", "pop", "--data", str(txt)], ("empty.txt:", "empty")


def _unknown_dataset(d: Path) -> tuple[list[str], tuple[str, ...]]:
    return ["run", "--model", "pop", "--dataset", "nosuchset", "--data-dir", str(d)], ("nosuchset",)


def _both_dataset_and_data(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)
    return ["run", "--model", "pop", "--dataset", "beauty", "--data", str(txt)], ("--dataset",)


def _finetune_without_init(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)
    return ["finetune", "--data", str(txt)], ("--init",)


def _finetune_missing_init(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)
    return ["finetune", "--data", str(txt), "--init", str(d / "missing.pt")], ("missing.pt", "not found")


def _set_unknown_leaf(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)
    return ["run", "--model", "pop", "--data", str(txt), "--set", "eval.nosuch=1"], ("eval.nosuch",)


def _set_a_group(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)
    return ["run", "--model", "pop", "--data", str(txt), "--set", "data=3"], ("data is a group of options", "data.dataset=")


def _objectives_without_pretraining(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)
    return ["run", "--model", "sasrec", "--data", str(txt), "--objectives", "mip"], ("--objectives sets the pre-training, and this run has none: sasrec does not pre-train",)


def _pretrain_epochs_with_init(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)
    return (["finetune", "--data", str(txt), "--init", str(d / "missing.pt"), "--pretrain-epochs", "5"],
            ("--pretrain-epochs", "fine-tunes from --init"))


def _set_pretrain_option_with_init(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)
    return (["finetune", "--data", str(txt), "--init", str(d / "missing.pt"), "--set", "pretrain.lr=0.1"],
            ("s3rec: error: --set pretrain.lr sets the pre-training, and this run has none: it fine-tunes from --init",))


def _set_without_equals(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)
    return ["run", "--model", "pop", "--data", str(txt), "--set", "eval.protocol"], ("KEY=VALUE",)


def _set_without_key(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)
    return ["run", "--model", "pop", "--data", str(txt), "--set", "=3"], ("--set expects KEY=VALUE, got '=3'",)


def _negatives_with_full_ranking(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)  # once accepted and ignored by run (evaluate refused it)
    return ["run", "--model", "pop", "--data", str(txt), "--negatives", "popularity"], ("--negatives picks the sampled",)


def _keep_history_with_sampled_ranking(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)
    return (["run", "--model", "pop", "--data", str(txt), "--protocol", "sampled", "--keep-history"],
            ("--keep-history applies to full ranking",))


def _train_fraction_zero(d: Path) -> tuple[list[str], tuple[str, ...]]:
    txt = write_tiny(d)
    return ["run", "--model", "pop", "--data", str(txt), "--train-fraction", "0"], ("--train-fraction",)


BAD_INPUTS = {
    "malformed-line": _malformed_line,
    "malformed-csv-row": _malformed_csv_row,
    "non-integer-id": _non_integer_id,
    "attributes-not-object": _attributes_not_object,
    "bad-sample-line": _bad_sample_line,
    "repeated-sample-negative": _repeated_sample_negative,
    "missing-file": _missing_file,
    "csv-missing-columns": _csv_missing_columns,
    "empty-file": _empty_file,
    "unknown-dataset": _unknown_dataset,
    "dataset-and-data": _both_dataset_and_data,
    "finetune-without-init": _finetune_without_init,
    "finetune-missing-init": _finetune_missing_init,
    "set-unknown-leaf": _set_unknown_leaf,
    "set-without-equals": _set_without_equals,
    "set-without-key": _set_without_key,
    "set-a-group": _set_a_group,
    "objectives-without-pretraining": _objectives_without_pretraining,
    "pretrain-epochs-with-init": _pretrain_epochs_with_init,
    "set-pretrain-option-with-init": _set_pretrain_option_with_init,
    "train-fraction-zero": _train_fraction_zero,
    "negatives-with-full-ranking": _negatives_with_full_ranking,
    "keep-history-with-sampled-ranking": _keep_history_with_sampled_ranking,
    "too-many-negatives": _too_many_negatives,
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line(case, tmp_path, capsys):
    (tmp_path / "data").mkdir()
    argv, fragments = BAD_INPUTS[case](tmp_path / "data")
    out = tmp_path / "run_bad"
    assert main([*argv, "--out", str(out), "--quiet"]) == 2
    line = one_line_error(capsys.readouterr().err)
    for frag in fragments:
        assert frag in line, (frag, line)
    assert not (out / "metrics.json").exists()
    assert not (out / "model.pt").exists()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("metrics.json"))


@pytest.mark.parametrize("case", sorted(set(BAD_INPUTS) - {"finetune-missing-init"}))
def test_bad_input_leaves_no_run_directory_content(case, tmp_path, capsys):
    (tmp_path / "data").mkdir()
    argv, _ = BAD_INPUTS[case](tmp_path / "data")
    out = tmp_path / "run_bad"
    assert main([*argv, "--out", str(out), "--quiet"]) == 2
    assert not out.exists() or not any(out.iterdir())


def test_finetune_missing_init_leaves_no_run_directory_content(tmp_path, capsys):
    argv, _ = _finetune_missing_init(tmp_path / "data")
    out = tmp_path / "run_bad"
    assert main([*argv, "--out", str(out), "--quiet"]) == 2
    assert not out.exists() or not any(out.iterdir())


def test_set_unknown_section_exits_2(tiny, tmp_path, capsys):
    out = tmp_path / "run_bad"
    assert run_pop(tiny, out, "full", "--set", "unknown.key=1") == 2
    line = one_line_error(capsys.readouterr().err)
    assert "unknown.key" in line
    assert not out.exists()


def test_bad_input_through_a_real_subprocess(tmp_path):
    argv, _ = _non_integer_id(tmp_path / "data")
    out = tmp_path / "run_sub"
    env = {**os.environ, "S3REC_CACHE": str(tmp_path / "cache")}
    env.pop("S3REC_DATA_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "s3rec", *argv, "--out", str(out), "--quiet"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    line = one_line_error(proc.stderr)
    assert "tiny.txt:3:" in line and "'nine'" in line
    assert proc.stdout == ""
    assert not out.exists()


def test_interaction_table_with_item_table_end_to_end(tmp_path, capsys):
    """A CSV log + item table with multi-valued attributes runs through data info and run; id maps are saved."""
    rng = np.random.default_rng(0)
    rows = ["user,item,ts"]
    for u in range(40):
        items = rng.choice(np.arange(150), size=8, replace=False)
        rows += [f"u{u},sku{i},{t}" for t, i in enumerate(items)]
    log = tmp_path / "log.csv"
    log.write_text("\n".join(rows) + "\n")
    items = tmp_path / "items.csv"
    items.write_text("item,categories,brand\n" + "".join(f"sku{i},c{i % 3}|c{i % 5},b{i % 2}\n" for i in range(150)))
    common = ["--data", str(log), "--user-col", "user", "--item-col", "item", "--time-col", "ts",
              "--item-table", str(items), "--attribute-cols", "categories,brand", "--min-count", "1"]
    assert main(["data", "info", *common]) == 0
    out = capsys.readouterr().out
    assert "users" in out and "40" in out and "attributes" in out
    run_dir = tmp_path / "run"
    assert main(["run", "--model", "pop", *common, "--out", str(run_dir), "--quiet", "--protocol", "both"]) == 0
    users = (run_dir / "id_maps" / "users.csv").read_text().splitlines()
    assert users[0] == "row,raw_id" and users[1] == "0,u0" and len(users) == 41
    assert "sku" in (run_dir / "id_maps" / "items.csv").read_text()
    assert "brand=b1" in (run_dir / "id_maps" / "attributes.csv").read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["test"]) == {"full", "sampled"}


@pytest.mark.parametrize("option", ["eval.protocol=bogus", "eval.selection=test", "finetune.loss=hinge", "pretrain.objectives.aap_form=x",
                                    "encoder.n_heads=3", "pretrain.samples=all", "finetune.negatives_exclude=all", "encoder.d=-1", "finetune.lr=fast",
                                    "encoder.dropout=true", "encoder.dropout=1.5", "finetune.patience=abc",
                                    "finetune.patience=0", "seed=abc", "finetune.metric=HR@7", "finetune.valid_every=-3", "finetune.ema_epochs=-2",
                                    "finetune.n_negatives=0", "pretrain.bucket=maybe", "data.attribute_cols=[1,x]",
                                    "init=5", "finetune.lr=-0.1",
                                    # the boundaries: zero sizes, dropout 1 (drops everything), a negative epoch count,
                                    # an unknown negative sampler, masking every item
                                    "encoder.d=0", "encoder.max_len=0", "eval.batch_size=0", "eval.n_negatives=0",
                                    "encoder.dropout=1", "encoder.attn_dropout=1", "finetune.epochs=-1",
                                    "eval.negatives=bogus", "pretrain.mask_ratio=1.0", "pretrain.objectives.sp=-1"])
def test_invalid_option_values_are_one_line_errors(option, tmp_path, capsys):
    data = write_tiny(tmp_path / "data")
    out = tmp_path / "run"
    assert main(["run", "--model", "pop", "--data", str(data), "--set", option, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("s3rec: error: bad option:") and "\n" not in err
    assert option.split("=")[0] in err  # refused for this option, named in full, not by a later check
    assert not out.exists()


def test_numbers_in_exponent_notation_are_numbers_from_set_and_config_files(tmp_path):
    """YAML 1.1 reads `1e-4` as text; every float option takes it as the number it means."""
    (tmp_path / "run.yaml").write_text("finetune:\n  weight_decay: 1e-6\npretrain:\n  objectives:\n    sp: 5E-1\n")
    cfg = build_config(make_parser().parse_args(["run", "--data", "x.txt", "--config", str(tmp_path / "run.yaml"),
                                                 "--set", "finetune.lr=1e-4", "--set", "encoder.dropout=2.5e-1"]))
    assert cfg.finetune.lr == 1e-4 and isinstance(cfg.finetune.lr, float)
    assert cfg.finetune.weight_decay == 1e-6 and cfg.pretrain.objectives.sp == 0.5 and cfg.encoder.dropout == 0.25
    assert json.loads(json.dumps(cfg.to_dict()))["finetune"]["lr"] == 1e-4  # config.json holds the number


def test_time_col_none_means_no_time_column_from_the_flag_set_and_config_file(tmp_path):
    (tmp_path / "run.yaml").write_text("data:\n  time_col: none\n")
    for extra in (["--time-col", "None"], ["--set", "data.time_col=none"], ["--config", str(tmp_path / "run.yaml")]):
        cfg = build_config(make_parser().parse_args(["run", "--data", "x.csv", *extra]))
        assert cfg.data.time_col is None, extra


def test_evaluate_under_another_protocol_writes_beside_the_run(tiny, tmp_path, capsys):
    out = tmp_path / "run_other_protocol"
    assert run_pop(tiny, out) == 0  # a full-ranking run
    before = (out / "metrics.json").read_text()
    assert main(["evaluate", "--run", str(out), "--protocol", "sampled", "--quiet"]) == 0
    assert (out / "metrics.json").read_text() == before  # what the run measured stays as it was
    saved = json.loads((out / "evaluation-sampled.json").read_text())
    assert set(saved["test"]) == {"sampled"} and saved["eval"]["protocol"] == "sampled"
    per_user = np.load(out / "evaluation-sampled.npz")
    assert per_user["test/sampled/HR@10"].mean() == pytest.approx(saved["test"]["sampled"]["HR@10"], abs=1e-9)
    assert saved["test"]["sampled"]["HR@10"] >= json.loads(before)["test"]["full"]["HR@10"]  # 99 negatives: easier

    # another setting than the run's goes to its own file: no variant overwrites another
    plain = (out / "evaluation-sampled.json").read_text()
    assert main(["evaluate", "--run", str(out), "--protocol", "sampled", "--negatives", "popularity", "--quiet"]) == 0
    assert main(["evaluate", "--run", str(out), "--protocol", "full", "--keep-history", "--quiet"]) == 0
    assert (out / "evaluation-sampled.json").read_text() == plain
    popular = json.loads((out / "evaluation-sampled-popularity-negatives.json").read_text())
    assert popular["eval"]["negatives"] == "popularity"
    kept = json.loads((out / "evaluation-full-keep-history.json").read_text())
    assert kept["eval"]["exclude_history"] is False and kept["eval"]["protocol"] == "full"


def test_breakdown_reads_a_protocol_that_evaluate_added(tiny, tmp_path, capsys):
    out = tmp_path / "run_full_only"
    assert run_pop(tiny, out, "full") == 0
    assert main(["breakdown", "--runs", str(out), "--protocol", "sampled"]) == 2
    err = one_line_error(capsys.readouterr().err)
    assert "evaluation-sampled.npz" in err and "s3rec evaluate" in err
    assert main(["evaluate", "--run", str(out), "--protocol", "sampled", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["breakdown", "--runs", str(out), "--protocol", "sampled", "--metric", "HR@10"]) == 0
    table = capsys.readouterr().out
    assert "sampled ranking" in table
    rows = [line.strip("| ").split(" | ") for line in table.splitlines() if line.startswith("| ") and "users" not in line]
    users = [int(r[1]) for r in rows if r[1].isdigit() and int(r[1]) > 0]
    values = [float(r[3]) for r in rows if r[1].isdigit() and int(r[1]) > 0]
    overall = json.loads((out / "evaluation-sampled.json").read_text())["test"]["sampled"]["HR@10"]
    assert sum(u * v for u, v in zip(users, values)) / sum(users) == pytest.approx(overall, abs=1e-4)  # the bins add up


def test_evaluate_rejects_a_bad_protocol_override(tiny, tmp_path, capsys):
    out = tmp_path / "run_bad_override"
    assert run_pop(tiny, out) == 0
    with pytest.raises(SystemExit):
        main(["evaluate", "--run", str(out), "--protocol", "half"])


@pytest.mark.parametrize("protocol, option, fragment", [
    (["--protocol", "full"], ["--negatives", "uniform"], "--negatives picks the sampled protocol's negatives"),
    ([], ["--negatives", "popularity"], "--negatives picks the sampled protocol's negatives"),  # the run's own: full
    (["--protocol", "sampled"], ["--keep-history"], "--keep-history applies to full ranking"),
])
def test_evaluate_options_the_protocol_would_ignore_are_errors(tiny, tmp_path, capsys, protocol, option, fragment):
    out = tmp_path / "run_ignored_option"
    assert run_pop(tiny, out, "full") == 0
    files = sorted(p.name for p in out.iterdir())
    assert main(["evaluate", "--run", str(out), *protocol, *option, "--quiet"]) == 2
    assert fragment in one_line_error(capsys.readouterr().err)
    assert sorted(p.name for p in out.iterdir()) == files  # no evaluation-full-uniform-negatives.json
    assert main(["evaluate", "--run", str(out), "--protocol", "both", *option, "--quiet"]) == 0  # both: it applies


def test_summary_names_the_weights_a_run_with_the_moving_average_kept(tiny, tmp_path):
    out = tmp_path / "run_ema"
    assert main(["run", "--model", "sasrec", "--data", str(tiny), "--set", "finetune.ema_epochs=1", "--set", "encoder.d=16",
                 "--epochs", "4", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    log = {r["epoch"]: r for r in map(json.loads, (out / "finetune_log.jsonl").read_text().splitlines())}
    best = log[summary["best_epoch"]]
    kept = "trained" if best["valid_NDCG@10_trained"] >= best["valid_NDCG@10_average"] else "average"
    assert summary["best_weights"] == kept and best[f"valid_NDCG@10_{kept}"] == summary["best_valid"]


def test_selection_sampled_validates_on_sampled_and_tests_on_full(tiny, tmp_path):
    """eval.selection=sampled picks the best epoch on the sampled validation; the test keeps --protocol."""
    out = tmp_path / "run_selection"
    assert main(["run", "--model", "sasrec", "--data", str(tiny), "--protocol", "full", "--set", "eval.selection=sampled",
                 "--set", "eval.negatives=uniform", "--set", "encoder.d=16", "--epochs", "3", "--out", str(out),
                 "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) == {"full"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["selection"] == "sampled NDCG@10"
    sampled = evaluate_run(out, progress=False, log=lambda *a: None,
                           eval_overrides={"protocol": "sampled", "negatives": "uniform"})
    assert sampled["valid"]["sampled"]["NDCG@10"] == pytest.approx(summary["best_valid"], abs=1e-9)


def test_zero_fine_tuning_epochs_is_an_error_for_a_trained_model(tiny, tmp_path, capsys):
    # it reported the untrained model as its best epoch (best_valid -1.0)
    out = tmp_path / "sasrec"
    assert main(["run", "--model", "sasrec", "--data", str(tiny), "--out", str(out), "--epochs", "0", "--quiet"]) == 2
    assert "finetune.epochs (--epochs) must be >= 1 for sasrec, got 0" in one_line_error(capsys.readouterr().err)
    assert not out.exists()
    assert main(["run", "--model", "pop", "--data", str(tiny), "--out", str(tmp_path / "pop"), "--epochs", "0",
                 "--quiet"]) == 0  # PopRec does not train
    assert main(["pretrain", "--data", str(tiny), "--out", str(tmp_path / "pt"), "--epochs", "1", "--set",
                 "finetune.epochs=0", "--quiet"]) == 0  # pre-training alone has no fine-tuning to check


def test_python_m_s3rec_cli_runs_the_cli():
    import subprocess
    import sys

    import s3rec

    env = {**os.environ, "PYTHONPATH": str(Path(s3rec.__file__).parents[1])}  # this checkout's s3rec
    out = subprocess.run([sys.executable, "-m", "s3rec.cli", "--version"], capture_output=True, text=True, timeout=120,
                         env=env)
    assert out.returncode == 0 and out.stdout.startswith("s3rec ")


def test_zero_pretraining_epochs_is_a_one_line_error_that_writes_nothing(tiny, tmp_path, capsys):
    # it used to write config.json and print the path of a pretrain-epoch0.pt that did not exist
    for command in (["pretrain"], ["run", "--model", "s3rec"]):
        out = tmp_path / command[0]
        assert main([*command, "--data", str(tiny), "--out", str(out), "--pretrain-epochs", "0", "--quiet"]) == 2
        assert "pretrain.epochs must be >= 1 (without pre-training: --model sasrec)" in one_line_error(capsys.readouterr().err)
        assert not out.exists()


@pytest.mark.parametrize("flag", ["--epochs", "--pretrain-epochs"])
def test_pretrain_epochs_flag_counts_pretraining_epochs(flag):
    """`s3rec pretrain --epochs N` (the issue's spelling) sets pre-training epochs, not fine-tuning ones."""
    args = make_parser().parse_args(["pretrain", "--dataset", "lastfm", flag, "7"])
    cfg = build_config(args, "s3rec")
    assert cfg.pretrain.epochs == 7 and cfg.finetune.epochs == 200
    run = build_config(make_parser().parse_args(["run", "--dataset", "lastfm", "--epochs", "7"]), "s3rec")
    assert run.finetune.epochs == 7 and run.pretrain.epochs == 100


def test_pretrain_rejects_init():
    """--init (a checkpoint to fine-tune from) means nothing to `s3rec pretrain`: an error, not ignored."""
    with pytest.raises(SystemExit) as e:
        make_parser().parse_args(["pretrain", "--dataset", "lastfm", "--init", "x.pt"])
    assert e.value.code != 0


@pytest.mark.parametrize("flag", [["--protocol", "both"], ["--negatives", "uniform"], ["--keep-history"]])
def test_pretrain_rejects_evaluation_flags(flag, capsys):
    """Pre-training evaluates nothing, so evaluation flags are an error rather than recorded and ignored."""
    with pytest.raises(SystemExit) as e:
        make_parser().parse_args(["pretrain", "--dataset", "lastfm", *flag])
    assert e.value.code != 0 and flag[0] in capsys.readouterr().err
    parsed = vars(make_parser().parse_args(["finetune", "--dataset", "lastfm", "--init", "x.pt", *flag]))
    assert parsed[flag[0][2:].replace("-", "_")] == (flag[1] if len(flag) > 1 else True)


@pytest.mark.parametrize("command", ["reproduce", "compare", "study"])
def test_commands_of_many_runs_take_seeds_and_no_resume(command, capsys):
    # --seed and --resume were accepted and ignored: they take --seeds and resume every unfinished run themselves
    assert make_parser().parse_args([command, "--dataset", "lastfm", "--seed", "5"]).seeds == "5"  # argparse's prefix
    with pytest.raises(SystemExit) as stop:
        main([command, "--dataset", "lastfm", "--resume"])
    assert stop.value.code == 2 and "unrecognized arguments: --resume" in capsys.readouterr().err


@pytest.mark.parametrize("command, default", [("run", "runs/<name>-<model>-seed<seed>"),
                                              ("pretrain", "runs/<name>-s3rec-seed<seed>/pretrain"),
                                              ("reproduce", "runs/reproduce-<dataset>"),
                                              ("compare", "runs/compare-<dataset>"), ("study", "runs/study")])
def test_out_help_names_each_commands_own_default(command, default, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert default in "".join(capsys.readouterr().out.split())  # argparse wraps lines, also at hyphens


def test_a_closed_stdout_neither_ends_training_nor_prints_a_traceback(tiny, tmp_path):
    """`s3rec run ... | head` goes on training without its log; `s3rec recommend ... | head` ends quietly (141)."""
    out = tmp_path / "run_pipe"
    env = {**os.environ, "S3REC_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}

    def with_reader_gone(*argv: str) -> subprocess.CompletedProcess:
        # the read end is closed before the child starts: its first write to stdout meets a broken pipe
        read, write = os.pipe()
        os.close(read)
        try:
            return subprocess.run([sys.executable, "-m", "s3rec", *argv], stdout=write, stderr=subprocess.PIPE,
                                  text=True, cwd=tmp_path, env=env, timeout=300)
        finally:
            os.close(write)

    proc = with_reader_gone("run", "--model", "sasrec", "--data", str(tiny), "--epochs", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "standard output was closed" in proc.stderr
    assert json.loads((out / "metrics.json").read_text())["test"]

    proc = with_reader_gone("recommend", "--run", str(out), "--users", "1,2", "--k", "3")
    assert (proc.returncode, proc.stderr) == (141, "")
    proc = with_reader_gone("data", "info", "--data", str(tiny))  # an output command, not a training log
    assert (proc.returncode, proc.stderr) == (141, "")


def test_output_larger_than_a_pipe_is_written_whole_or_ends_with_141(tiny, tmp_path):
    """Unbuffered stdout (PYTHONUNBUFFERED) once dropped all but a pipe's 64 KiB of recommend's output, exit 0."""
    out = tmp_path / "run"
    assert main(["run", "--model", "pop", "--data", str(tiny), "--out", str(out), "--quiet"]) == 0
    requests = tmp_path / "requests.jsonl"
    requests.write_text('{"user": "1"}\n' * 2000)
    argv = [sys.executable, "-m", "s3rec", "recommend", "--run", str(out), "--input", str(requests), "--k", "20"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    whole = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert whole.returncode == 0 and len(whole.stdout.splitlines()) == 2000 and len(whole.stdout) > 2**17
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert len(proc.stdout.read(10)) == 10  # the reader goes away while the output is being written
    proc.stdout.close()
    assert (proc.wait(timeout=300), proc.stderr.read()) == (141, b"")
