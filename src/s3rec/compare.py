"""`s3rec compare`: the paper's Table 2 on one data set — every model over several seeds, mean ± std,
S3-Rec's improvement over the best baseline and a paired significance test over users.

A column is a model, or `model@recipe` for that model under another recipe than the call's (e.g.
`sasrec@best,s3rec@best` beside the paper-recipe columns). Each (column, seed) is a run directory
`<out>/<model>[-<recipe>]-seed<seed>` made or reused by s3rec.runs.run_or_reuse; each S3-Rec column's
seeds fine-tune one shared pre-training (`<out>/pretrain[-<recipe>]`, seed = the first seed) unless
its config names a checkpoint (`init`). The last S3-Rec column is "ours" (improvement and tests);
the baselines are the columns of other models. A run directory made with other
options than the ones asked for is an error, never silently reused. The table is written as
comparison.md, comparison.csv and comparison.tex (formats: s3rec.compare_format).

Significance, per protocol and metric: each user's value is averaged over the seeds, then S3-Rec and
the best baseline of that row (highest mean) are paired over users: paired t-test (the paper's `*`,
p < 0.01) and Wilcoxon signed-rank test, both reported.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path

from s3rec.compare_format import OURS, mean_std, model_of, to_csv, to_latex, to_markdown
from s3rec.config import RunConfig
from s3rec.errors import S3RecError
from s3rec.evaluation.metrics import METRIC_NAMES
from s3rec.evaluation.significance import paired_tests, per_user_mean
from s3rec.io import write_text
from s3rec.parallel import JobList, execute
from s3rec.runs import pretrain_or_reuse, pretrained_checkpoint, run_or_reuse, run_seconds
from s3rec.training.pretrain import pretrain_seconds
from s3rec.training.checkpoint import load_checkpoint

ALPHA = 0.01  # the paper's significance level
PAPER_ORDER = ("pop", "fm", "autoint", "gru4rec", "caser", "sasrec", "bert4rec", "hgn", "gru4recf", "sasrecf",
               "fdsa", "s3rec")  # the columns of the paper's Table 2


@dataclass
class MetricRow:
    """One row of the table: a metric under one protocol, mean and std over seeds per model."""

    protocol: str
    metric: str
    mean: dict[str, float]
    std: dict[str, float]
    best_baseline: str | None = None
    improvement: float | None = None  # (S3-Rec - best baseline) / best baseline
    p_ttest: float | None = None  # paired over users, S3-Rec vs best baseline
    p_wilcoxon: float | None = None

    @property
    def significant(self) -> bool:
        """Whether the paired t-test gives p < ALPHA."""
        return self.p_ttest is not None and self.p_ttest < ALPHA

    @property
    def sign(self) -> str:
        """'better' or 'worse' when S3-Rec differs significantly from the best baseline, else ''."""
        if not self.significant or not self.improvement:
            return ""
        return "better" if self.improvement > 0 else "worse"


@dataclass
class Comparison:
    """Everything the three output files show."""

    dataset: str
    models: list[str]
    seeds: list[int]
    rows: list[MetricRow]
    seconds: dict[str, tuple[float, float]]  # column -> mean, std over seeds of a run's wall-clock (runs.run_seconds)
    pretrain_seconds: dict[str, float] = field(default_factory=dict)  # S3-Rec column -> its shared pre-training's
    n_users: int | None = None  # users paired in the significance tests
    run_dirs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ours(self) -> str | None:
        """The S3-Rec column that the improvement and the tests are about: the last one."""
        return ours_column(self.models)

    def missing_seeds(self) -> dict[str, int]:
        """model -> how many of the seeds it lacks (a `--report` of an unfinished comparison), if any."""
        return {m: len(self.seeds) - len(self.run_dirs[m]) for m in self.models
                if m in self.run_dirs and len(self.run_dirs[m]) < len(self.seeds)}


def ours_column(columns) -> str | None:
    """The last S3-Rec column (plain `s3rec` or `s3rec@recipe`), if any."""
    return next((c for c in reversed(list(columns)) if model_of(c) == OURS), None)


def _folder(column: str) -> str:
    """`s3rec@best` -> `s3rec-best`: the column's part of its run and pre-training folder names."""
    return column.replace("@", "-")


def compare(configs: dict[str, RunConfig], seeds: list[int], out: str | Path, progress: bool = False,
            log=print, report_only: bool = False, jobs: int = 1) -> Comparison:
    """Run (or reuse) every column of `configs` (name -> config, seed ignored) with every seed; write the tables.

    A column is a model name or `model@recipe` (the config already holds that recipe's options).
    report_only: train nothing; the tables cover the finished runs only (a column without any is left out,
    and the Markdown and CSV say how many seeds each column has).
    jobs: do the missing pre-trainings and runs that many at a time in worker processes first (s3rec.parallel).
    """
    if not configs or not seeds:
        raise S3RecError("compare needs at least one model and one seed")
    if len(set(seeds)) != len(seeds):
        raise S3RecError(f"--seeds lists a seed twice: {seeds}")
    protocols = {c.eval.protocol for c in configs.values()}
    if len(protocols) > 1:
        raise S3RecError(f"all models must be evaluated under one protocol, got {sorted(protocols)}")
    out = Path(out)  # made by the first run that writes
    ours = [c for c in configs if model_of(c) == OURS]
    given = {c: configs[c].init for c in ours if configs[c].init is not None}
    if given and len(ours) > 1:
        raise S3RecError(f"--init names one pre-trained checkpoint but there are {len(ours)} S3-Rec columns "
                         f"({', '.join(ours)}); give each its own pre-training (no --init)")
    for column, path in given.items():
        if not report_only and any(not (out / f"{_folder(column)}-seed{s}" / "metrics.json").is_file() for s in seeds):
            load_checkpoint(path, stage="pretrain")  # a bad --init fails before any model runs
    if not report_only:
        todo = missing_jobs(configs, seeds, out)  # every folder's options checked before anything trains
        if jobs > 1:
            execute(todo, jobs, log)
    runs: dict[str, list[dict]] = {}
    dirs: dict[str, list[Path]] = {}
    pretrain_secs: dict[str, float] = {}
    for column, cfg in configs.items():
        cfg, pre, pretrain_dir = _column_config(column, cfg, seeds, out)
        if pre is not None:
            if not report_only:
                pretrain_or_reuse(pre, pretrain_dir, progress=progress, log=log)
            secs = pretrain_seconds(pretrain_dir, pre.pretrain.epochs)
            if secs is not None:
                pretrain_secs[column] = secs
        dirs[column], runs[column] = [], []
        for seed in seeds:
            cfg.seed = seed
            run_dir = out / f"{_folder(column)}-seed{seed}"
            if report_only and not (run_dir / "metrics.json").is_file():
                continue
            log(f"{column} seed {seed}: {run_dir}")
            runs[column].append(run_or_reuse(cfg, run_dir, progress=progress, log=log))
            dirs[column].append(run_dir)
        if not runs[column]:  # only a report can find nothing
            del runs[column], dirs[column]
    if not runs:
        raise S3RecError(f"{out}: no finished run of these models and seeds to report")
    table = summarize(runs, dirs, seeds, pretrain_secs)
    write_text(out / "comparison.md", to_markdown(table))
    write_text(out / "comparison.csv", to_csv(table))
    write_text(out / "comparison.tex", to_latex(table))
    return table


def _column_config(column: str, cfg: RunConfig, seeds: list[int], out: Path):
    """(the column's run config, its own pre-training's config and folder, or None, None)."""
    cfg = copy.deepcopy(cfg)
    cfg.model = model_of(column)
    if cfg.model != OURS:
        cfg.init = None  # a pre-trained checkpoint (--init) is S3-Rec's alone
        return cfg, None, None
    if cfg.init is not None:
        return cfg, None, None
    pre = copy.deepcopy(cfg)
    pre.seed = seeds[0]
    pretrain_dir = out / _folder(column).replace(OURS, "pretrain", 1)
    cfg.init = str(pretrained_checkpoint(pre, pretrain_dir))
    return cfg, pre, pretrain_dir


def missing_jobs(configs: dict[str, RunConfig], seeds: list[int], out: str | Path) -> JobList:
    """The pre-trainings and runs compare() would make, without the finished ones (options checked first)."""
    out, jobs = Path(out), JobList()
    for column, cfg in configs.items():
        cfg, pre, pretrain_dir = _column_config(column, cfg, seeds, out)
        if pre is not None:
            jobs.pretraining(pre, pretrain_dir)
        for seed in seeds:
            run_cfg = copy.deepcopy(cfg)
            run_cfg.seed = seed
            jobs.run(run_cfg, out / f"{_folder(column)}-seed{seed}")
    return jobs


def summarize(runs: dict[str, list[dict]], dirs: dict[str, list[Path]], seeds: list[int],
              pretrain_secs: dict[str, float] | None = None) -> Comparison:
    """The comparison table from each column's metrics.json contents and run directories (per_user.npz)."""
    models = list(runs)
    first = runs[models[0]][0]
    protocols = [p for p in ("full", "sampled") if all(p in r["test"] for rs in runs.values() for r in rs)]
    ours = ours_column(models)
    baselines = [m for m in models if model_of(m) != OURS]
    rows, n_users = [], None
    for protocol in protocols:
        for metric in METRIC_NAMES:
            stats = {m: mean_std([r["test"][protocol][metric] for r in runs[m]]) for m in models}
            row = MetricRow(protocol, metric, {m: mean for m, (mean, _) in stats.items()},
                            {m: std for m, (_, std) in stats.items()})
            if ours is not None and baselines:
                best = max(baselines, key=lambda m: row.mean[m])
                row.best_baseline = best
                if row.mean[best] > 0:
                    row.improvement = row.mean[ours] / row.mean[best] - 1.0
                key = f"test/{protocol}/{metric}"
                mine, theirs = per_user_mean(dirs[ours], key), per_user_mean(dirs[best], key)
                if len(mine) != len(theirs):
                    raise S3RecError(f"{dirs[ours][0]} and {dirs[best][0]} evaluated different users "
                                     f"({len(mine)} vs {len(theirs)}); were they run on the same data?")
                n_users = len(mine)
                row.p_ttest, row.p_wilcoxon = paired_tests(mine, theirs)
            rows.append(row)
    seconds = {}
    for m, rs in runs.items():
        seconds[m] = mean_std([run_seconds(r) if r.get("seconds") else math.nan for r in rs])
    return Comparison(first["dataset"], models, list(seeds), rows, seconds, dict(pretrain_secs or {}), n_users,
                      {m: [str(d) for d in ds] for m, ds in dirs.items()})
