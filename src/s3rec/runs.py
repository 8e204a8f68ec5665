"""Run-or-reuse: the building block of every multi-run command (reproduce, compare, experiments).

A finished run directory (one with metrics.json) is read back instead of re-run; an unfinished one
is resumed from its last checkpoint. So any study built on these two functions can be interrupted
and called again at no loss.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import os
from pathlib import Path

from s3rec.config import DataConfig, RunConfig
from s3rec.data.dataset import SequenceData
from s3rec.data.loading import load_data
from s3rec.data.splits import LeaveOneOut
from s3rec.errors import S3RecError
from s3rec.io import folder_lock, write_json
from s3rec.pipeline import run
from s3rec.run_dir import CONFIG, HISTORIES, ID_MAPS, check_same_data
from s3rec.same_options import check_pretrain_reusable, check_reusable
from s3rec.training.pretrain import pretrain
from s3rec.training.checkpoint import environment
from s3rec.transfer import build_pretraining_encoder


def run_or_reuse(cfg: RunConfig, run_dir: str | Path, progress: bool = False, log=print) -> dict:
    """metrics.json of `run_dir` if it is finished, else run (resuming) `cfg` there and return its metrics.

    A directory made with other options than `cfg`, or on other data (a data file changed in place), is an
    error, never silently reused (check_reusable, check_same_data). A finished run evaluated under both
    protocols serves a request for one of them: the metrics returned hold the requested protocols only.
    """
    run_dir = Path(run_dir)
    check_reusable(cfg, run_dir)
    done = run_dir / "metrics.json"
    if done.exists():
        if (run_dir / HISTORIES).is_file() or (run_dir / ID_MAPS).is_dir():  # else nothing to compare with
            check_same_data(_data_of(*_data_key(cfg.data)), run_dir, "reuse")
        try:
            metrics = json.loads(done.read_text())
        except json.JSONDecodeError as e:
            raise S3RecError(f"{done}: unreadable metrics ({e}); delete the run directory to redo it") from None
        wanted = cfg.eval.protocols()
        for split in ("test", "valid"):
            if isinstance(metrics.get(split), dict):
                metrics[split] = {p: v for p, v in metrics[split].items() if p in wanted}
        return metrics
    resume = (run_dir / CONFIG).is_file()  # an interrupted run (a fresh folder has nothing to resume)
    return run(copy.deepcopy(cfg), out=run_dir, resume=resume, progress=progress, log=log, echo=log)


def _data_key(cfg: DataConfig) -> tuple[str, tuple]:
    """The data options, and the size and time of the files they name (a file rewritten in place is other data)."""
    stats = {f: Path(f).stat() for f in (cfg.path, cfg.item_table) if f is not None and Path(f).is_file()}
    files = tuple((f, st.st_size, st.st_mtime_ns) for f, st in stats.items())
    return json.dumps(dataclasses.asdict(cfg), sort_keys=True, default=os.fspath), files  # a Path as its text


@functools.lru_cache(maxsize=1)  # the runs of one study share their data: loaded once, not once per run
def _data_of(options: str, files: tuple) -> SequenceData:
    return load_data(DataConfig(**json.loads(options)), progress=False)


def pretrained_checkpoint(cfg: RunConfig, out_dir: str | Path) -> Path:
    """The checkpoint cfg's pre-training ends with in `out_dir` (what pretrain_or_reuse returns)."""
    return Path(out_dir) / f"pretrain-epoch{cfg.pretrain.epochs}.pt"


def pretrain_or_reuse(cfg: RunConfig, out_dir: str | Path, progress: bool = False, log=print) -> Path:
    """The checkpoint after cfg.pretrain.epochs epochs in `out_dir`, pre-training (resuming) only if it is missing.

    cfg.model s3rec (or sasrec) pre-trains S3-Rec's encoder; another sequence model its own (s3rec.transfer).
    The resolved config goes to `out_dir`/config.json beside the checkpoints (each checkpoint holds it too).
    """
    out_dir = Path(out_dir)
    done = pretrained_checkpoint(cfg, out_dir)
    check_pretrain_reusable(cfg, out_dir)  # a pre-training made with other options is never reused
    if not done.exists():
        split = LeaveOneOut.from_data(load_data(cfg.data, progress=progress))
        own = cfg.model in ("s3rec", "sasrec")
        with folder_lock(out_dir):  # before config.json is written: the folder may be another job's
            write_json(out_dir / CONFIG, {**cfg.to_dict(), "environment": environment()})  # beside the checkpoints
            pretrain(split, cfg.pretrain, cfg.encoder, out_dir, cfg.seed, resume=True, progress=progress,
                     run_config=cfg.to_dict(), log=log,
                     make_encoder=None if own else lambda: build_pretraining_encoder(cfg, split))
    return done


def run_seconds(metrics: dict) -> float:
    """Wall-clock of a finished run: the sum of its stages in metrics.json (training accumulated over resumes).

    Older runs wrote a `total` that counted only the last process of a resumed run; the stages do not.
    """
    seconds = metrics.get("seconds", {})
    stages = [v for k, v in seconds.items() if k != "total"]
    return float(sum(stages)) if stages else float(seconds.get("total", 0.0))
