"""Self-describing checkpoints: config + weights (+ optimizer, epoch, RNG states for exact resume)."""

from __future__ import annotations

import hashlib
import platform
import random
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from s3rec.errors import S3RecError
from s3rec.io import atomic_path

FORMAT = "s3rec-checkpoint"
VERSION = 1


def environment() -> dict[str, str | int]:
    """Package versions, git commit and CPU thread count, saved beside every result."""
    import s3rec

    commit = "unknown"
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        pass
    return {"s3rec": s3rec.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "git_commit": commit,
            # the same seed gives slightly different floats with another thread count (summation order)
            "threads": torch.get_num_threads()}


def rng_state(gen: torch.Generator | None = None) -> dict[str, Any]:
    """Every random state a run uses (global torch for dropout, the sampling generator, numpy, random)."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "random": random.getstate()}
    if gen is not None:
        state["generator"] = gen.get_state()
    return state


def set_rng_state(state: dict[str, Any], gen: torch.Generator | None = None) -> None:
    """Restore what `rng_state` saved."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["random"])
    if gen is not None and "generator" in state:
        gen.set_state(state["generator"])


def save_checkpoint(path: str | Path, *, stage: str, config: dict, data: dict, model: torch.nn.Module,
                    **extra: Any) -> Path:
    """Write a checkpoint atomically; `extra` holds optimizer state, epoch, RNG states, best-so-far."""
    payload = {"format": FORMAT, "version": VERSION, "stage": stage, "config": config, "data": data,
               "environment": environment(), "state_dict": model.state_dict(), **extra}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, stage: str | None = None) -> dict[str, Any]:
    """Read and validate a checkpoint; a missing, corrupt or foreign file is an S3RecError."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("*.pt"))
        raise S3RecError(f"{path} is a directory; pass a checkpoint file"
                         + (f" (found {', '.join(c.name for c in candidates[:5])})" if candidates else ""))
    if not path.is_file():
        raise S3RecError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated zip, pickle garbage, ...
        raise S3RecError(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise S3RecError(f"{path}: not an s3rec checkpoint")
    if payload.get("version") != VERSION:
        raise S3RecError(f"{path}: checkpoint version {payload.get('version')} is not supported (expected {VERSION})")
    if stage is not None and payload.get("stage") != stage:
        raise S3RecError(f"{path}: expected a {stage} checkpoint, got a {payload.get('stage')} checkpoint")
    return payload


def vocabulary_sha1(ids) -> str | None:
    """SHA-1 of raw ids in internal-id order (entry 0, padding, left out); None without ids."""
    if ids is None:
        return None
    return hashlib.sha1("\x1f".join(map(str, ids[1:])).encode()).hexdigest()


def data_info_of(data) -> dict:
    """What a checkpoint records of its data set (the `data` entry that check_compatible reads).

    The fingerprints tell apart catalogues of equal size whose ids mean other items or attributes.
    """
    return {"name": data.name, "n_items": data.n_items, "n_attributes": data.n_attributes, "n_users": data.n_users,
            "items_sha1": vocabulary_sha1(data.item_ids), "attributes_sha1": vocabulary_sha1(data.attribute_names)}


def check_same_data_info(payload: dict, path: str | Path, data_info: dict) -> None:
    """A resumed checkpoint must have been made on this very data set (name and sizes)."""
    saved = payload.get("data", {})
    if any(saved.get(k, v) != v for k, v in data_info.items()):
        raise S3RecError(f"{path}: cannot resume: made on {saved}, the data now are {data_info}")


def check_compatible(payload: dict, path: str | Path, data) -> None:
    """The checkpoint must have been made on a data set with the same users, item and attribute vocabularies."""
    saved, now = payload["data"], data_info_of(data)
    made_on = saved.get("name")
    if saved.get("n_users") not in (None, now["n_users"]):  # equal catalogues, other data
        raise S3RecError(f"{path}: checkpoint was made on {saved.get('n_users')} users ({made_on!r}) "
                         f"but the data set has {now['n_users']}")
    if saved.get("n_items") != now["n_items"]:
        raise S3RecError(f"{path}: checkpoint has {saved.get('n_items')} items but the data set has {now['n_items']} "
                         f"(made on {made_on!r})")
    if saved.get("n_attributes") not in (None, now["n_attributes"]):
        raise S3RecError(f"{path}: checkpoint has {saved.get('n_attributes')} attributes but the data set has "
                         f"{now['n_attributes']}")
    for key, what in (("items_sha1", "item"), ("attributes_sha1", "attribute")):
        if None not in (saved.get(key), now[key]) and saved[key] != now[key]:
            raise S3RecError(f"{path}: checkpoint was made on other {what} ids than this data set's "
                             f"(as many, but other raw ids or another order; made on {made_on!r})")
