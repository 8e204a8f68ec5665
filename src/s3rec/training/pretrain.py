"""The S3-Rec pre-training loop: thin, resumable, checkpointing every `save_every` epochs."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from s3rec.data.splits import LeaveOneOut
from s3rec.device import autocast, resolve_device, to_device
from s3rec.errors import S3RecError
from s3rec.io import append_jsonl, folder_lock
from s3rec.models.encoder import EncoderConfig, SequenceEncoder
from s3rec.models.s3rec import ObjectiveConfig, S3RecPretrainer
from s3rec.training import distributed
from s3rec.training.batches import TrainingSequences, batch_order, micro_batches, pretrain_batch
from s3rec.training.checkpoint import (check_same_data_info, data_info_of, load_checkpoint, rng_state,
                                      save_checkpoint, set_rng_state)
from s3rec.training.faults import kill_switch
from s3rec.training.optim import adam
from s3rec.training.prefetch import prefetched, use_prefetch


PRETRAIN_SAMPLES = ("prefixes", "random-prefix")  # every prefix of every sequence (authors') | one random prefix per user


@dataclass(slots=True)
class PretrainConfig:
    """Pre-training schedule (authors' code: batch 100, lr 1e-3, mask ratio 0.2, every prefix)."""

    epochs: int = 100
    batch_size: int = 100
    lr: float = 1e-3
    weight_decay: float = 0.0
    mask_ratio: float = 0.2
    samples: str = "prefixes"  # prefixes | random-prefix
    bucket: bool = False  # length-sorted batches of equal token count: faster, but changes batch composition
    # each batch runs as at most this many length-sorted parts, gradients summed (exact); 0 = auto:
    # 1 for S3-Rec's encoder (it packs real tokens itself), 4 for other encoders (padded; transfer)
    micro_batches: int = 0
    prefetch: str | bool = "auto"  # build the next batch on a thread during each step: auto (= on CUDA) | true | false
    save_every: int = 10
    objectives: ObjectiveConfig = field(default_factory=ObjectiveConfig)


def pretrain(split: LeaveOneOut, cfg: PretrainConfig, enc_cfg: EncoderConfig, out_dir: str | Path, seed: int,
             resume: bool = False, progress: bool = True, run_config: dict | None = None, log=print,
             on_epoch: Callable[[dict], None] | None = None,
             make_encoder: Callable[[], torch.nn.Module] | None = None,
             device: str | torch.device = "auto") -> Path:
    """Pre-train S3-Rec on the training part of `split`; returns the final checkpoint path.

    `on_epoch` (e.g. TensorBoard) receives each epoch's log record with "stage": "pretrain".
    `make_encoder` builds (after seeding) another model's encoder to pre-train instead of S3-Rec's own
    (see s3rec.transfer).
    """
    if cfg.epochs < 1:  # else the returned pretrain-epoch0.pt would not exist
        raise S3RecError(f"pre-training needs pretrain.epochs >= 1, got {cfg.epochs}; "
                         "for a model without pre-training use --model sasrec")
    if cfg.samples not in PRETRAIN_SAMPLES:
        raise S3RecError(f"unknown pre-training samples {cfg.samples!r} (prefixes or random-prefix)")
    device = distributed.setup(resolve_device(device))  # auto: CUDA when present; under torchrun cuda:LOCAL_RANK
    progress, log, on_epoch = distributed.main_only(progress, log, on_epoch)  # rank 0 alone prints and logs
    main = distributed.is_main()  # rank 0 alone writes files (s3rec.training.distributed)
    out_dir = Path(out_dir)
    with folder_lock(out_dir, hold=main):  # one run per folder; released however pre-training ends
        data = split.data
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = S3RecPretrainer(data.n_items, data.n_attributes, torch.from_numpy(data.attr_offsets),
                                torch.from_numpy(data.attr_values), enc_cfg, cfg.objectives,
                                sequence_encoder=None if make_encoder is None else make_encoder())
        model.to(device)
        opt = adam(model.parameters(), cfg.lr, cfg.weight_decay)
        seqs = TrainingSequences(*split.train_sequences(), data.n_items)
        data_info = data_info_of(data)
        config = run_config or {"pretrain": asdict(cfg), "encoder": asdict(enc_cfg), "seed": seed}
        last = out_dir / "last.pt"
        start_epoch = 0
        if main and not (resume and last.exists()):  # a fresh run: no log or checkpoint of an earlier one stays
            for stale in [out_dir / "pretrain_log.jsonl", last, *out_dir.glob("pretrain-epoch*.pt")]:
                stale.unlink(missing_ok=True)
        if resume and last.exists():
            start_epoch = restore(last, model, opt, gen, data_info)
            log(f"resumed pre-training from {last} after epoch {start_epoch}")
        distributed.broadcast_parameters(model)  # every rank starts from rank 0's weights

        with_sp = cfg.objectives.sp > 0
        # mip_form=softmax ignores the negatives but still draws them: the same random stream as the
        # pair form keeps the published --recipe best figures reproducible (the draw is ~1% of a step)
        with_negatives = cfg.objectives.mip > 0
        parts = cfg.micro_batches or (1 if isinstance(model.encoder, SequenceEncoder) else 4)
        after_step = kill_switch("pretrain")  # fault-test hook, a no-op unless its variable is set
        overlap = use_prefetch(cfg.prefetch, device)
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.perf_counter()
            model.train()
            rank_gen = distributed.epoch_generator(gen, seed, epoch)  # `gen` in one process; per rank under torchrun
            if cfg.samples == "prefixes":
                user, start, end = seqs.prefix_samples(enc_cfg.max_len)
            else:
                user, start, end = seqs.random_prefix_samples(enc_cfg.max_len, gen)
            totals: dict[str, float] = {}
            batches = distributed.shard(batch_order(end - start, cfg.batch_size, gen, cfg.bucket))  # every N-th batch
            make = partial(sample_batch, seqs, user, start, end, cfg.mask_ratio, rank_gen, with_sp, with_negatives)
            stream = prefetched(make, batches) if overlap else map(make, batches)  # the same batches either way
            for batch in tqdm(stream, total=len(batches), desc=f"pre-train {epoch + 1}/{cfg.epochs}", disable=not progress,
                              leave=False):
                pretrain_step(model, opt, batch, parts, cfg.batch_size, device, totals)
                after_step()
            totals = distributed.epoch_totals(totals, sum(len(i) for i in batches), len(user))  # all ranks' samples
            seconds = time.perf_counter() - t0
            record = {"epoch": epoch + 1, "seconds": round(seconds, 3), "samples": len(user),
                      **{k: float(v) / len(user) for k, v in totals.items()}}
            diverged = [k for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)]
            if diverged:  # checked once per epoch: a check per batch would sync every step
                raise S3RecError(f"pre-training diverged: {', '.join(diverged)} loss not finite in epoch {epoch + 1} "
                                 f"(lower pretrain.lr, now {cfg.lr:g})")
            if main:
                append_jsonl(out_dir / "pretrain_log.jsonl", record)
            if on_epoch is not None:
                on_epoch({"stage": "pretrain", **record})
            log(f"pre-train epoch {epoch + 1}: "
                + " ".join(f"{k}={v:.4f}" for k, v in record.items() if k not in ("epoch", "samples")))
            if main and (epoch + 1 == 3 or (epoch + 1) % 10 == 0):
                warn_if_stalled(out_dir, record, cfg, log)
            state = {"optimizer": opt.state_dict(), "epoch": epoch + 1, "rng": rng_state(gen)}
            if main:
                save_checkpoint(last, stage="pretrain", config=config, data=data_info, model=model, **state)
                if (epoch + 1) % cfg.save_every == 0 or epoch + 1 == cfg.epochs:
                    save_checkpoint(out_dir / f"pretrain-epoch{epoch + 1}.pt", stage="pretrain", config=config,
                                    data=data_info, model=model, **state)
        distributed.barrier()  # the other ranks may read the final checkpoint once rank 0 has written it
    return out_dir / f"pretrain-epoch{cfg.epochs}.pt"


def restore(last: Path, model: S3RecPretrainer, opt: torch.optim.Optimizer, gen: torch.Generator, data_info: dict) -> int:
    """Load a pre-training's last state (made on the same data) into model, optimiser and generator; its epoch."""
    ck = load_checkpoint(last, stage="pretrain")
    check_same_data_info(ck, last, data_info)
    model.load_state_dict(ck["state_dict"])
    opt.load_state_dict(ck["optimizer"])
    set_rng_state(ck["rng"], gen)
    return ck["epoch"]


def pretrain_step(model: S3RecPretrainer, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor], parts: int,
                  batch_size: int, device: torch.device, totals: dict) -> None:
    """One optimiser step on `batch` (gradients summed over its micro-batches); adds each loss's sum to `totals`."""
    opt.zero_grad(set_to_none=True)
    for part in micro_batches(batch, parts):
        with autocast(device):
            losses = model(to_device(part, device))
        # per-sample mean -> sum / batch_size, so the parts add up to the whole batch's loss
        (losses["loss"] * (len(part["items"]) / batch_size)).backward()
        for k, v in losses.items():
            totals[k] = totals.get(k, 0.0) + v.detach().double() * len(part["items"])  # on the device: no sync per batch
    distributed.average_gradients(model)  # once per step, over every rank's batch
    opt.step()


def warn_if_stalled(out_dir: Path, record: dict, cfg: PretrainConfig, log) -> None:
    """Log a warning for each pairwise objective whose loss has not moved since epoch 1 (pretrain_log.jsonl)."""
    with open(out_dir / "pretrain_log.jsonl", encoding="utf-8") as f:
        first = json.loads(f.readline())
    for k in stalled_objectives(first, record):
        log(f"warning: the {k} loss has not moved since epoch 1 ({first[k]:.4f} -> {record[k]:.4f}): "
            f"that objective is not learning{stall_hint(k, cfg)}")


def stall_hint(objective: str, cfg: PretrainConfig) -> str:
    """What the stall warning adds about a likely cause."""
    if cfg.objectives.pair_loss != "faithful":
        return ""
    buckets = ("; SP stalled so with pretrain.bucket=true on Beauty and Sports, not with random batches, docs/s3rec.md"
               if objective == "sp" and cfg.bucket else "")
    return f" (its double sigmoid may be saturated; pair_loss=bpr cannot saturate{buckets})"


def stalled_objectives(first: dict, now: dict, rel_tol: float = 1e-3) -> list[str]:
    """Pairwise objectives (mip, sp) whose epoch loss is still within rel_tol of its epoch-1 value."""
    return [k for k in ("mip", "sp") if first.get(k, 0) > 0 and k in now and abs(now[k] - first[k]) <= rel_tol * first[k]]


def sample_batch(seqs: TrainingSequences, user: torch.Tensor, start: torch.Tensor, end: torch.Tensor,
                 mask_ratio: float, gen: torch.Generator, with_sp: bool, with_negatives: bool,
                 idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """The pre-training batch of samples `idx` (indices into the epoch's user / start / end)."""
    return pretrain_batch(seqs, user[idx], start[idx], end[idx], mask_ratio, gen, with_sp, with_negatives)


def stalled_in_log(pretrain_dir: Path) -> dict[str, tuple[float, float]]:
    """objective -> (epoch-1 loss, last epoch's loss) for those stalled_objectives flags in pretrain_log.jsonl
    (judged from epoch 3 on, as the warning during pre-training; empty without a log)."""
    records = log_records(pretrain_dir)
    if 1 not in records or max(records) < 3:
        return {}
    first, last = records[1], records[max(records)]
    return {k: (first[k], last[k]) for k in stalled_objectives(first, last)}


def log_records(pretrain_dir: Path) -> dict[int, dict]:
    """epoch -> its record in pretrain_log.jsonl (a resumed epoch counts once: its last record); {} without a log."""
    log = Path(pretrain_dir) / "pretrain_log.jsonl"
    if not log.is_file():
        return {}
    lines = [line for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {r["epoch"]: r for r in map(json.loads, lines)}


def pretrain_seconds(pretrain_dir: Path | None, epochs: int | None = None) -> float | None:
    """Total seconds of the epochs in pretrain_log.jsonl, the first `epochs` only if given (None without a log).

    A folder pre-trained further later (a longer study in the same folder) holds epochs that a
    checkpoint of epoch `epochs` never saw.
    """
    if pretrain_dir is None or not (Path(pretrain_dir) / "pretrain_log.jsonl").is_file():
        return None
    return float(sum(r.get("seconds", 0.0) for e, r in log_records(pretrain_dir).items() if epochs is None or e <= epochs))
