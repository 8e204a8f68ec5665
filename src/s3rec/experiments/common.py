"""What the §5.3 experiments share: their setup, run-or-reuse of their runs, and their outputs.

Every experiment writes into its output folder one CSV (one row per run and protocol, the numbers
of the run's metrics.json or finetune_log.jsonl as they are), one PNG (matplotlib, Agg) and one
short Markdown summary, each written to a temporary file and renamed. Runs live beside them, one
folder each, and are reused when finished (s3rec.runs), so an interrupted experiment resumes.
"""

from __future__ import annotations

import copy
import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from s3rec.compare_format import mean_std
from s3rec.config import RunConfig
from s3rec.errors import S3RecError
from s3rec.evaluation.metrics import METRIC_NAMES
from s3rec.io import atomic_path, write_text
from s3rec.parallel import JobList, PlanComplete
from s3rec.runs import pretrain_or_reuse, pretrained_checkpoint, run_or_reuse
from s3rec.same_options import check_reusable
from s3rec.training.pretrain import stalled_in_log


@dataclass
class Setup:
    """What every experiment takes besides its own options.

    `config_for(model)` gives a model's run options (the CLI: defaults < the model's paper defaults <
    --config < --set < flags); seeds are fine-tuning seeds, the pre-trainings use the first.
    """

    config_for: Callable[[str], RunConfig]
    seeds: list[int]
    out: Path
    command: str = ""  # how the experiment was called, quoted in the summary
    progress: bool = False
    log: Callable[..., None] = print
    plan: JobList | None = None  # planning mode (s3rec.parallel): record missing work, run nothing

    @property
    def planning(self) -> bool:
        """Whether this call only lists the runs (--plan)."""
        return self.plan is not None

    @property
    def protocol(self) -> str:
        """The protocol plotted: full ranking when it was run, else sampled."""
        return "full" if "full" in self.config_for("s3rec").eval.protocols() else "sampled"


@dataclass
class Run:
    """One finished run of an experiment: which bar or line it belongs to, and its metrics.json."""

    label: str
    model: str
    seed: int
    run_dir: Path
    metrics: dict
    x: float | None = None  # its place on a line plot's x axis


@dataclass
class ExperimentResult:
    """The files an experiment wrote, the rows of its CSV and the figure of its PNG."""

    csv: Path
    png: Path
    md: Path
    rows: list[dict]
    figure: Figure
    runs: list[Run] = field(default_factory=list)


def pretraining(setup: Setup, cfg: RunConfig, name: str) -> str:
    """Path of the pre-trained checkpoint of `cfg` in <out>/<name> (made with the first seed, or reused)."""
    pre = copy.deepcopy(cfg)
    pre.seed, pre.init = setup.seeds[0], None
    out_dir = setup.out / name
    if setup.planning:
        setup.plan.pretraining(pre, out_dir)
        return str(pretrained_checkpoint(pre, out_dir))
    setup.log(f"pre-training {name}: {out_dir}")
    return str(pretrain_or_reuse(pre, out_dir, progress=setup.progress, log=setup.log))


def end_of_runs(setup: Setup) -> None:
    """Called by each experiment after its last run: in planning mode every job is now recorded."""
    if setup.planning:
        raise PlanComplete


def dead_objectives(setup: Setup, folders: dict[str, str]) -> list[tuple[str, str, float, float]]:
    """(key, objective, epoch-1 loss, last loss) for each pre-training folder (key -> name under
    setup.out) whose log shows an objective that never left its epoch-1 loss (stalled_in_log)."""
    return [(label, k, first, last) for label, name in folders.items()
            for k, (first, last) in stalled_in_log(setup.out / name).items()]


def dead_objective_line(where: str, objective: str, first: float, last: float) -> str:
    """The summary's warning for one dead objective (`where`: e.g. "S3-Rec's pre-training")."""
    return (f"Warning: in {where} the {objective.upper()} loss never left its epoch-1 value "
            f"({first:.4f} -> {last:.4f}): that objective did not learn")


def seed_runs(setup: Setup, cfg: RunConfig, label: str, name: str, x: float | None = None) -> list[Run]:
    """`cfg` with every seed in <out>/<name>-seed<k>, each run or reused."""
    runs = []
    for seed in setup.seeds:
        c = copy.deepcopy(cfg)
        c.seed = seed
        run_dir = setup.out / f"{name}-seed{seed}"
        if setup.planning:
            setup.plan.run(c, run_dir)
            continue
        check_reusable(c, run_dir)
        setup.log(f"{label} seed {seed}: {run_dir}")
        metrics = run_or_reuse(c, run_dir, progress=setup.progress, log=setup.log)
        runs.append(Run(label, c.model, seed, run_dir, metrics, x))
    return runs


def metric_rows(runs: list[Run], x_name: str | None = None) -> list[dict]:
    """One CSV row per run and protocol: label, model, seed, [x], protocol, the test metrics, run_dir."""
    rows = []
    for r in runs:
        for protocol, values in r.metrics["test"].items():
            row = {"label": r.label, "model": r.model, "seed": r.seed}
            if x_name is not None:
                row[x_name] = r.x
            rows.append({**row, "protocol": protocol, **{m: values[m] for m in METRIC_NAMES}, "run_dir": str(r.run_dir)})
    return rows


def by_label(runs: list[Run], protocol: str, metric: str) -> dict[str, tuple[float, float]]:
    """label -> (mean, std) over seeds of a test metric, in the order the labels first appear."""
    values: dict[str, list[float]] = {}
    for r in runs:
        values.setdefault(r.label, []).append(r.metrics["test"][protocol][metric])
    return {label: mean_std(v) for label, v in values.items()}


def epochs_text(n: int) -> str:
    """'1 pre-training epoch', '10 pre-training epochs'."""
    return f"{n} pre-training epoch{'' if n == 1 else 's'}"


def dataset_name(runs: list[Run]) -> str:
    """The data set's name as the runs' metrics.json record it."""
    return runs[0].metrics.get("dataset", "") if runs else ""


def y_label(metric: str, protocol: str, split: str = "test") -> str:
    """An axis label naming the metric, split and protocol."""
    return f"{metric} ({split}, {protocol} ranking)"


def new_figure(n_panels: int, width: float = 5.2, height: float = 3.8) -> tuple[Figure, list]:
    """A figure of `n_panels` side-by-side axes, not tied to any GUI (the Agg canvas)."""
    fig = Figure(figsize=(width * n_panels, height), layout="constrained")
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    return fig, list(axes)


def bars(ax, labels: list[str], stats: list[tuple[float, float]], ylabel: str, errors: bool,
         colors: list[str] | None = None) -> None:
    """One bar per label with its value written above it (and ± std error bars over seeds)."""
    means = [m for m, _ in stats]
    err = [s for _, s in stats] if errors else None
    drawn = ax.bar(range(len(labels)), means, yerr=err, capsize=4, color=colors or "C0")
    ax.bar_label(drawn, labels=[f"{m:.4f}" for m in means], padding=2, fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=20 if max(map(len, labels)) > 8 else 0)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, _top(stats, errors) * 1.15)
    ax.grid(axis="y", alpha=0.3)


def _top(stats: list[tuple[float, float]], errors: bool) -> float:
    """The highest bar, with its error bar when drawn (never 0, so that limits stay valid)."""
    return max([m + (s if errors else 0.0) for m, s in stats] + [1e-9])


def grouped_bars(ax, groups: list[str], series: dict[str, list[tuple[float, float]]], ylabel: str,
                 errors: bool) -> None:
    """Bars of every series side by side within each group (e.g. without / with pre-training per model)."""
    width = 0.8 / len(series)
    for k, (name, stats) in enumerate(series.items()):
        x = np.arange(len(groups)) + (k - (len(series) - 1) / 2) * width
        ax.bar(x, [m for m, _ in stats], width, yerr=[s for _, s in stats] if errors else None, capsize=3, label=name)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, max(_top(stats, errors) for stats in series.values()) * 1.3)  # room for the legend
    ax.legend(loc="upper center", ncols=len(series))
    ax.grid(axis="y", alpha=0.3)


def lines(ax, series: dict[str, tuple[list[float], list[tuple[float, float]]]], xlabel: str, ylabel: str,
          errors: bool, reference: tuple[str, float] | None = None, integer_x: bool = False) -> None:
    """One line with markers per series (x values, (mean, std) per x), error bars over seeds; optionally a
    dashed horizontal reference line (label, y)."""
    for name, (xs, stats) in series.items():
        ax.errorbar(xs, [m for m, _ in stats], yerr=[s for _, s in stats] if errors else None, marker="o",
                    capsize=3, label=name)
    if reference is not None:
        ax.axhline(reference[1], linestyle="--", color="0.4", label=reference[0])
    if integer_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3)


def write_csv(path: Path, rows: list[dict]) -> None:
    """Rows as CSV (floats in full precision) atomically; the columns are the first row's keys."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
            writer.writeheader()
            writer.writerows(rows)


def save_png(fig: Figure, path: Path) -> None:
    """Write `fig` to `path` as PNG, atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def write_outputs(setup: Setup, name: str, rows: list[dict], fig: Figure, summary: str,
                  runs: list[Run]) -> ExperimentResult:
    """<out>/<name>.csv, .png and .md; returns them with the rows and the figure."""
    end_of_runs(setup)  # planning writes nothing, even for an experiment that does not call end_of_runs itself
    paths = [setup.out / f"{name}.{ext}" for ext in ("csv", "png", "md")]
    write_csv(paths[0], rows)
    save_png(fig, paths[1])
    write_text(paths[2], summary)
    return ExperimentResult(*paths, rows, fig, runs)


def summary_head(title: str, setup: Setup, what: str) -> list[str]:
    """Title, the command, and what the numbers are (split, protocol, seeds)."""
    lines_ = [f"# {title}", ""]
    if setup.command:
        lines_ += ["    " + setup.command, ""]
    seeds = f"mean ± std over fine-tuning seeds {setup.seeds}" if len(setup.seeds) > 1 else f"one seed ({setup.seeds[0]})"
    return lines_ + [f"{what}; {seeds}; pre-trainings with seed {setup.seeds[0]}.", ""]


def check_models(names: list[str], allowed: tuple[str, ...], option: str) -> list[str]:
    """Lower-cased model names; a one-line S3RecError for an empty list or a name outside `allowed`."""
    names = [n.strip().lower() for n in names if n.strip()]
    bad = [n for n in names if n not in allowed]
    if not names or bad:
        raise S3RecError(f"{option} takes a comma-separated list of {', '.join(allowed)}; got {','.join(names) or 'nothing'}")
    return names
