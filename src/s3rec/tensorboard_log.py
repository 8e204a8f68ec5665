"""Per-epoch TensorBoard scalars (`--tensorboard DIR` of run, pretrain and finetune).

The training loops know nothing of TensorBoard: they hand each epoch's log record to an `on_epoch`
callback, and this module writes its numbers as scalars at step = epoch, tagged `<stage>/<key>`:
`pretrain/loss`, `pretrain/aap`, `pretrain/mip`, ..., `finetune/loss`, `finetune/valid_NDCG@10`, ...
(`seconds*` go under `<stage>_time/`). torch.utils.tensorboard (which needs the `tensorboard` package,
extra `s3rec[tensorboard]`) is imported only when a writer is opened, so s3rec works without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from s3rec.errors import S3RecError


class TensorBoardLogger:
    """An `on_epoch` callback writing each record's numbers to event files in `log_dir`."""

    def __init__(self, log_dir: str | Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise S3RecError("--tensorboard needs the tensorboard package: pip install 's3rec[tensorboard]'") from None
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def __call__(self, record: dict) -> None:
        stage, step = record.get("stage", "train"), int(record["epoch"])
        for key, value in record.items():
            if key in ("stage", "epoch", "samples") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            group = f"{stage}_time" if key.startswith("seconds") else stage
            self.writer.add_scalar(f"{group}/{key}", value, step)
        self.writer.flush()  # a killed run keeps the epochs it finished

    def close(self) -> None:
        self.writer.close()


@contextmanager
def epoch_logger(log_dir: str | Path | None) -> Iterator[Callable[[dict], None] | None]:
    """A TensorBoardLogger for `log_dir`, closed on exit; None (no logging) when `log_dir` is None."""
    if log_dir is None:
        yield None
        return
    logger = TensorBoardLogger(log_dir)
    try:
        yield logger
    finally:
        logger.close()
