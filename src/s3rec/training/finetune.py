"""Fine-tuning loop for next-item models: early stopping on a validation metric, resumable."""

from __future__ import annotations

import copy
import inspect
import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from s3rec.data.splits import LeaveOneOut
from s3rec.device import autocast, model_device, to_device
from s3rec.errors import S3RecError
from s3rec.io import append_jsonl
from s3rec.models.base import SequentialRecommender
from s3rec.training import distributed
from s3rec.training.batches import TrainingSequences, batch_order, finetune_micro_batches
from s3rec.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from s3rec.training.faults import kill_switch
from s3rec.training.optim import adam


FINETUNE_SAMPLES = ("sequence", "prefixes")
OPTIMIZERS = ("adam", "adamw")
LR_SCHEDULES = ("constant", "linear")
NEGATIVES_EXCLUDE = ("train", "sequence")


@dataclass(slots=True)
class FinetuneConfig:
    """Fine-tuning schedule (authors' code: Adam lr 1e-3, batch 256, BCE with one negative)."""

    epochs: int = 200
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"  # adam (weight decay added to the gradient, authors' code) | adamw (decoupled, matrices only)
    lr_schedule: str = "constant"  # constant | linear (decays per epoch to 0 at `epochs`)
    loss: str = "bce"  # bce | bpr | ce | sampled-softmax
    n_negatives: int = 256  # for sampled-softmax
    label_smoothing: float = 0.0  # ce / sampled-softmax: weight of the uniform distribution in the target
    samples: str = "sequence"  # sequence: one row per user, every position a target | prefixes: one row per target
    # negatives avoid the user's training items (train) or whole sequence (sequence: the authors' code,
    # which tells the model its validation and test items are not negatives; docs/s3rec.md)
    negatives_exclude: str = "train"
    patience: int = 10
    metric: str = "NDCG@10"
    bucket: bool = False  # length-sorted batches of equal token count: ~5x faster epochs, lower quality measured
    micro_batches: int = 8  # models with splits_rows run each batch as at most this many length-sorted parts (exact)
    valid_every: int = 0  # also validate every N steps within an epoch (large data); patience counts validations
    # also validate an exponential moving average of the weights whose time constant is this many epochs,
    # and keep it where it scores best (0: off, the authors' code; docs/experiments.md)
    ema_epochs: float = 0.0


@dataclass
class FinetuneResult:
    """Best validation epoch (and step), its metric, which weights scored it, and the log of every validation."""

    best_epoch: int
    best_metric: float
    history: list[dict]
    seconds_train: float
    seconds_valid: float
    best_step: int = 0
    best_weights: str = "trained"  # or "average" (finetune.ema_epochs): the weights the model now holds


def training_sequences(split: LeaveOneOut, negatives_exclude: str = "train") -> TrainingSequences:
    """The training parts, with negatives drawn outside the user's training items or whole sequence."""
    if negatives_exclude not in NEGATIVES_EXCLUDE:
        raise S3RecError(f"finetune.negatives_exclude must be one of {', '.join(NEGATIVES_EXCLUDE)}, got {negatives_exclude!r}")
    seqs = TrainingSequences(*split.train_sequences(), split.n_items)
    if negatives_exclude == "sequence":  # authors' code: validation and test items are never negatives
        seqs.seen = split.all_index()
    return seqs


def weight_average(model: torch.nn.Module, ema_epochs: float, steps_per_epoch: float) -> AveragedModel | None:
    """An exponential moving average of `model`'s weights with a time constant of `ema_epochs` epochs (None: off)."""
    if ema_epochs <= 0:
        return None
    decay = max(0.0, 1.0 - 1.0 / (ema_epochs * steps_per_epoch))  # time constant 1 / (1 - decay) steps
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


@dataclass
class EarlyStopping:
    """The best validation so far, the weights that scored it, and the validations since any curve improved.

    `curves` holds each kind of weights' own best score ("trained"; with finetune.ema_epochs also
    "average"): patience counts validations in which no curve beat its own best, because the average
    lags the trained weights, so it can still be rising after their peak, or falling while they change fast.
    """

    epoch: int = 0
    step: int = 0
    metric: float = -1.0
    weights: str = "trained"
    state: dict | None = None
    bad: int = 0
    curves: dict = field(default_factory=dict)

    def update(self, scores: dict[str, dict[str, float]], modules: dict[str, torch.nn.Module], metric: str,
               epoch: int, step: int) -> str:
        """Record one validation of each kind of weights; return the best-scoring kind (the trained on a tie)."""
        improved = [name for name in scores if scores[name][metric] > self.curves.get(name, -1.0)]
        self.curves.update({name: scores[name][metric] for name in improved})
        name = max(scores, key=lambda n: scores[n][metric])
        if scores[name][metric] > self.metric:
            self.epoch, self.step, self.metric, self.weights = epoch, step, scores[name][metric], name
            self.state = copy.deepcopy(modules[name].state_dict())
        self.bad = 0 if improved else self.bad + 1
        return name

    def to_dict(self) -> dict:
        """The checkpoint's form (the state dict is not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, saved: dict) -> "EarlyStopping":
        """From a checkpoint, also one saved before curves and weights were kept (the same rule then)."""
        known = {f.name for f in fields(cls)}
        stopping = cls(**{k: v for k, v in saved.items() if k in known})
        if "curves" not in saved:
            stopping.curves = {"trained": stopping.metric}
        return stopping


def check_finetune_options(cfg: FinetuneConfig, model: SequentialRecommender) -> None:
    """S3RecError for a fine-tuning option the model or this loop does not have."""
    if cfg.optimizer not in OPTIMIZERS or cfg.lr_schedule not in LR_SCHEDULES:
        raise S3RecError(f"finetune.optimizer must be adam or adamw and finetune.lr_schedule constant or linear, "
                         f"got {cfg.optimizer!r}, {cfg.lr_schedule!r}")
    if cfg.samples not in FINETUNE_SAMPLES:
        raise S3RecError(f"finetune.samples must be one of {', '.join(FINETUNE_SAMPLES)}, got {cfg.samples!r}")
    if cfg.samples == "prefixes" and "ends" not in inspect.signature(model.training_batch).parameters:
        raise S3RecError(f"{type(model).__name__} cannot train on prefix samples (finetune.samples=prefixes); use sequence")


def train_step(model: SequentialRecommender, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
               parts: int, device: torch.device) -> torch.Tensor:
    """One optimiser step on `batch` (gradients summed over at most `parts` micro-batches); its loss, on the device."""
    opt.zero_grad(set_to_none=True)
    loss = 0.0
    for part, share in finetune_micro_batches(batch, parts):
        with autocast(device):
            part_loss = model.loss(to_device(part, device)) * share
        part_loss.backward()
        loss = loss + part_loss.detach()
    distributed.average_gradients(model)  # once per step, over every rank's batch
    opt.step()
    return loss


def finetune(
    model: SequentialRecommender, split: LeaveOneOut, cfg: FinetuneConfig, max_len: int, seed: int,
    validate: Callable[[SequentialRecommender], dict[str, float]], out_dir: str | Path,
    resume: bool = False, progress: bool = True, checkpoint_meta: dict | None = None, log=print,
    on_epoch: Callable[[dict], None] | None = None,
) -> FinetuneResult:
    """Train `model` on next-item targets, keep the weights of the best validation epoch (loaded at the end).

    With `cfg.ema_epochs` each validation also scores a moving average of the weights: the run keeps the
    best-scoring weights of either kind, and stops when neither kind has improved for `patience` validations.

    `on_epoch` (e.g. TensorBoard) receives each epoch's log record with "stage": "finetune" and every
    validation metric as valid_<name>.
    """
    check_finetune_options(cfg, model)
    seqs = training_sequences(split, cfg.negatives_exclude)  # checks the option before anything is written
    progress, log, on_epoch = distributed.main_only(progress, log, on_epoch)  # rank 0 alone prints and logs
    main = distributed.is_main()  # rank 0 alone writes files (s3rec.training.distributed)
    out_dir = Path(out_dir)
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    device = distributed.setup(model_device(model))  # batches go where the model is (see s3rec.device)
    opt = adam(model.parameters(), cfg.lr, cfg.weight_decay, decoupled=cfg.optimizer == "adamw")
    meta = checkpoint_meta or {"config": {}, "data": {"n_items": split.n_items}}
    state_path = out_dir / "finetune_last.pt"
    stopping = EarlyStopping(state=copy.deepcopy(model.state_dict()))  # epoch 0: the weights as given
    history: list[dict] = []
    start_epoch, t_train, t_valid = 0, 0.0, 0.0
    resumed = resume and state_path.exists()
    if main and not resumed:
        (out_dir / "finetune_log.jsonl").unlink(missing_ok=True)  # a fresh run starts a fresh log
    owner, ends, lengths = training_samples(seqs, cfg.samples, max_len)
    # the horizon in steps from the sample count, not from a batch order: that would draw random numbers
    average = weight_average(model, cfg.ema_epochs, len(lengths) / (cfg.batch_size * distributed.world_size()))
    if resumed:
        stopping, history, start_epoch, (t_train, t_valid) = restore(state_path, model, opt, average, gen)
        log(f"resumed fine-tuning from {state_path} after epoch {start_epoch}")
    distributed.broadcast_parameters(model)  # every rank starts from rank 0's weights
    after_step = kill_switch("finetune")  # fault-test hook, a no-op unless its variable is set
    parts = cfg.micro_batches if getattr(model, "splits_rows", False) and not cfg.bucket else 1  # buckets: little padding

    def check(epoch: int, step: int, total, n_batches: int, seconds_train: float, partial: bool) -> tuple[dict, float]:
        """Validate now; update `stopping`, `history` and the log; return the metrics and the seconds taken."""
        total, n_batches = distributed.sum_over_ranks(total, n_batches)  # the mean over every rank's batches
        loss = float(total) / max(int(n_batches), 1)
        if not math.isfinite(loss):  # checked once per validation: a check per batch would sync every step
            raise S3RecError(f"fine-tuning diverged: mean training loss {loss} in epoch {epoch} "
                             f"(lower finetune.lr, now {cfg.lr:g})")
        t = time.perf_counter()
        modules = {"trained": model} if average is None else {"trained": model, "average": average.module}
        scores = {name: scored(w, validate) for name, w in modules.items()}
        seconds = time.perf_counter() - t
        metrics = scores[stopping.update(scores, modules, cfg.metric, epoch, step)]
        compared = {} if average is None else {f"valid_{cfg.metric}_{n}": scores[n][cfg.metric] for n in scores}
        record = {"epoch": epoch, "step": step, "loss": loss, f"valid_{cfg.metric}": metrics[cfg.metric], **compared,
                  "seconds_train": round(seconds_train, 3), "seconds_valid": round(seconds, 3),
                  **({"partial": True} if partial else {})}
        history.append(record)
        if main:
            append_jsonl(out_dir / "finetune_log.jsonl", record)
        log(f"fine-tune epoch {epoch}{f' step {step}' if partial else ''}: loss={loss:.4f} valid {cfg.metric}="
            f"{metrics[cfg.metric]:.4f} (best {stopping.metric:.4f} @ {stopping.epoch}) [{seconds_train:.1f}s + {seconds:.1f}s]")
        return metrics, seconds

    step = history[-1].get("step", 0) if history else 0  # optimiser steps so far (resumed runs included)
    for epoch in range(start_epoch, cfg.epochs):
        if stopping.bad >= cfg.patience:
            break
        t0 = time.perf_counter()
        for group in opt.param_groups:  # a function of the epoch alone, so resuming needs no scheduler state
            group["lr"] = cfg.lr * (1 - epoch / cfg.epochs if cfg.lr_schedule == "linear" else 1.0)
        model.train()
        rank_gen = distributed.epoch_generator(gen, seed, epoch)  # `gen` in one process; per rank under torchrun
        total, n_batches, t_valid_epoch = 0.0, 0, 0.0
        batches = distributed.shard(batch_order(lengths, cfg.batch_size, gen, cfg.bucket))  # every N-th batch
        for idx in tqdm(batches, desc=f"fine-tune {epoch + 1}", disable=not progress, leave=False):
            prefix_ends = {} if ends is None else {"ends": ends[idx]}
            batch = model.training_batch(seqs, owner[idx], max_len, rank_gen, **prefix_ends)
            loss = train_step(model, opt, batch, parts, device)
            if average is not None:
                average.update_parameters(model)
            after_step()
            total, n_batches, step = total + loss.double(), n_batches + 1, step + 1  # on the device: no sync per batch
            # every rank takes the same number of steps (distributed.shard), so all validate together
            if cfg.valid_every and n_batches % cfg.valid_every == 0 and n_batches < len(batches):
                metrics, seconds = check(epoch + 1, step, total, n_batches, time.perf_counter() - t0 - t_valid_epoch,
                                         partial=True)
                t_valid_epoch += seconds
                if stopping.bad >= cfg.patience:
                    break
        seconds_train = time.perf_counter() - t0 - t_valid_epoch
        if n_batches == len(batches):  # else patience ran out at a validation within the epoch: stop there
            metrics, seconds = check(epoch + 1, step, total, n_batches, seconds_train, partial=False)
            t_valid_epoch += seconds
        t_train, t_valid = t_train + seconds_train, t_valid + t_valid_epoch
        if on_epoch is not None:
            on_epoch({"stage": "finetune", **history[-1], **{f"valid_{k}": v for k, v in metrics.items()}})
        if main:
            save_checkpoint(state_path, stage="finetune", model=model, optimizer=opt.state_dict(), epoch=epoch + 1,
                            rng=rng_state(gen), best=stopping.to_dict(), history=history, seconds=(t_train, t_valid),
                            **({} if average is None else {"average": average.state_dict()}), **meta)
    model.load_state_dict(stopping.state)
    model.eval()
    return FinetuneResult(stopping.epoch, stopping.metric, history, t_train, t_valid, stopping.step, stopping.weights)


def restore(state_path: Path, model: SequentialRecommender, opt: torch.optim.Optimizer, average: AveragedModel | None,
            gen: torch.Generator) -> tuple[EarlyStopping, list[dict], int, tuple[float, float]]:
    """Load a fine-tuning's last state into model, optimiser, average and generator; (stopping, history, epoch, seconds)."""
    ck = load_checkpoint(state_path, stage="finetune")
    model.load_state_dict(ck["state_dict"])
    try:
        opt.load_state_dict(ck["optimizer"])
    except ValueError as e:  # AdamW's parameter groups changed (biases undecayed since 2026-12)
        raise S3RecError(f"{state_path}: its optimiser state does not fit this version ({e}); "
                         "start afresh without --resume") from None
    if average is not None:
        if "average" not in ck:
            raise S3RecError(f"{state_path}: saved without finetune.ema_epochs; resume with the run's own settings")
        average.load_state_dict(ck["average"])
    set_rng_state(ck["rng"], gen)
    return EarlyStopping.from_dict(ck["best"]), ck["history"], ck["epoch"], tuple(ck["seconds"])


def scored(weights: torch.nn.Module, validate: Callable[[torch.nn.Module], dict[str, float]]) -> dict[str, float]:
    """Validation metrics of `weights` (rank 0 validates; all ranks stop on its numbers)."""
    weights.eval()
    metrics = distributed.on_main(validate, weights)
    weights.train()
    return metrics


def training_samples(seqs: TrainingSequences, samples: str, max_len: int
                     ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(owner user, prefix end or None, input length) of every fine-tuning sample of an epoch."""
    if samples == "prefixes":  # one sample per target: the prefix before it
        owner, ends = seqs.next_item_samples()
        return owner, ends, (ends - seqs.starts[owner] - 1).clamp(max=max_len)
    return torch.arange(seqs.n_users), None, (seqs.ends - seqs.starts - 1).clamp(min=1, max=max_len)
