"""Fault tests: a run killed with SIGKILL mid-epoch and restarted with --resume ends exactly like an
uninterrupted run (both stages, real `python -m s3rec` processes); corrupt checkpoints and config.json
files give a one-line error.

The kill is deterministic: S3REC_TEST_KILL_AFTER_BATCHES=STAGE:N (s3rec.training.faults) makes the STAGE
loop SIGKILL its own process after its N-th optimiser step.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from s3rec.cli import main
from s3rec.data.s3rec_format import save_s3rec_format
from s3rec.data.synthetic import make_synthetic
from s3rec.training.faults import ENV

N_USERS, BATCH = 40, 16
TINY_FINETUNE = ["--set", "encoder.d=16", "--set", "encoder.n_layers=1", "--set", "encoder.max_len=8", "--seed", "3",
                 "--set", f"finetune.batch_size={BATCH}"]
TINY = [*TINY_FINETUNE, "--set", f"pretrain.batch_size={BATCH}"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    data = make_synthetic(n_users=N_USERS, n_items=30, avg_len=8, n_attributes=10, n_topics=5, seed=0)
    return save_s3rec_format(data, tmp_path_factory.mktemp("faults"), "Tiny")


def run_args(data_file: Path, out: Path) -> list[str]:
    return ["run", "--model", "s3rec", "--data", str(data_file), "--pretrain-epochs", "3", "--epochs", "3",
            "--patience", "10", "--out", str(out), *TINY]


def s3rec(args: list[str], kill: str | None = None) -> subprocess.CompletedProcess:
    """`python -m s3rec ARGS` in a fresh process, one torch thread (so runs are bit-for-bit repeatable)."""
    env = {k: v for k, v in os.environ.items() if k != ENV} | {"OMP_NUM_THREADS": "1"}
    if kill is not None:
        env[ENV] = kill
    return subprocess.run([sys.executable, "-m", "s3rec", *args], env=env, capture_output=True, text=True, timeout=600)


def jsonl(path: Path) -> list[dict]:
    """A per-epoch log without its timings."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("seconds")} for r in rows]


@pytest.fixture(scope="module")
def reference(data_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "run"
    done = s3rec(run_args(data_file, out) + ["--quiet"])
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("stage", ["pretrain", "finetune"])
def test_sigkill_mid_epoch_then_resume_ends_like_an_uninterrupted_run(data_file, reference, tmp_path, stage):
    logs = {"pretrain": Path("pretrain", "pretrain_log.jsonl"), "finetune": Path("finetune_log.jsonl")}
    if stage == "pretrain":
        per_epoch = math.ceil(jsonl(reference / logs["pretrain"])[0]["samples"] / BATCH)
    else:
        per_epoch = math.ceil(N_USERS / BATCH)  # one row per user
    assert per_epoch >= 2  # so that the kill below is strictly inside epoch 2
    out = tmp_path / "run"
    killed = s3rec(run_args(data_file, out) + ["--quiet"], kill=f"{stage}:{per_epoch + 1}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(jsonl(out / logs[stage])) == 1  # it died in epoch 2, after checkpointing epoch 1
    assert not (out / "metrics.json").exists()

    resumed = s3rec(run_args(data_file, out) + ["--resume"])
    assert resumed.returncode == 0, resumed.stderr
    what = "pre-training" if stage == "pretrain" else "fine-tuning"
    assert f"resumed {what} from" in resumed.stdout and "after epoch 1" in resumed.stdout
    for log in logs.values():
        assert jsonl(out / log) == jsonl(reference / log)
    got, expected = (json.loads((d / "metrics.json").read_text()) for d in (out, reference))
    assert (got["valid"], got["test"]) == (expected["valid"], expected["test"])
    a, b = (torch.load(d / "model.pt", weights_only=False)["state_dict"] for d in (out, reference))
    assert all(torch.equal(a[k], b[k]) for k in b)


def _corruptions(good: bytes) -> dict[str, bytes]:
    return {"truncated": good[: len(good) // 2], "empty": b"", "garbage": bytes(range(256)) * 8}


def _one_line_error(capsys, *expected: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("s3rec: error: ") and err.count("\n") == 1, err
    assert all(e in err for e in expected), err
    return err


@pytest.fixture(scope="module")
def finished(data_file, tmp_path_factory) -> Path:
    """A finished tiny s3rec run (in-process), its pre-training and fine-tuning checkpoints kept."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["run", "--model", "s3rec", "--data", str(data_file), "--pretrain-epochs", "1", "--epochs", "1",
                 "--out", str(out), "--quiet", *TINY]) == 0
    return out


@pytest.mark.parametrize("kind", ["truncated", "empty", "garbage", "foreign"])
def test_corrupt_checkpoints_are_one_line_errors(finished, data_file, tmp_path, capsys, kind):
    def corrupt(src: Path, dst: Path) -> Path:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if kind == "foreign":
            torch.save({"weights": torch.zeros(2)}, dst)
        else:
            dst.write_bytes(_corruptions(src.read_bytes())[kind])
        return dst

    message = "not an s3rec checkpoint" if kind == "foreign" else "not a readable checkpoint"
    # resuming each stage from its corrupt last checkpoint
    for last in (Path("pretrain", "last.pt"), Path("finetune_last.pt")):
        run = tmp_path / f"resume-{last.name}"
        for f in (Path("pretrain", "last.pt"), Path("finetune_last.pt")):
            (run / f).parent.mkdir(parents=True, exist_ok=True)
            (run / f).write_bytes((finished / f).read_bytes())
        corrupt(finished / last, run / last)
        assert main(run_args(data_file, run) + ["--resume", "--quiet"]) == 2
        _one_line_error(capsys, str(run / last), message)
    # fine-tuning from a corrupt pre-trained checkpoint
    init = corrupt(finished / "pretrain" / "pretrain-epoch1.pt", tmp_path / "init.pt")
    assert main(["finetune", "--data", str(data_file), "--init", str(init), "--out", str(tmp_path / "ft"), "--quiet",
                 *TINY_FINETUNE]) == 2
    _one_line_error(capsys, str(init), message)
    # every command that reads a finished run's model.pt
    run = tmp_path / "finished"
    for f in ("config.json", "histories.npz", "id_maps/items.csv", "id_maps/users.csv", "id_maps/attributes.csv"):
        (run / f).parent.mkdir(parents=True, exist_ok=True)
        (run / f).write_bytes((finished / f).read_bytes())
    corrupt(finished / "model.pt", run / "model.pt")
    for args in (["recommend", "--run", str(run), "--users", "0"], ["evaluate", "--run", str(run), "--quiet"],
                 ["export", "--run", str(run), "--format", "torchscript", "--out", str(tmp_path / "x.pt")],
                 ["serve", "--run", str(run), "--port", "1"]):
        assert main(args) == 2
        _one_line_error(capsys, str(run / "model.pt"), message)


@pytest.mark.parametrize("content", [b'{"model": "s3rec", "encoder": {"d": 1', b"\xff\xfe not utf-8", b"[1, 2]",
                                     b'{"model": "s3rec", "no_such_option": 1}', b""])
def test_corrupt_config_json_is_a_one_line_error(finished, tmp_path, capsys, content):
    run = tmp_path / "run"
    for f in ("model.pt", "histories.npz", "id_maps/items.csv", "id_maps/users.csv", "id_maps/attributes.csv"):
        (run / f).parent.mkdir(parents=True, exist_ok=True)
        (run / f).write_bytes((finished / f).read_bytes())
    (run / "config.json").write_bytes(content)
    for args in (["recommend", "--run", str(run), "--users", "0"], ["evaluate", "--run", str(run), "--quiet"],
                 ["export", "--run", str(run), "--format", "torchscript", "--out", str(tmp_path / "x.pt")],
                 ["serve", "--run", str(run), "--port", "1"]):
        assert main(args) == 2, args
        _one_line_error(capsys, str(run / "config.json"), "unreadable config")
