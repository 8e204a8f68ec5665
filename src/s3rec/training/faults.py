"""A test hook that kills a training run mid-epoch, deterministically (tests/test_faults.py).

With S3REC_TEST_KILL_AFTER_BATCHES=STAGE:N (STAGE is pretrain or finetune) the STAGE loop sends SIGKILL to
its own process right after its N-th optimiser step in this process: no handler runs and no file is
closed, as with the OOM killer or a power cut. A `--resume` must then continue from the last checkpoint.
Unset (always, outside these tests) the hook is a no-op.
"""

from __future__ import annotations

import os
import signal
from typing import Callable

from s3rec.errors import S3RecError

ENV = "S3REC_TEST_KILL_AFTER_BATCHES"


def kill_switch(stage: str) -> Callable[[], None]:
    """A function to call after each optimiser step of `stage`; it kills the process at the N-th call."""
    value = os.environ.get(ENV, "")
    name, _, count = value.partition(":")
    if name != stage:
        return lambda: None
    if not count.isdigit() or int(count) < 1:
        raise S3RecError(f"{ENV} must be STAGE:N with N >= 1, got {value!r}")
    steps = [int(count)]

    def after_step() -> None:
        steps[0] -= 1
        if steps[0] == 0:
            os.kill(os.getpid(), signal.SIGKILL)

    return after_step
