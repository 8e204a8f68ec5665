"""Data-parallel training under torchrun (s3rec.training.distributed): one `torchrun --standalone
--nproc_per_node=2` launch of this file (gloo on 127.0.0.1, one torch thread per rank, tiny synthetic data)
runs the training loops and then `s3rec run` through s3rec.cli.main, as `python -m s3rec` does.

(a) One optimiser step of 2 ranks equals one single-process step on the union of their batches (the mean
    of the two batch losses): the same gradient (read from Adam's first moment, exp_avg = 0.1 x gradient)
    and the same parameters, in both stages; the ranks hold identical weights afterwards.
(b) `s3rec run` on 2 ranks with per-rank batch 16 (global 32) ends as good as one process with batch 32:
    the mean per-user test NDCG@10 differs by less than 4 standard errors of the paired per-user
    difference. The runs draw different masks, negatives and dropout, so they differ like two seeds;
    4 SE is a ~1e-4 false-alarm rate for a real difference of zero.
(c) Only rank 0 logs and writes files: an audit hook in each rank records its writes under the run folders.
Resuming under torchrun continues exactly like an uninterrupted distributed run, in both stages.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

SEED = 5
CLI = ["run", "--model", "s3rec", "--set", "encoder.d=16", "--set", "encoder.n_layers=1", "--set", "encoder.max_len=10",
       "--seed", "3", "--pretrain-epochs", "2", "--set", "pretrain.samples=random-prefix", "--epochs", "20",
       "--patience", "4", "--device", "cpu"]
WRITES = ("os.rename", "os.remove", "os.mkdir", "os.rmdir", "os.truncate", "tempfile.mkstemp", "shutil.rmtree")


def record_writes(root: Path, report: Path) -> None:
    """Record every file-system write of this process under `root` (an audit hook); save the list at exit."""
    writes: list[list[str]] = []

    def path(a) -> str:
        return os.fsdecode(a) if isinstance(a, (str, bytes, os.PathLike)) else ""

    def hook(event: str, args: tuple) -> None:
        if event == "open" and path(args[0]).startswith(str(root)):
            mode, flags = args[1] or "", args[2] or 0
            if set(mode) & set("wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                writes.append([event, path(args[0])])
        elif event in WRITES and any(path(a).startswith(str(root)) for a in args):
            writes.append([event, [path(a) for a in args if path(a)][-1]])  # a rename's target

    sys.addaudithook(hook)
    atexit.register(lambda: report.write_text(json.dumps(writes)))


def tiny_split():
    from s3rec.data.splits import LeaveOneOut
    from s3rec.data.synthetic import make_synthetic

    return LeaveOneOut.from_data(make_synthetic(n_users=40, n_items=30, avg_len=8, n_attributes=10, n_topics=5, seed=0))


def encoder(dropout: float):
    from s3rec.models.encoder import EncoderConfig

    return EncoderConfig(d=16, n_layers=1, max_len=8, dropout=dropout, attn_dropout=dropout)


def no_validation(model) -> dict[str, float]:
    return {"NDCG@10": 0.0}


def _rank(root: Path) -> int:
    """One torchrun rank (this file run as a script): the loops' one-step and resume runs, then the CLI run."""
    from s3rec.cli import main
    from s3rec.models.factory import build_model
    from s3rec.training.batches import TrainingSequences
    from s3rec.training.finetune import FinetuneConfig, finetune
    from s3rec.training.pretrain import PretrainConfig, pretrain

    torch.set_num_threads(1)
    rank, runs = int(os.environ["RANK"]), root / "runs"
    record_writes(runs, root / f"writes-rank{rank}.json")
    split, quiet = tiny_split(), (lambda *a, **k: None)
    n_samples = len(TrainingSequences(*split.train_sequences(), split.n_items).prefix_samples(8)[0])
    # (a) exactly two batches in the epoch: one step, rank r on batch r
    pretrain(split, PretrainConfig(epochs=1, batch_size=math.ceil(n_samples / 2)), encoder(0.0), runs / "pt-step",
             SEED, progress=False, log=quiet, device="cpu")
    torch.manual_seed(1)
    model = build_model("s3rec", split, encoder(0.0))
    finetune(model, split, FinetuneConfig(epochs=1, batch_size=math.ceil(split.data.n_users / 2)), 8, SEED,
             no_validation, runs / "ft-step", progress=False, log=quiet)
    torch.save(model.state_dict(), root / f"ft-step-rank{rank}.pt")
    # resume: 2 epochs straight vs 1 epoch, then resumed to 2 (dropout on; 4 and 3 steps per epoch, the last wrapped)
    for name, epochs, resume in (("straight", 2, False), ("resumed", 1, False), ("resumed", 2, True)):
        pretrain(split, PretrainConfig(epochs=epochs, batch_size=32), encoder(0.5), runs / f"pt-{name}", SEED,
                 resume=resume, progress=False, log=quiet, device="cpu")
        torch.manual_seed(1)
        model = build_model("s3rec", split, encoder(0.5))
        finetune(model, split, FinetuneConfig(epochs=epochs, batch_size=8), 8, SEED, no_validation,
                 runs / f"ft-{name}", resume=resume, progress=False, log=quiet)
    # (b), (c): the command line, per-rank batch 16 (global 32)
    return main(CLI + ["--data", str(root / "Syn.txt"), "--out", str(runs / "dist"),
                       "--set", "pretrain.batch_size=16", "--set", "finetune.batch_size=16"])


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> tuple[Path, str]:
    """Two torchrun ranks running `_rank`, and meanwhile the single-process reference run (batch 32) here."""
    from s3rec.cli import main
    from s3rec.data.s3rec_format import save_s3rec_format
    from s3rec.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("distributed")
    path = save_s3rec_format(make_synthetic(n_users=300, n_items=60, avg_len=10, n_attributes=16, n_topics=6, seed=0),
                             root, "Syn")
    ranks = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                              __file__, str(root)], env={**os.environ, "OMP_NUM_THREADS": "1"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    torch.set_num_threads(1)
    assert main(CLI + ["--data", str(path), "--out", str(root / "single"), "--quiet",
                       "--set", "pretrain.batch_size=32", "--set", "finetune.batch_size=32"]) == 0
    out, err = ranks.communicate(timeout=600)
    assert ranks.returncode == 0, err[-3000:]
    return root, out


def adam_after_one_step(model, losses) -> torch.optim.Adam:
    """Single process: one Adam step (lr 1e-3, as both loops) on the mean of `losses()`'s batch losses."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    opt.zero_grad(set_to_none=True)
    for loss in losses():
        (loss / 2).backward()
    opt.step()
    return opt


def assert_same_step(checkpoint: Path, model, opt) -> None:
    ck = torch.load(checkpoint, weights_only=False)
    got, expected = ck["optimizer"]["state"], opt.state_dict()["state"]
    assert got.keys() == expected.keys() and len(expected) > 5
    for i in expected:  # exp_avg = (1 - beta1) x the step's gradient
        torch.testing.assert_close(got[i]["exp_avg"], expected[i]["exp_avg"], rtol=1e-5, atol=1e-9)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(ck["state_dict"][k], v, rtol=1e-5, atol=1e-7)


def test_one_pretrain_step_equals_a_single_process_step_on_both_shards(ranks):
    from s3rec.models.s3rec import ObjectiveConfig, S3RecPretrainer
    from s3rec.training.batches import TrainingSequences, batch_order, micro_batches, pretrain_batch
    from s3rec.training.distributed import rank_seed

    root, _ = ranks
    split, enc = tiny_split(), encoder(0.0)
    data = split.data
    torch.manual_seed(SEED)  # as pretrain() builds its model
    model = S3RecPretrainer(data.n_items, data.n_attributes, torch.from_numpy(data.attr_offsets),
                            torch.from_numpy(data.attr_values), enc, ObjectiveConfig())
    seqs = TrainingSequences(*split.train_sequences(), data.n_items)
    user, start, end = seqs.prefix_samples(enc.max_len)
    size = math.ceil(len(user) / 2)
    batches = batch_order(end - start, size, torch.Generator().manual_seed(SEED), False)
    assert len(batches) == 2

    def losses():
        for r, idx in enumerate(batches):  # rank r's batch, drawn with rank r's generator
            gen = torch.Generator().manual_seed(rank_seed(SEED, 0, r))
            batch = pretrain_batch(seqs, user[idx], start[idx], end[idx], 0.2, gen, True)
            yield sum(model(part)["loss"] * (len(part["items"]) / size) for part in micro_batches(batch, 4))

    assert_same_step(root / "runs" / "pt-step" / "last.pt", model, adam_after_one_step(model, losses))


def test_one_finetune_step_equals_a_single_process_step_on_both_shards(ranks):
    from s3rec.models.factory import build_model
    from s3rec.training.batches import TrainingSequences, batch_order, finetune_micro_batches
    from s3rec.training.distributed import rank_seed

    root, _ = ranks
    split = tiny_split()
    torch.manual_seed(1)
    model = build_model("s3rec", split, encoder(0.0))
    seqs = TrainingSequences(*split.train_sequences(), split.n_items)
    lengths = (seqs.ends - seqs.starts - 1).clamp(min=1, max=8)
    batches = batch_order(lengths, math.ceil(seqs.n_users / 2), torch.Generator().manual_seed(SEED), False)
    assert len(batches) == 2

    def losses():
        for r, idx in enumerate(batches):  # users idx, rank r's negatives, as length-sorted parts like the trainer
            batch = model.training_batch(seqs, idx, 8, torch.Generator().manual_seed(rank_seed(SEED, 0, r)))
            yield sum(model.loss(part) * share for part, share in finetune_micro_batches(batch, 8))

    assert_same_step(root / "runs" / "ft-step" / "finetune_last.pt", model, adam_after_one_step(model, losses))
    a, b = (torch.load(root / f"ft-step-rank{r}.pt") for r in (0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)  # the ranks stay in lockstep


def _log(path: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("seconds")}
            for line in path.read_text().splitlines()]


@pytest.mark.parametrize("stage,checkpoint,log", [("pt", "last.pt", "pretrain_log.jsonl"),
                                                  ("ft", "finetune_last.pt", "finetune_log.jsonl")])
def test_resume_under_torchrun_continues_exactly(ranks, stage, checkpoint, log):
    runs = ranks[0] / "runs"
    straight, resumed = (torch.load(runs / f"{stage}-{n}" / checkpoint, weights_only=False) for n in ("straight", "resumed"))
    assert resumed["epoch"] == straight["epoch"] == 2
    assert all(torch.equal(resumed["state_dict"][k], v) for k, v in straight["state_dict"].items())
    assert _log(runs / f"{stage}-resumed" / log) == _log(runs / f"{stage}-straight" / log)


def test_torchrun_run_is_as_good_as_one_process(ranks):
    root, _ = ranks
    a, b = (np.load(d / "per_user.npz")["test/full/NDCG@10"] for d in (root / "single", root / "runs" / "dist"))
    diff = b - a
    se = diff.std(ddof=1) / math.sqrt(len(diff))
    assert abs(diff.mean()) < 4 * se, (a.mean(), b.mean(), se)
    assert min(a.mean(), b.mean()) > 0.2  # both learned the planted successors


def test_only_rank_0_logs_and_writes(ranks):
    root, out = ranks
    assert out.count("pre-train epoch 1:") == 1 and out.count("fine-tune epoch 1:") == 1
    assert out.count("run directory:") == 1
    writes = [json.loads((root / f"writes-rank{r}.json").read_text()) for r in (0, 1)]
    assert writes[1] == []
    written = {Path(p).name for _, p in writes[0]}  # the recorder does see rank 0's writes
    assert {"last.pt", "finetune_last.pt", "config.json", "model.pt", "metrics.json"} <= written
    config = json.loads((root / "runs" / "dist" / "config.json").read_text())
    assert config["environment"]["world_size"] == 2


if __name__ == "__main__":  # a torchrun rank of the `ranks` fixture
    sys.exit(_rank(Path(sys.argv[1])))


def test_epoch_totals_scale_every_rank_s_sums_to_the_epoch_s_samples(monkeypatch):
    from s3rec.training import distributed

    # two ranks, each with 3 samples and a loss sum of 3.0, in an epoch of 5 samples (one sample repeated)
    monkeypatch.setattr(distributed, "active", lambda: True)
    monkeypatch.setattr(distributed, "sum_over_ranks", lambda *values: tuple(2 * v for v in values))
    assert distributed.epoch_totals({"loss": 3.0, "sp": 1.5}, n_local=3, n=5) == {"loss": 5.0, "sp": 2.5}
    monkeypatch.setattr(distributed, "active", lambda: False)
    assert distributed.epoch_totals({"loss": 3.0}, n_local=3, n=5) == {"loss": 3.0}  # one process: as summed
