"""Build the next batch on a background thread while the current one trains (a one-deep pipeline).

Batches are made by tensor operations that release the GIL, so building batch k+1 overlaps with the
forward and backward of batch k. The batches and the order in which they draw from their generator
are exactly those of the plain loop: one worker builds them one after the other, in order, and
nothing else may draw from that generator while the loop runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import torch

K = TypeVar("K")
B = TypeVar("B")


def prefetched(make: Callable[[K], B], keys: Iterable[K]) -> Iterator[B]:
    """make(key) for every key, in order; the next one is built while the caller uses the current one."""
    keys = iter(keys)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3rec-batches") as pool:

        def submit_next() -> Future | None:
            key = next(keys, _DONE)
            return None if key is _DONE else pool.submit(make, key)

        pending = submit_next()
        while pending is not None:
            batch = pending.result()  # re-raises the builder's exception here, in the training loop
            pending = submit_next()
            yield batch


_DONE = object()


def check_prefetch(setting: str | bool, name: str = "prefetch") -> str | bool:
    """`setting` if it is "auto", True or False, else a ValueError naming the option."""
    if not (setting == "auto" or isinstance(setting, bool)):
        raise ValueError(f"{name} must be auto, true or false, got {setting!r}")
    return setting


def use_prefetch(setting: str | bool, device: torch.device) -> bool:
    """True / False, or "auto": on CUDA only.

    On this project's 2-core CPU machine the thread did not pay: with 2 torch threads it competed with
    them (a Beauty step took twice as long), and with 1 thread whole epochs were no faster
    (docs/speed.md). On a GPU the host builds batches while the device computes.
    """
    if check_prefetch(setting) != "auto":
        return setting
    return device.type == "cuda"
