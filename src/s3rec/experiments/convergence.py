"""`s3rec experiment convergence`: validation NDCG@10 per fine-tuning epoch (paper §5.3, Fig. 6).

S3-Rec (one pre-training, fine-tuned with every seed) and the baselines (default SASRec) are run
or reused; each run's finetune_log.jsonl gives the validation metric after every epoch. A curve is
the mean over the seeds that ran that epoch (early stopping ends seeds at different epochs).
"""

from __future__ import annotations

import json

from s3rec.errors import S3RecError
from s3rec.compare_format import DISPLAY, mean_std
from s3rec.experiments.common import (ExperimentResult, Run, Setup, check_models, dataset_name, end_of_runs,
                                      lines, new_figure, pretraining, seed_runs, summary_head,
                                      write_outputs, y_label)
from s3rec.models.factory import MODEL_NAMES

BASELINES = ("sasrec",)


def convergence(setup: Setup, baselines: tuple[str, ...] | list[str] = BASELINES) -> ExperimentResult:
    """Run (or reuse) S3-Rec and the baselines; write convergence.csv/.png/.md from their fine-tuning logs."""
    baselines = check_models(list(baselines), tuple(m for m in MODEL_NAMES if m not in ("s3rec", "pop")), "--baselines")
    configs = {b: setup.config_for(b) for b in baselines}  # a bad option for any baseline fails before the first run
    cfg = setup.config_for("s3rec")
    for b, c in configs.items():  # the curves share one axis: every model must validate under one protocol
        if c.eval.selection_protocol() != cfg.eval.selection_protocol():
            raise S3RecError(f"{b} validates on {c.eval.selection_protocol()} ranking, S3-Rec on "
                             f"{cfg.eval.selection_protocol()}: their curves would not compare; "
                             f"pick one with --set eval.selection=full|sampled")
    cfg.init = pretraining(setup, cfg, "pretrain")
    runs = seed_runs(setup, cfg, "S3-Rec", "s3rec")
    for b, c in configs.items():
        runs += seed_runs(setup, c, DISPLAY.get(b, b), b)
    end_of_runs(setup)

    key = f"valid_{cfg.finetune.metric}"
    rows = [row for r in runs for row in log_rows(r, key)]
    per_epoch: dict[str, dict[int, list[float]]] = {}
    for row in rows:
        per_epoch.setdefault(row["label"], {}).setdefault(row["epoch"], []).append(row[key])
    curves = {label: (sorted(d), [mean_std(d[e]) for e in sorted(d)]) for label, d in per_epoch.items()}
    protocol = cfg.eval.selection_protocol()  # the validation the logs hold
    fig, (ax,) = new_figure(1, width=6.4)
    lines(ax, curves, "fine-tuning epoch", y_label(cfg.finetune.metric, protocol, "validation"), len(setup.seeds) > 1,
          integer_x=True)
    fig.suptitle(f"Convergence of fine-tuning, {dataset_name(runs)}")
    return write_outputs(setup, "convergence", rows, fig, summarise(setup, runs, curves, cfg.finetune.metric, protocol), runs)


def log_rows(run: Run, key: str) -> list[dict]:
    """One row per epoch of the run's finetune_log.jsonl: label, model, seed, epoch, the validation metric, loss."""
    path = run.run_dir / "finetune_log.jsonl"
    if not path.is_file():
        raise S3RecError(f"{path}: not found; {run.model} has no fine-tuning epochs to plot")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by_epoch = {rec["epoch"]: rec for rec in records}  # an epoch redone after an interruption: its last record
    return [{"label": run.label, "model": run.model, "seed": run.seed, "epoch": e, key: rec[key],
             "loss": rec["loss"], "run_dir": str(run.run_dir)} for e, rec in sorted(by_epoch.items())]


def summarise(setup: Setup, runs: list[Run], curves: dict, metric: str, protocol: str) -> str:
    """The Markdown summary of the experiment."""
    lines_ = summary_head(f"Convergence of fine-tuning on {dataset_name(runs)} (paper Fig. 6)", setup,
                          f"Validation {metric} after each fine-tuning epoch, {protocol} ranking "
                          f"(at most {setup.config_for('s3rec').finetune.epochs} epochs, early stopping)")
    lines_ += [f"| model | best mean validation {metric} | at epoch | first epoch within 95% of it | epochs run |",
               "|---|---|---|---|---|"]
    for label, (epochs, stats) in curves.items():
        means = [m for m, _ in stats]
        best = max(range(len(means)), key=means.__getitem__)
        near = next(e for e, m in zip(epochs, means) if m >= 0.95 * means[best])
        lines_.append(f"| {label} | {means[best]:.4f} | {epochs[best]} | {near} | {max(epochs)} |")
    lines_ += ["", "![convergence](convergence.png)"]
    return "\n".join(lines_) + "\n"
