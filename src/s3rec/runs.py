"""Run-or-reuse: the building block of every multi-run command (reproduce, compare, experiments).

A finished run directory (one with metrics.json) is read back instead of re-run; an unfinished one
is resumed from its last checkpoint. So any study built on these two functions can be interrupted
and called again at no loss.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from s3rec.config import RunConfig
from s3rec.data.loading import load_data
from s3rec.data.splits import LeaveOneOut
from s3rec.errors import S3RecError
from s3rec.pipeline import run
from s3rec.training.pretrain import pretrain


def run_or_reuse(cfg: RunConfig, run_dir: str | Path, progress: bool = False, log=print) -> dict:
    """metrics.json of `run_dir` if it is finished, else run (resuming) `cfg` there and return its metrics."""
    run_dir = Path(run_dir)
    done = run_dir / "metrics.json"
    if done.exists():
        try:
            return json.loads(done.read_text())
        except json.JSONDecodeError as e:
            raise S3RecError(f"{done}: unreadable metrics ({e}); delete the run directory to redo it") from None
    return run(copy.deepcopy(cfg), out=run_dir, resume=True, progress=progress, log=log, echo=log)


def pretrain_or_reuse(cfg: RunConfig, out_dir: str | Path, progress: bool = False, log=print) -> Path:
    """The checkpoint after cfg.pretrain.epochs epochs in `out_dir`, pre-training (resuming) only if it is missing."""
    out_dir = Path(out_dir)
    done = out_dir / f"pretrain-epoch{cfg.pretrain.epochs}.pt"
    if not done.exists():
        split = LeaveOneOut.from_data(load_data(cfg.data, progress=progress))
        pretrain(split, cfg.pretrain, cfg.encoder, out_dir, cfg.seed, resume=True, progress=progress,
                 run_config=cfg.to_dict(), log=log)
    return done
