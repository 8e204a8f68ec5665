"""Where a run computes: `--device auto|cpu|cuda`, with bfloat16 autocast on a GPU.

auto is CUDA when torch sees a GPU, else the CPU. On the CPU nothing changes: no autocast, float32,
the same numbers as without a device option. On CUDA the model lives on the GPU and each batch is
moved there in one copy per tensor; batches are still built on the CPU with the CPU generator, so
the sampled masks, negatives and segments are those of a CPU run (only dropout draws differ).
Training forward passes run under bfloat16 autocast (matmuls in bfloat16, losses and LayerNorm in
float32, as autocast decides); evaluation scores in float32. Losses are summed on the device and
read once per epoch, so no batch waits for the GPU to report a number.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from s3rec.errors import S3RecError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """torch.device for 'auto', 'cpu', 'cuda' or 'cuda:N'; asking for CUDA without a GPU is an S3RecError."""
    if isinstance(name, torch.device):
        name = str(name)
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            why = (f"torch {torch.__version__} is built without CUDA" if torch.version.cuda is None
                   else "torch sees no GPU")
            raise S3RecError(f"--device {name}: CUDA is not available ({why}); use --device cpu or auto")
        try:
            device = torch.device(name)
        except RuntimeError:
            raise S3RecError(f"--device {name}: not a CUDA device name (cuda or cuda:N)") from None
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise S3RecError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) visible")
        return device
    raise S3RecError(f"--device must be one of {', '.join(DEVICES)} (or cuda:N), got {name!r}")


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA; nothing on the CPU (keeps CPU runs bit-identical)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter or buffer (the CPU for a model with neither)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def to_device(batch: dict, device: torch.device) -> dict:
    """Every tensor of a batch on `device` (others unchanged); a no-op on the CPU."""
    if device.type == "cpu":
        return batch
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
