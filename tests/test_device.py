"""--device auto|cpu|cuda: resolution, clear errors without CUDA, and the CPU path left unchanged."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch

from s3rec.cli import main
from s3rec.data.synthetic import make_synthetic
from s3rec.data.writers import write_data
from s3rec.device import autocast, model_device, resolve_device, to_device
from s3rec.errors import S3RecError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny.txt"
    write_data(make_synthetic(n_users=60, n_items=40, avg_len=7, n_attributes=8, n_topics=4, seed=2), path, "s3rec")
    return path


def test_resolve_device_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device(None) == resolve_device("CPU") == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(S3RecError, match=f"--device {name}: CUDA is not available"):
            resolve_device(name)
    with pytest.raises(S3RecError, match="--device must be one of auto, cpu, cuda"):
        resolve_device("tpu")


def test_resolve_device_with_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(S3RecError, match="only 2 GPU"):
        resolve_device("cuda:2")
    with pytest.raises(S3RecError, match="not a CUDA device name"):
        resolve_device("cuda:x")


def test_cpu_helpers_change_nothing():
    batch = {"items": torch.arange(6).view(2, 3), "n": 3}
    assert to_device(batch, torch.device("cpu")) is batch
    assert isinstance(autocast(torch.device("cpu")), contextlib.nullcontext)
    assert model_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
@pytest.mark.parametrize("command", [["run", "--model", "sasrec"], ["pretrain"], ["finetune", "--init", "x.pt"]])
def test_cuda_without_cuda_is_a_one_line_error(tmp_path, tiny, capsys, command):
    out = tmp_path / "out"
    assert main([*command, "--data", str(tiny), "--out", str(out), "--device", "cuda", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("s3rec: error: --device cuda: CUDA is not available") and err.count("\n") == 1
    assert not out.exists()


def test_cpu_run_records_its_device_and_matches_auto(tmp_path, tiny):
    metrics = []
    for device in ("cpu", "auto"):
        out = tmp_path / device
        args = ["run", "--model", "sasrec", "--data", str(tiny), "--epochs", "2", "--seed", "3", "--out", str(out), "--quiet"]
        assert main([*args, "--device", device]) == 0
        env = json.loads((out / "config.json").read_text())["environment"]
        assert env["device"] == str(resolve_device(device)) and env["threads"] == torch.get_num_threads()
        metrics.append(json.loads((out / "metrics.json").read_text())["test"])
    if not torch.cuda.is_available():
        assert metrics[0] == metrics[1]


def test_pretrain_command_takes_device(tmp_path, tiny):
    out = tmp_path / "pt"
    assert main(["pretrain", "--data", str(tiny), "--pretrain-epochs", "1", "--out", str(out), "--device", "cpu",
                 "--quiet"]) == 0
    record = json.loads((out / "pretrain_log.jsonl").read_text().splitlines()[0])
    assert isinstance(record["loss"], float) and record["loss"] > 0


def test_training_losses_run_under_bfloat16_autocast(monkeypatch):
    """CUDA runs training under bf16 autocast; CPU autocast, the same op lists, checks dtypes and finiteness here."""
    from s3rec.data.splits import LeaveOneOut
    from s3rec.models.encoder import EncoderConfig
    from s3rec.models.s3rec import S3RecPretrainer
    from s3rec.models.sasrec import SASRec
    from s3rec.training.batches import TrainingSequences, micro_batches, pretrain_batch

    data = make_synthetic(n_users=80, n_items=60, avg_len=8, n_attributes=10, n_topics=4, seed=1)
    split = LeaveOneOut.from_data(data)
    enc = EncoderConfig(d=16, n_heads=2, max_len=20)
    gen = torch.Generator().manual_seed(0)
    seqs = TrainingSequences(*split.train_sequences(), data.n_items)
    pre = S3RecPretrainer(data.n_items, data.n_attributes, torch.from_numpy(data.attr_offsets),
                          torch.from_numpy(data.attr_values), enc)
    user, start, end = seqs.prefix_samples(20)
    from s3rec.models import encoder as encoder_module
    for pack in (0.0, 1.0):  # packed and padded encoding
        monkeypatch.setattr(encoder_module, "PACK_MIN_PADDING", pack)
        for part in micro_batches(pretrain_batch(seqs, user[:32], start[:32], end[:32], 0.2, gen), 2):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                losses = pre(part)
            assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
            losses["loss"].backward()
    assert pre.encoder.M_I.weight.grad is not None
    for loss in ("bce", "bpr", "ce", "sampled-softmax"):
        model = SASRec(data.n_items, enc, loss=loss, n_negatives=8)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            value = model.loss(model.training_batch(seqs, torch.arange(16), 20, gen))
        assert value.dtype == torch.float32 and torch.isfinite(value)
        value.backward()
