"""Run-or-reuse: the building block of every multi-run command (reproduce, compare, experiments).

A finished run directory (one with metrics.json) is read back instead of re-run; an unfinished one
is resumed from its last checkpoint. So any study built on these two functions can be interrupted
and called again at no loss.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from s3rec.config import EvalConfig, RunConfig
from s3rec.data.loading import load_data
from s3rec.data.splits import LeaveOneOut
from s3rec.errors import S3RecError
from s3rec.io import write_json
from s3rec.pipeline import run
from s3rec.training.pretrain import pretrain
from s3rec.training.checkpoint import environment, load_checkpoint
from s3rec.transfer import build_pretraining_encoder


def run_or_reuse(cfg: RunConfig, run_dir: str | Path, progress: bool = False, log=print) -> dict:
    """metrics.json of `run_dir` if it is finished, else run (resuming) `cfg` there and return its metrics.

    A directory made with other options than `cfg` is an error, never silently reused (check_reusable).
    A finished run evaluated under both protocols serves a request for one of them: the metrics returned
    hold the requested protocols only.
    """
    run_dir = Path(run_dir)
    check_reusable(cfg, run_dir)
    done = run_dir / "metrics.json"
    if done.exists():
        try:
            metrics = json.loads(done.read_text())
        except json.JSONDecodeError as e:
            raise S3RecError(f"{done}: unreadable metrics ({e}); delete the run directory to redo it") from None
        wanted = cfg.eval.protocols()
        for split in ("test", "valid"):
            if isinstance(metrics.get(split), dict):
                metrics[split] = {p: v for p, v in metrics[split].items() if p in wanted}
        return metrics
    return run(copy.deepcopy(cfg), out=run_dir, resume=True, progress=progress, log=log, echo=log)


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
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / "config.json", {**cfg.to_dict(), "environment": environment()})  # beside the checkpoints
        pretrain(split, cfg.pretrain, cfg.encoder, out_dir, cfg.seed, resume=True, progress=progress,
                 run_config=cfg.to_dict(), log=log,
                 make_encoder=None if own else lambda: build_pretraining_encoder(cfg, split))
    return done


# Options that change no number of a finished run or pre-training: where the data live, the batch size of
# evaluation, how many micro-batches a training batch is split into (gradients are summed), whether the
# next pre-training batch is built on a thread (the same batches), and the
# recipe's name (the options a recipe sets are compared one by one, so a run made with `--loss ce` is the
# same run as one made with a recipe that sets only that).
NEUTRAL = ("data.data_dir", "eval.batch_size", "recipe", "pretrain.micro_batches", "finetune.micro_batches",
           "pretrain.prefetch")


def check_reusable(cfg: RunConfig, run_dir: str | Path) -> None:
    """S3RecError if `run_dir` holds a run (finished or not) made with other options than `cfg`."""
    path = Path(run_dir) / "config.json"
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise S3RecError(f"{path}: unreadable config ({e}); delete the run directory to redo it") from None
        # pre-training options shape a run only when the run pre-trains itself (s3rec without --init)
        unused = () if (cfg.model == "s3rec" and cfg.init is None) else ("pretrain",)
        if (Path(run_dir) / "metrics.json").is_file() and _covers(saved.get("eval"), cfg.eval):
            unused += ("eval.protocol", "eval.selection")
        _check_same(saved, cfg.to_dict(), NEUTRAL + unused, path)


def _covers(saved_eval, wanted: EvalConfig) -> bool:
    """Whether a finished run evaluated with `saved_eval` (config.json) holds the test figures `wanted` asks for.

    Evaluating one more protocol changes no number of the other, but the protocol validation picks the
    best epoch by must be the same.
    """
    if not isinstance(saved_eval, dict) or saved_eval.get("protocol") != "both" or wanted.protocol == "both":
        return False
    try:
        saved = EvalConfig(**saved_eval)
    except TypeError:  # written by another s3rec version: compare option by option instead
        return False
    return saved.selection_protocol() == wanted.selection_protocol()


def check_pretrain_reusable(cfg: RunConfig, out_dir: str | Path) -> None:
    """S3RecError if `out_dir` holds a pre-training made with other options than `cfg` (more epochs may follow)."""
    last = Path(out_dir) / "last.pt"
    if last.is_file():
        saved = load_checkpoint(last, stage="pretrain")["config"]
        _check_same(saved, cfg.to_dict(), NEUTRAL + ("pretrain.epochs", "pretrain.save_every", "recipe", "finetune", "eval", "init"), last)


def _check_same(saved: dict, wanted: dict, ignore: tuple[str, ...], where: Path) -> None:
    old, new = _flatten(saved), _flatten(wanted)
    for key in sorted(old.keys() & new.keys()):  # keys only one side has come from another s3rec version
        if key == "init" and old[key] and new[key] and Path(old[key]).resolve() == Path(new[key]).resolve():
            continue  # the same checkpoint named relative and absolute
        if old[key] != new[key] and not any(key == i or key.startswith(i + ".") for i in ignore):
            raise S3RecError(f"{where}: made with {key}={old[key]!r}, this call asks for {new[key]!r}; "
                             f"use another output folder or delete {where.parent}")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def run_seconds(metrics: dict) -> float:
    """Wall-clock of a finished run: the sum of its stages in metrics.json (training accumulated over resumes).

    Older runs wrote a `total` that counted only the last process of a resumed run; the stages do not.
    """
    seconds = metrics.get("seconds", {})
    stages = [v for k, v in seconds.items() if k != "total"]
    return float(sum(stages)) if stages else float(seconds.get("total", 0.0))
