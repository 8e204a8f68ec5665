"""The run pipeline behind `s3rec run`: data -> split -> (pre-train) -> train -> evaluate -> run directory.

A run directory holds config.json (resolved config, protocol, versions), metrics.json (the fixed
shape below), summary.json, per_user.npz (per-user metric values for significance tests), the
model checkpoint model.pt, id maps, histories.npz (every user's sequence, internal ids), and the
training logs.

metrics.json: {"dataset", "model", "test": {"full": {metric: value}, "sampled": {...}},
               "valid": {same}, "seconds": {...}} — a protocol that was not run is absent.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from s3rec.config import EvalConfig, RunConfig, check_eval_flags
from s3rec.data.dataset import SequenceData
from s3rec.data.loading import load_data
from s3rec.data.splits import LeaveOneOut, keep_train_fraction
from s3rec.data.tables import save_id_maps
from s3rec.device import model_device, resolve_device
from s3rec.errors import ConfigError, S3RecError, one_line
from s3rec.evaluation.metrics import METRIC_NAMES
from s3rec.evaluation.negatives import sample_eval_negatives
from s3rec.evaluation.ranking import EvalResult, full_ranking, sampled_ranking
from s3rec.io import atomic_path, folder_lock, write_json
from s3rec.models.base import SequentialRecommender
from s3rec.models.factory import build_model
from s3rec.models.s3rec import ObjectiveConfig
from s3rec.recipes import check_applied
from s3rec.run_dir import CONFIG, HISTORIES, ID_MAPS, MODEL, check_same_data, read_run_config, save_histories
from s3rec.same_options import check_pretrain_options, check_resumable
from s3rec.training import distributed
from s3rec.training.checkpoint import (check_same_data_info, data_info_of, environment, load_checkpoint,
                                      save_checkpoint)
from s3rec.training.finetune import finetune
from s3rec.training.pretrain import pretrain, pretrain_seconds
from s3rec.transfer import load_transferred


def describe_protocol(ev: EvalConfig, split: LeaveOneOut, max_len: int) -> str:
    """The evaluation protocol in words, printed at the start of a run and saved with it."""
    data = split.data
    lines = [
        f"protocol: leave-one-out on {data.name} ({data.n_users:,} users, {data.n_items:,} items); "
        "test = last item (history items[:-1]), validation = second last (history items[:-2]), training = items[:-2]",
        f"  model input: last {max_len} history items, left-padded",
    ]
    k_core = data.extra.get("k_core")  # what reading the table kept
    repeats = k_core.get("duplicate_rows", 0) if k_core else 0
    if repeats:
        lines.insert(1, f"  {repeats:,} {'row repeats' if repeats == 1 else 'rows repeat'} an earlier row's user, "
                        "item and time exactly (kept as interactions; drop them first if they are logging duplicates)")
    if k_core and k_core["interactions"][0] < k_core["interactions"][1]:  # say what the filter removed
        lines.insert(1, f"  {k_core['min_count']}-core filter: kept " + ", ".join(
            f"{k_core[what][0]:,} of {k_core[what][1]:,} {what}" for what in ("users", "items", "interactions")))
    if "full" in ev.protocols():
        if ev.exclude_history:
            repeats = f"{split.repeated_targets('test'):,} test and {split.repeated_targets('valid'):,} validation targets do"
            excl = ("history items excluded (score -inf, also when the target repeats one: it can then not be hit; "
                    f"{repeats})")
        else:
            excl = "history items kept as candidates"
        lines.append(f"  full ranking: all {data.n_items:,} items; {excl}; ties count against the target")
    if "sampled" in ev.protocols():
        lines.append(f"  sampled ranking: target + {ev.n_negatives} negatives ({negative_source(ev, data)}); "
                     "ties count against the target")
    lines.append("  metrics: HR@1/5/10/20, NDCG@5/10/20, MRR (mean over users)")
    return "\n".join(lines)


def negative_source(ev: EvalConfig, data: SequenceData) -> str:
    """Which negatives the sampled protocol uses."""
    how = ev.negatives
    if how == "auto":
        how = "file" if data.fixed_negatives is not None else "uniform"
    if how == "file":
        if data.fixed_negatives is None:
            raise S3RecError(f"--negatives file: {data.name} has no fixed negatives file (Name_sample.txt)")
        return "file"
    return f"{how}, never interacted, seed {ev.negative_seed}"


def eval_negatives(split: LeaveOneOut, ev: EvalConfig) -> torch.Tensor | None:
    """(U, K) negatives for the sampled protocol, or None when neither test nor validation uses it."""
    if "sampled" not in ev.protocols() and ev.selection_protocol() != "sampled":
        return None
    source = negative_source(ev, split.data)
    if source == "file":
        return torch.from_numpy(split.data.fixed_negatives[:, : ev.n_negatives])
    try:
        return sample_eval_negatives(split, ev.n_negatives, ev.negatives if ev.negatives != "auto" else "uniform",
                                     ev.negative_seed)
    except S3RecError:
        if "sampled" in ev.protocols():
            raise
        raise S3RecError(f"validation with eval.selection=sampled (AutoInt's default) cannot draw {ev.n_negatives} "
                         f"distinct unseen negatives per user from {split.n_items} items; use fewer "
                         "(--set eval.n_negatives=K) or pick epochs on full ranking (--set eval.selection=full)") from None


def evaluate(model: SequentialRecommender, split: LeaveOneOut, which: str, ev: EvalConfig, max_len: int,
             negatives: torch.Tensor | None, progress: bool = False) -> dict[str, EvalResult]:
    """Evaluate `model` on the `which` split under every protocol of `ev`."""
    model.eval()
    device = model_device(model)
    out = {}
    if "full" in ev.protocols():
        out["full"] = full_ranking(model.score_all, split, which, max_len, ev.batch_size,
                                   ev.exclude_history, progress, device)
    if "sampled" in ev.protocols():
        out["sampled"] = sampled_ranking(model.score, split, which, max_len, negatives,
                                         ev.batch_size, progress, device)
    return out


def checked_device(cfg: RunConfig, device: str | torch.device) -> torch.device:
    """The device to run on, once the options are valid (a bad option or device fails before anything loads)."""
    try:
        cfg.validate()
        check_applied(cfg)
    except ValueError as e:
        raise ConfigError(f"bad option: {e}") from None
    return distributed.setup(resolve_device(device))  # auto: CUDA when present; under torchrun cuda:LOCAL_RANK


def data_and_split(cfg: RunConfig, data: SequenceData | None, progress: bool, log,
                   pretrains: bool) -> tuple[SequenceData, LeaveOneOut]:
    """The data (loaded, or given) and their leave-one-out split; bad data fail here, before anything is written."""
    data = load_data(cfg.data, progress=progress) if data is None else keep_train_fraction(data, cfg.data.train_fraction)
    split = LeaveOneOut.from_data(data)
    warn_unused_item_ids(data, log)
    if pretrains:
        warn_without_attributes(cfg.pretrain.objectives, data, log)
    return data, split


def without_data_source(cfg: RunConfig) -> RunConfig:
    """A copy of `cfg` for data given in memory: no file or registry set was read, so config.json names none."""
    cfg = copy.deepcopy(cfg)
    cfg.data.dataset = cfg.data.path = cfg.data.data_dir = cfg.data.item_table = None
    return cfg


def recorded_config(cfg: RunConfig, device: torch.device) -> dict:
    """What config.json holds: the options and the environment they ran in."""
    return {**cfg.to_dict(), "environment": {**environment(), "device": str(device), **distributed.describe()}}


def default_run_dir(cfg: RunConfig, data_name: str) -> Path:
    """runs/<data>-<model>-seed<seed>, the run directory without --out."""
    return Path("runs") / f"{data_name}-{cfg.model}-seed{cfg.seed}"


def run(cfg: RunConfig, out: str | Path | None = None, resume: bool = False, progress: bool = True, log=print,
        echo=print, data: SequenceData | None = None, on_epoch: Callable[[dict], None] | None = None,
        device: str | torch.device = "auto") -> dict:
    """Run a model end to end and write its run directory; returns the metrics.json content.

    `log` receives per-epoch lines; `echo` the protocol at the start and the metrics table at the end.
    `data` (e.g. from `s3rec.data.tables.from_dataframes`) replaces loading `cfg.data` (then only
    `cfg.data.train_fraction` applies, and `evaluate_run` cannot reload the data). `on_epoch` receives
    each epoch's log record with its "stage" (pretrain or finetune), e.g. for TensorBoard.
    """
    t_start = time.perf_counter()
    cfg = without_data_source(cfg) if data is not None else cfg
    device = checked_device(cfg, device)
    if cfg.model != "pop" and cfg.finetune.epochs < 1:  # else the model as initialised is reported as trained
        raise S3RecError(f"bad option: finetune.epochs (--epochs) must be >= 1 for {cfg.model}, got {cfg.finetune.epochs}")
    # under torchrun rank 0 alone prints, logs and writes the run directory (s3rec.training.distributed)
    progress, log, echo, on_epoch = distributed.main_only(progress, log, echo, on_epoch)
    main = distributed.is_main()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    data, split = data_and_split(cfg, data, progress, log, cfg.pretrains)
    negatives = eval_negatives(split, cfg.eval)
    model = build_model(cfg.model, split, cfg.encoder, cfg.finetune.loss, cfg.finetune.n_negatives,
                        cfg.finetune.label_smoothing).to(device)
    made_by = {}
    if cfg.init is not None:  # a bad checkpoint fails before anything is written
        made_by = load_transferred(model, cfg.init, data)["config"]
    out = Path(out) if out is not None else default_run_dir(cfg, data.name)
    max_len = cfg.encoder.max_len
    protocol = describe_protocol(cfg.eval, split, max_len)
    config = {**recorded_config(cfg, device), "protocol": protocol}
    if "pretrain" in made_by:  # the pre-training --init was made with, not this call's unused defaults
        config["pretrain"] = made_by["pretrain"]
    with folder_lock(out, hold=main):  # one run per folder; released however the run ends
        if main:
            start_run_dir(out, cfg, data, config, resume, log)
        echo(protocol)  # once the folder is this run's: a busy or mismatched folder is a one-line error alone
        seconds = {"load": time.perf_counter() - t_start}
        if cfg.model == "s3rec":
            init = cfg.init
            if init is None:
                t0 = time.perf_counter()
                init = pretrain(split, cfg.pretrain, cfg.encoder, out / "pretrain", cfg.seed, resume=resume,
                                progress=progress, run_config=config, log=log, on_epoch=on_epoch, device=device)
                # every epoch's time, also those of a process that was interrupted and resumed
                seconds["pretrain"] = pretrain_seconds(out / "pretrain", cfg.pretrain.epochs) or time.perf_counter() - t0
                load_transferred(model, init, data)
            log(f"fine-tuning from {init}")
        data_info = data_info_of(data)
        summary = {}
        if model.trainable:
            summary, stage_seconds = early_stopped_training(model, cfg, split, negatives, out,
                                                            {"config": config, "data": data_info}, resume, progress,
                                                            log, on_epoch)
            seconds.update(stage_seconds)
        if not main:  # the other ranks wait while rank 0 evaluates and writes, and return its metrics
            return distributed.broadcast(None)
        save_checkpoint(out / "model.pt", stage="model", config=config, data=data_info, model=model, model_name=cfg.model)
        t0 = time.perf_counter()
        results = {which: evaluate(model, split, which, cfg.eval, max_len, negatives, progress)
                   for which in ("valid", "test")}
        seconds["evaluate"] = time.perf_counter() - t0
        seconds["total"] = sum(seconds.values())  # the stages; training accumulated over resumes
        metrics = write_results(out, data.name, cfg.model, results, seconds)
        write_json(out / "summary.json", {**summary, "run_dir": str(out)})
        echo(format_metrics(metrics))
        echo(f"run directory: {out}")
        return distributed.broadcast(metrics)


def start_run_dir(out: Path, cfg: RunConfig, data: SequenceData, config: dict, resume: bool,
                  log: Callable[[str], None]) -> None:
    """Write what a run needs in `out` first (config, id maps, histories), once its folder is locked.

    Resuming checks the folder's options and data against this run's; a fresh run deletes an earlier
    run's results, so that no model or metrics outlive their config.
    """
    if resume and not any((out / f).is_file() for f in ("finetune_last.pt", "pretrain/last.pt", "metrics.json")):
        log(f"warning: nothing to resume in {out}: starting afresh")
    if resume:  # before the folder's config is rewritten
        check_resumable(cfg, out)
        check_same_data(data, out, "resume")
    else:
        clear_results(out)
    write_json(out / CONFIG, config)
    save_id_maps(data, out / ID_MAPS)
    save_histories(data, out / HISTORIES)


def early_stopped_training(model: SequentialRecommender, cfg: RunConfig, split: LeaveOneOut,
                           negatives: torch.Tensor | None, out: Path, checkpoint_meta: dict, resume: bool,
                           progress: bool, log: Callable[[str], None],
                           on_epoch: Callable[[dict], None] | None) -> tuple[dict, dict[str, float]]:
    """Train `model` with early stopping on validation; (summary.json's fields, the stages' seconds)."""
    selection = cfg.eval.selection_protocol()
    selection_eval = dataclasses.replace(cfg.eval, protocol=selection)

    def validate(m: SequentialRecommender) -> dict[str, float]:
        return evaluate(m, split, "valid", selection_eval, cfg.encoder.max_len, negatives)[selection].metrics

    result = finetune(model, split, cfg.finetune, cfg.encoder.max_len, cfg.seed, validate, out, resume=resume,
                      progress=progress, checkpoint_meta=checkpoint_meta, log=log, on_epoch=on_epoch)
    summary = dict(best_epoch=result.best_epoch, best_valid=result.best_metric,
                   selection=f"{selection} {cfg.finetune.metric}",
                   epochs_run=max((r["epoch"] for r in result.history), default=0))
    if cfg.finetune.valid_every:
        summary["best_step"] = result.best_step
    if cfg.finetune.ema_epochs:
        summary["best_weights"] = result.best_weights  # what model.pt holds: the trained weights or their average
    return summary, {"train": result.seconds_train, "valid_during_training": result.seconds_valid}


RESULT_FILES = ("metrics.json", "summary.json", "model.pt", "per_user.npz", "finetune_last.pt", "finetune_log.jsonl")


def clear_results(out: Path) -> None:
    """Delete an earlier run's results (and its resume state) from run directory `out`."""
    for name in RESULT_FILES:
        (out / name).unlink(missing_ok=True)
    for path in out.glob("evaluation-*"):
        path.unlink(missing_ok=True)


def warn_unused_item_ids(data: SequenceData, log) -> None:
    """Item ids that occur in no sequence (gaps in a Name.txt's ids) are still items: say so."""
    n_used = int(np.unique(data.items).size)
    if n_used < data.n_items:
        log(f"warning: {data.name}: {data.n_items - n_used:,} of the item ids 1..{data.n_items:,} occur in no "
            "sequence, yet are items of the model (ranked, counted in full ranking, recommendable); a "
            "CSV/TSV/Parquet table remaps ids to contiguous ones")


def warn_without_attributes(objectives: ObjectiveConfig, data: SequenceData, log) -> None:
    """A pre-training on data without item attributes (or items without any): AAP and MAP learn nothing of them, say so."""
    if objectives.aap == 0 and objectives.map == 0:
        return
    if data.n_attributes == 0:
        log(f"warning: {data.name} has no item attributes, so the AAP and MAP objectives learn nothing "
            "(an interaction table takes them from --item-table FILE --attribute-cols COLS)")
        return
    bare = int((np.diff(data.attr_offsets) == 0).sum())
    if bare:
        log(f"warning: {data.name}: {bare:,} of {data.n_items:,} items have no attributes (absent from the item "
            "table, or empty cells), so AAP and MAP learn nothing about them")


def pretrain_run(cfg: RunConfig, out: str | Path | None = None, resume: bool = False, progress: bool = True,
                 log=print, data: SequenceData | None = None, on_epoch: Callable[[dict], None] | None = None,
                 device: str | torch.device = "auto") -> Path:
    """S3-Rec pre-training alone into `out` (config.json + checkpoints); returns the final checkpoint.

    Fine-tune from it with `run(cfg)` where `cfg.init` is the returned path (what `s3rec finetune` does).
    """
    cfg = without_data_source(cfg) if data is not None else cfg
    device = checked_device(cfg, device)
    progress, log, _, on_epoch = distributed.main_only(progress, log, log, on_epoch)
    data, split = data_and_split(cfg, data, progress, log, pretrains=True)
    out = Path(out) if out is not None else default_run_dir(cfg, data.name) / "pretrain"
    config = recorded_config(cfg, device)
    main = distributed.is_main()  # under torchrun rank 0 alone writes files
    with folder_lock(out, hold=main):  # before config.json is written: the folder may be another run's
        if main:
            if resume and not (out / "last.pt").is_file():
                log(f"warning: nothing to resume in {out}: starting afresh")
            if resume and (out / "last.pt").is_file():  # before the folder's config is rewritten
                last = load_checkpoint(out / "last.pt", stage="pretrain")
                check_pretrain_options(last["config"], cfg, out / "last.pt", resume=True)
                check_same_data_info(last, out / "last.pt", data_info_of(data))
            write_json(out / "config.json", config)
        return pretrain(split, cfg.pretrain, cfg.encoder, out, cfg.seed, resume=resume, progress=progress,
                        run_config=config, log=log, on_epoch=on_epoch, device=device)


def write_results(out: Path, dataset: str, model: str, results: dict[str, dict[str, EvalResult]], seconds: dict) -> dict:
    """metrics.json and per_user.npz."""
    metrics = metrics_dict(dataset, model, results, seconds)
    save_per_user(out / "per_user.npz", results)
    write_json(out / "metrics.json", metrics)
    return metrics


def save_per_user(path: Path, results: dict[str, dict[str, EvalResult]]) -> None:
    """Every user's metric values as `<split>/<protocol>/<metric>` arrays (for paired significance tests)."""
    arrays = {f"{which}/{p}/{name}": r.per_user[name].numpy() for which, res in results.items()
              for p, r in res.items() for name in METRIC_NAMES}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def metrics_dict(dataset: str, model: str, results: dict[str, dict[str, EvalResult]], seconds: dict) -> dict:
    """The metrics.json content."""
    return {"dataset": dataset, "model": model,
            "test": {p: r.metrics for p, r in results["test"].items()},
            "valid": {p: r.metrics for p, r in results["valid"].items()},
            "seconds": {k: round(v, 3) for k, v in seconds.items()}}


def format_metrics(metrics: dict) -> str:
    """A readable table of the test (and validation) metrics."""
    rows = [(split, p, vals) for split in ("test", "valid") for p, vals in metrics[split].items()]
    head = f"{'split':<6} {'protocol':<8} " + " ".join(f"{m:>8}" for m in METRIC_NAMES)
    lines = [f"{metrics['model']} on {metrics['dataset']}", head]
    lines += [f"{s:<6} {p:<8} " + " ".join(f"{v[m]:>8.4f}" for m in METRIC_NAMES) for s, p, v in rows]
    return "\n".join(lines)


def load_run(run_dir: str | Path, progress: bool = True, eval_overrides: dict | None = None,
             ) -> tuple[RunConfig, SequenceData, LeaveOneOut, SequentialRecommender]:
    """The config, data, split and trained model of a finished run directory (data reloaded from the config)."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / CONFIG
    cfg = read_run_config(run_dir)
    if eval_overrides:
        try:
            cfg.validate()
        except ValueError as e:
            raise S3RecError(f"{cfg_path}: {one_line(e)}") from None
        unknown = sorted(set(eval_overrides) - {f.name for f in dataclasses.fields(EvalConfig)})
        if unknown:
            raise ConfigError(f"unknown evaluation option(s) {', '.join(unknown)}; EvalConfig has "
                              f"{', '.join(f.name for f in dataclasses.fields(EvalConfig))}")
        cfg.eval = dataclasses.replace(cfg.eval, **eval_overrides)
        try:
            cfg.validate()
        except ValueError as e:
            raise ConfigError(f"bad evaluation option: {one_line(e)}") from None
    check_eval_flags(cfg.eval.protocol, eval_overrides or {})
    ck = load_checkpoint(run_dir / MODEL, stage="model")
    if cfg.data.dataset is None and cfg.data.path is None:
        raise S3RecError(f"{cfg_path}: this run was made on data given in memory (run(cfg, data=...)), which "
                         "cannot be reloaded to evaluate it; its recommendations still work (Recommender.load)")
    data = load_data(cfg.data, progress=progress)
    check_same_data(data, run_dir, "evaluate")
    split = LeaveOneOut.from_data(data)
    model = build_model(cfg.model, split, cfg.encoder, cfg.finetune.loss, cfg.finetune.n_negatives,
                        cfg.finetune.label_smoothing)
    try:
        model.load_state_dict(ck["state_dict"])
    except RuntimeError as e:  # the weights of another model or data set than config.json describes
        raise S3RecError(f"{run_dir / MODEL}: does not fit {cfg_path} ({str(e).splitlines()[0].rstrip(':.')})") from None
    return cfg, data, split, model


def evaluate_run(run_dir: str | Path, progress: bool = True, log=print, eval_overrides: dict | None = None) -> dict:
    """Re-evaluate a finished run from its saved model and config (no training).

    `eval_overrides` (e.g. {"protocol": "sampled"}) evaluate it under another protocol: the metrics, the
    per-user values and the evaluation config then go to `EvalConfig.file_stem()` .json / .npz in the run
    directory, e.g. evaluation-sampled.json (metrics.json, what the run itself measured, is never rewritten).
    """
    run_dir = Path(run_dir)
    cfg, data, split, model = load_run(run_dir, progress, eval_overrides)
    negatives = eval_negatives(split, cfg.eval)
    t0 = time.perf_counter()
    results = {which: evaluate(model, split, which, cfg.eval, cfg.encoder.max_len, negatives, progress) for which in ("valid", "test")}
    metrics = metrics_dict(data.name, cfg.model, results, {"evaluate": time.perf_counter() - t0})
    if eval_overrides:
        stem = run_dir / cfg.eval.file_stem()  # other negatives or kept history: another file, never overwritten
        save_per_user(stem.with_suffix(".npz"), results)
        write_json(stem.with_suffix(".json"), {**metrics, "eval": dataclasses.asdict(cfg.eval)})
        log(f"wrote {stem}.json and .npz")
    log(format_metrics(metrics))
    return metrics
