"""Whether a run directory or pre-training folder was made with the options of this call.

A finished run is reused, and an interrupted one resumed, only under the options it was made with:
a folder never mixes two configurations (epochs and patience may grow on resume).
"""

from __future__ import annotations

from pathlib import Path

from s3rec.config import EvalConfig, RunConfig
from s3rec.errors import S3RecError
from s3rec.run_dir import CONFIG, read_config_json
from s3rec.training.checkpoint import load_checkpoint

# Options that change no number of a finished run or pre-training: where the data live, the batch size of
# evaluation, how many micro-batches a training batch is split into (gradients are summed), whether the
# next pre-training batch is built on a thread (the same batches), and the
# recipe's name (the options a recipe sets are compared one by one, so a run made with `--loss ce` is the
# same run as one made with a recipe that sets only that).
NEUTRAL = ("data.data_dir", "eval.batch_size", "recipe", "pretrain.micro_batches", "finetune.micro_batches",
           "pretrain.prefetch")


def check_reusable(cfg: RunConfig, run_dir: str | Path) -> None:
    """S3RecError if `run_dir` holds a run (finished or not) made with other options than `cfg`."""
    path = Path(run_dir) / CONFIG
    if path.is_file():
        saved = read_config_json(path, "delete the run directory to redo it")
        # pre-training options shape a run only when the run pre-trains itself (s3rec without --init)
        unused = () if cfg.pretrains else ("pretrain",)
        if (Path(run_dir) / "metrics.json").is_file() and _covers(saved.get("eval"), cfg.eval):
            unused += ("eval.protocol", "eval.selection")
        _check_same(saved, cfg.to_dict(), NEUTRAL + unused, path)


# What an interrupted run may change when it resumes: how long it trains (more epochs or patience, never
# fewer: a run stopped early and resumed with more patience is the longer run), how often pre-training
# saves a checkpoint, and the data file's path (the data themselves are compared by content:
# check_same_data, check_same_data_info).
RESUMABLE = ("finetune.epochs", "finetune.patience", "pretrain.save_every", "data.path")
RESUME_HINT = "; resume with its options, or start afresh without --resume"


def check_resumable(cfg: RunConfig, run_dir: str | Path) -> None:
    """S3RecError if `run_dir` holds a run made with other options than `cfg`, beyond those it may change on resume."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        return
    saved = read_config_json(path, "start afresh without --resume")
    ignore = NEUTRAL + RESUMABLE + (() if cfg.pretrains else ("pretrain",))
    if cfg.data.dataset is None and cfg.data.path is None:  # data in memory: check_same_data compares the data
        ignore += ("data.dataset", "data.item_table")
    if _same_selection(saved.get("eval"), cfg.eval):
        ignore += ("eval.protocol",)  # evaluating one more protocol at the end changes no epoch's choice
    _check_same(saved, cfg.to_dict(), ignore, path, "cannot resume: ", RESUME_HINT)
    old, new = _flatten(saved), _flatten(cfg.to_dict())
    for key in ("finetune.epochs", "finetune.patience"):  # epochs already run must stay part of the run
        if isinstance(old.get(key), int) and new[key] < old[key]:
            raise S3RecError(f"{path}: cannot resume: made with {key}={old[key]}, this call asks for {new[key]} "
                             f"(it may grow, not shrink){RESUME_HINT}")


def _same_selection(saved_eval, wanted: EvalConfig) -> bool:
    """Whether validation picked (picks) the best epoch by the same protocol under both eval configs."""
    try:
        return EvalConfig(**saved_eval).selection_protocol() == wanted.selection_protocol()
    except TypeError:  # not a mapping, or written by another s3rec version: compare option by option
        return False


def _covers(saved_eval, wanted: EvalConfig) -> bool:
    """Whether a finished run evaluated with `saved_eval` (config.json) holds the test figures `wanted` asks for.

    Evaluating one more protocol changes no number of the other, but the protocol validation picks the
    best epoch by must be the same.
    """
    if not isinstance(saved_eval, dict) or saved_eval.get("protocol") != "both" or wanted.protocol == "both":
        return False
    return _same_selection(saved_eval, wanted)


def check_pretrain_reusable(cfg: RunConfig, out_dir: str | Path) -> None:
    """S3RecError if `out_dir` holds a pre-training made with other options than `cfg` (more epochs may follow)."""
    last = Path(out_dir) / "last.pt"
    if last.is_file():
        check_pretrain_options(load_checkpoint(last, stage="pretrain")["config"], cfg, last)


def check_pretrain_options(saved: dict, cfg: RunConfig, where: Path, resume: bool = False) -> None:
    """S3RecError if the pre-training config `saved` (of checkpoint `where`) differs from `cfg`'s pre-training."""
    ignore = NEUTRAL + ("pretrain.epochs", "pretrain.save_every", "recipe", "finetune", "eval", "init")
    if resume:
        _check_same(saved, cfg.to_dict(), ignore + RESUMABLE, where, "cannot resume: ", RESUME_HINT)
    else:
        _check_same(saved, cfg.to_dict(), ignore, where)


def _check_same(saved: dict, wanted: dict, ignore: tuple[str, ...], where: Path, what: str = "",
                hint: str | None = None) -> None:
    old, new = _flatten(saved), _flatten(wanted)
    for key in sorted(old.keys() & new.keys()):  # keys only one side has come from another s3rec version
        if key == "init" and old[key] and new[key] and Path(old[key]).resolve() == Path(new[key]).resolve():
            continue  # the same checkpoint named relative and absolute
        if old[key] != new[key] and not any(key == i or key.startswith(i + ".") for i in ignore):
            hint = hint or f"; use another output folder or delete {where.parent}"
            raise S3RecError(f"{where}: {what}made with {key}={old[key]!r}, this call asks for {new[key]!r}{hint}")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
