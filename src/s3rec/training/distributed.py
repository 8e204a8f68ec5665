"""Data-parallel training under torchrun: one process per GPU (or per CPU process), gradients averaged.

`torchrun --nproc_per_node=N -m s3rec run|pretrain|finetune ...` starts N processes with WORLD_SIZE,
RANK and LOCAL_RANK set; `setup` joins them in a process group (NCCL on CUDA, gloo on the CPU) and
gives each its device (cuda:LOCAL_RANK for --device auto or cuda). Without WORLD_SIZE > 1 every
helper here returns its input untouched, so a single process runs exactly as before.

Sharding: every rank draws the same batch order from the shared generator `gen` and takes every N-th
batch (the last round wraps around to the epoch's first batches, so all ranks take the same number of
steps). Each rank builds its batches (masks, negatives, segments) with its own generator seeded by
(seed, epoch, rank), and reseeds dropout the same way, so `gen` stays in step across ranks and a resumed
epoch redraws exactly what the interrupted one drew. One optimiser step thus covers N batches:
`batch_size` is per rank and the global batch is N x batch_size.

Gradients: the loops call the unwrapped model (`model(batch)` in pre-training, `model.loss(batch)` in
fine-tuning) and, once per optimiser step (after every micro-batch's backward), `average_gradients`
all-reduces every gradient in one flat buffer and divides by N: the step's loss is the mean of the N
ranks' batch losses, each at the scale of a single-process batch. DistributedDataParallel is not used:
it averages only through its wrapper's forward(), which the models' `loss` bypasses; pre-training
accumulates micro-batches (DDP would need `no_sync`); and an objective with weight 0, or a batch
without SP segments, leaves parameters without gradients (DDP would need find_unused_parameters and an
extra graph walk per step). The models are small, so overlapping communication with backward, DDP's
advantage, buys little; and the unwrapped model keeps its checkpoints' keys.

Rank 0 alone prints, logs, writes checkpoints and the run directory, validates (its metrics are
broadcast, so every rank keeps the same early-stopping state and stops at the same epoch) and
evaluates; the other ranks wait in the next collective or barrier.
"""

from __future__ import annotations

import atexit
import os
from datetime import timedelta
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from s3rec.errors import S3RecError

COMMANDS = ("run", "pretrain", "finetune")
# rank 0 validates and evaluates alone while the others wait in a collective: NCCL's default 10 min is short
TIMEOUT = timedelta(hours=1)


def world_size() -> int:
    """Number of processes torchrun started (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's global rank (0 outside torchrun); read from the environment, so valid before `setup`."""
    return int(os.environ.get("RANK", "0")) if world_size() > 1 else 0


def is_main() -> bool:
    """True on rank 0, the one process that prints, validates and writes files."""
    return rank() == 0


def active() -> bool:
    """True once this process is in a process group of more than one rank."""
    return world_size() > 1 and dist.is_available() and dist.is_initialized()


def setup(device: torch.device) -> torch.device:
    """This rank's device, after joining the process group (idempotent); `device` unchanged outside torchrun."""
    if world_size() <= 1:
        return device
    if not dist.is_available():
        raise S3RecError(f"WORLD_SIZE={world_size()} but torch {torch.__version__} has no torch.distributed")
    if device.type == "cuda" and device.index is None:  # --device auto or cuda: one GPU per local rank
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise S3RecError(f"LOCAL_RANK {local}: only {torch.cuda.device_count()} GPU(s) visible; "
                             "start at most that many processes per node (--nproc_per_node)")
        device = torch.device("cuda", local)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL collectives and broadcast_object_list use the current device
    if not dist.is_initialized():
        # env:// rendezvous: torchrun sets MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
        atexit.register(cleanup)
    return device


def describe() -> dict[str, Any]:
    """What config.json records about the process group ({} in one process, keeping its file as before)."""
    return {"world_size": world_size(), "backend": dist.get_backend()} if active() else {}


def check_command(command: str) -> None:
    """Only the training commands know how to share work; anything else under torchrun is an error."""
    if world_size() > 1 and command not in COMMANDS:
        raise S3RecError(f"torchrun runs `s3rec {'|'.join(COMMANDS)}` only; start `s3rec {command}` as one process")


def main_only(*outputs: Any) -> tuple:
    """`outputs` (progress flags, print and log callbacks) on rank 0; elsewhere False or a no-op (None stays None)."""
    if is_main():
        return outputs
    return tuple(o if o is None else False if isinstance(o, bool) else _silent for o in outputs)


def _silent(*args: Any, **kwargs: Any) -> None:
    return None


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of `rank`'s batch generator and dropout in `epoch` (a hash, so nearby seeds do not collide)."""
    return int(np.random.SeedSequence([seed % 2**64, epoch, rank]).generate_state(1)[0])


def epoch_generator(gen: torch.Generator, seed: int, epoch: int) -> torch.Generator:
    """The generator that builds this rank's batches in `epoch`: `gen` itself in one process."""
    if not active():
        return gen
    s = rank_seed(seed, epoch, rank())
    torch.manual_seed(s)  # dropout differs across ranks, and a resumed epoch draws the same again
    return torch.Generator().manual_seed(s)


def shard(batches: list) -> list:
    """This rank's batches: every N-th, the last round wrapping around so all ranks take as many steps."""
    if not active() or not batches:
        return batches
    n, r = world_size(), rank()
    return [batches[(r + n * i) % len(batches)] for i in range(-(-len(batches) // n))]


def broadcast_parameters(model: nn.Module) -> None:
    """Rank 0's parameters and buffers on every rank, as DistributedDataParallel does at start."""
    if not active():
        return
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            dist.broadcast(t, src=0)


def average_gradients(model: nn.Module) -> None:
    """Replace every gradient by its mean over the ranks, in one all-reduce; call once per optimiser step.

    A parameter without a gradient on every rank keeps None (Adam skips it, as in one process); one
    with a gradient on some ranks only averages in zeros for the others (their losses do not reach it).
    """
    if not active():
        return
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return
    has = torch.tensor([p.grad is not None for p in params], dtype=params[0].dtype, device=params[0].device)
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params] + [has])
    dist.all_reduce(flat)  # SUM
    grads, has = flat[: -len(params)], flat[-len(params):]
    grads /= world_size()
    for p, g, n in zip(params, grads.split([p.numel() for p in params]), has.tolist()):
        p.grad = g.view_as(p) if n > 0 else None


def sum_over_ranks(*values: Any) -> tuple:
    """Each number or 0-d tensor summed over the ranks (as Python floats); the values unchanged in one process."""
    if not active():
        return values
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.stack([torch.as_tensor(v, dtype=torch.float64).to(device) for v in values])
    dist.all_reduce(t)
    return tuple(t.tolist())


def epoch_totals(totals: dict[str, Any], n_local: int, n: int) -> dict[str, Any]:
    """Loss sums over every rank's `n_local` samples, scaled to the epoch's `n` (wrapped batches repeat a few)."""
    if not active():
        return totals
    *sums, seen = sum_over_ranks(*totals.values(), n_local)
    return {k: s * (n / float(seen)) for k, s in zip(totals, sums)}


def broadcast(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (the others' `obj` is ignored); `obj` in one process."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_main(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) on rank 0 alone, its result sent to every rank (the others wait for it)."""
    return broadcast(fn(*args) if is_main() else None)


def barrier() -> None:
    """Wait for every rank (e.g. until rank 0 has written a checkpoint the others read)."""
    if active():
        dist.barrier()


EXIT_WAIT = timedelta(seconds=60)  # how long a rank leaving waits for the others at exit


def cleanup() -> None:
    """Leave the process group (registered at exit by `setup`), after the other ranks are done too.

    A gloo rank that tears its group down while a peer still talks to it can abort in gloo's worker
    threads at exit (seen once in CI: "terminate called without an active exception"); meeting at a
    bounded barrier first means no collective is in flight. A peer that never comes (it failed) only
    delays the exit by EXIT_WAIT.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    if dist.get_backend() == "gloo":
        try:
            dist.monitored_barrier(timeout=EXIT_WAIT)
        except RuntimeError:
            pass  # a rank failed or left: nothing is in flight with it any more
    dist.destroy_process_group()
