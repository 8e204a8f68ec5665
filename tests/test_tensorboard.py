"""Tests of `--tensorboard DIR` (s3rec.tensorboard_log): event files with per-epoch losses and validation
metrics of both stages; TensorBoard stays optional at import time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from s3rec.cli import main
from s3rec.data.s3rec_format import save_s3rec_format
from s3rec.data.synthetic import make_synthetic

TINY = ["--set", "encoder.d=16", "--set", "encoder.n_layers=1", "--set", "encoder.max_len=8", "--seed", "1", "--quiet"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    data = make_synthetic(n_users=40, n_items=30, avg_len=8, n_attributes=10, n_topics=5, seed=0)
    return save_s3rec_format(data, tmp_path_factory.mktemp("tb"), "Tiny")


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} of every scalar in the event files of `log_dir`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_run_writes_losses_and_validation_metrics_of_both_stages(data_file, tmp_path):
    tb = tmp_path / "tb"
    assert main(["run", "--model", "s3rec", "--data", str(data_file), "--pretrain-epochs", "2", "--epochs", "3",
                 "--out", str(tmp_path / "run"), "--tensorboard", str(tb), *TINY]) == 0
    assert list(tb.glob("events.out.tfevents.*"))
    got = scalars(tb)
    for tag in ("pretrain/loss", "pretrain/aap", "pretrain/mip", "pretrain/map", "pretrain/sp", "pretrain_time/seconds"):
        assert [step for step, _ in got[tag]] == [1, 2], tag
    for tag in ("finetune/loss", "finetune/valid_NDCG@10", "finetune/valid_HR@10", "finetune/valid_MRR",
                "finetune_time/seconds_train"):
        assert [step for step, _ in got[tag]] == [1, 2, 3], tag
    # the values are the logged ones
    log = [json.loads(line) for line in (tmp_path / "run" / "finetune_log.jsonl").read_text().splitlines()]
    assert [v for _, v in got["finetune/valid_NDCG@10"]] == pytest.approx([r["valid_NDCG@10"] for r in log])


def test_pretrain_command_writes_event_files(data_file, tmp_path):
    tb = tmp_path / "tb"
    assert main(["pretrain", "--data", str(data_file), "--pretrain-epochs", "1", "--out", str(tmp_path / "pt"),
                 "--tensorboard", str(tb), *TINY]) == 0
    got = scalars(tb)
    assert got["pretrain/loss"][0][0] == 1 and not any(t.startswith("finetune") for t in got)


def test_without_the_flag_nothing_is_written_and_tensorboard_is_not_imported(data_file, tmp_path):
    code = ("import sys, s3rec, s3rec.cli, s3rec.tensorboard_log; "
            "bad = [m for m in sys.modules if m.startswith(('tensorboard', 'torch.utils.tensorboard'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert main(["run", "--model", "sasrec", "--data", str(data_file), "--epochs", "1", "--out", str(tmp_path / "r"),
                 *TINY]) == 0
    assert not list(tmp_path.rglob("events.out.tfevents.*"))


def test_missing_package_is_a_one_line_error(data_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # an import of it now fails
    assert main(["run", "--model", "sasrec", "--data", str(data_file), "--epochs", "1", "--out", str(tmp_path / "r"),
                 "--tensorboard", str(tmp_path / "tb"), *TINY]) == 2
    assert capsys.readouterr().err == ("s3rec: error: --tensorboard needs the tensorboard package: "
                                       "pip install 's3rec[tensorboard]'\n")
