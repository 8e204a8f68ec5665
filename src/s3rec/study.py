"""`s3rec study`: does S3-Rec's pre-training still help once fine-tuning uses cross-entropy? (issue 5)

Four systems per data set, each over several seeds, full ranking, test at the best validation epoch:

    SASRec-BCE    sasrec, --recipe paper (BCE with one sampled negative per position)
    SASRec-CE     sasrec, --recipe best  (the best recipe's fine-tuning, no pre-training)
    S3-Rec-BCE    s3rec,  --recipe paper (the paper's pre-training and fine-tuning)
    S3-Rec-best   s3rec,  --recipe best  (the same fine-tuning as SASRec-CE, after pre-training)

SASRec-CE and S3-Rec-best differ only in pre-training, so their paired test over users (per-user
values averaged over seeds; paired t-test and Wilcoxon signed-rank) answers the question. Runs are
reused when finished (s3rec.runs), so an interrupted study resumes where it stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from s3rec.compare_format import cell, mean_std
from s3rec.config import RunConfig
from s3rec.errors import S3RecError
from s3rec.evaluation.significance import paired_tests, per_user_mean
from s3rec.io import atomic_path, write_json, write_text
from s3rec.parallel import JobList, execute
from s3rec.recipes import apply_recipe
from s3rec.runs import pretrain_or_reuse, pretrained_checkpoint, run_or_reuse, run_seconds
from s3rec.same_options import check_pretrain_reusable, check_reusable
from s3rec.training.pretrain import pretrain_seconds

SYSTEMS = {  # name -> (model, recipe)
    "SASRec-BCE": ("sasrec", "paper"),
    "SASRec-CE": ("sasrec", "best"),
    "S3-Rec-BCE": ("s3rec", "paper"),
    "S3-Rec-best": ("s3rec", "best"),
}
PAIRS = (("S3-Rec-best", "SASRec-CE"), ("S3-Rec-BCE", "SASRec-BCE"))  # with vs without pre-training
METRICS = ("HR@10", "NDCG@10", "HR@20", "NDCG@20", "MRR")
# Published full-ranking test figures on the same data files (HR@10, NDCG@10), printed under each table
# for orientation (issue 5): the paper's S3-Rec, SASRec with sampled softmax (eSASRec benchmark,
# RecSys'25) and the strongest public result (BSARec AAAI'24 / TV-Rec NeurIPS'25 / WEARec AAAI'26).
REFERENCES = {
    "beauty": (("paper's S3-Rec", 0.0647, 0.0327), ("SASRec, sampled softmax (eSASRec)", 0.0921, 0.0531),
               ("strongest public", 0.1041, 0.0614)),
    "sports": (("paper's S3-Rec", 0.0385, 0.0204), ("SASRec, sampled softmax (eSASRec)", 0.0569, 0.0314),
               ("strongest public", 0.0635, 0.0367)),
    "lastfm": (("paper's S3-Rec", 0.0743, 0.0427), ("strongest public", 0.0899, 0.0484)),
}


@dataclass
class SystemRuns:
    """The finished runs of one system on one data set."""

    dataset: str
    system: str
    run_dirs: list[Path]
    metrics: list[dict]

    def mean_std(self, metric: str) -> tuple[float, float]:
        """Mean and std over the seeds of a full-ranking test metric."""
        return mean_std([m["test"]["full"][metric] for m in self.metrics])

    def per_user(self, metric: str) -> np.ndarray:
        """Each user's test value averaged over seeds."""
        return per_user_mean(self.run_dirs, f"test/full/{metric}")

    def seconds(self) -> float:
        """Mean wall-clock of one run (its pre-training included once per run directory)."""
        return float(np.mean([run_seconds(m) + m.get("pretrain_seconds", 0.0) for m in self.metrics]))


def system_config(base: RunConfig, system: str, seed: int) -> RunConfig:
    """The run config of `system` with `seed`, on top of the shared options in `base`."""
    model, recipe = SYSTEMS[system]
    cfg = copy.deepcopy(base)
    cfg.model, cfg.seed = model, seed
    return apply_recipe(cfg, recipe).validate()


def run_study(base: RunConfig, datasets: list[str], seeds: list[int], out: str | Path, systems: list[str] | None = None,
              progress: bool = False, log=print, report_only: bool = False, jobs: int = 1) -> list[SystemRuns]:
    """Run (or reuse) every system x data set x seed; write study.md/.csv/.json and study.png into `out`.

    report_only: train nothing; the outputs cover the finished runs only (a system without any is left
    out, and each row says how many seeds it has), so a long study can be read while it runs.
    jobs: do the missing pre-trainings and runs that many at a time in worker processes first (s3rec.parallel).
    """
    out = Path(out)
    systems = systems or list(SYSTEMS)
    if not report_only:
        todo = missing_jobs(base, datasets, seeds, out, systems)  # every folder's options checked before anything trains
        if jobs > 1:
            execute(todo, jobs, log)
    found: dict[tuple[str, str], tuple[list[Path], list[dict]]] = {}
    for label, system, seed, cfg, pre, pre_dir, run_dir in study_runs(base, datasets, seeds, out, systems):
        pre_seconds = 0.0
        if pre is not None:
            if report_only:  # pretrain_or_reuse checks the folder's options itself
                check_pretrain_reusable(pre, pre_dir)
            else:
                pretrain_or_reuse(pre, pre_dir, progress=progress, log=log)
            pre_seconds = pretrain_seconds(pre_dir, pre.pretrain.epochs) or 0.0
        if report_only:
            if not (run_dir / "metrics.json").is_file():
                continue
            check_reusable(cfg, run_dir)  # a finished run made with other options is still an error
            m = json.loads((run_dir / "metrics.json").read_text())
        else:
            log(f"{label} {system} seed {seed}: {run_dir}")
            m = dict(run_or_reuse(cfg, run_dir, progress=progress, log=log))
        m["pretrain_seconds"] = pre_seconds
        dirs, metrics = found.setdefault((label, system), ([], []))
        dirs.append(run_dir)
        metrics.append(m)
    results = [SystemRuns(label, system, dirs, metrics) for (label, system), (dirs, metrics) in found.items()]
    if not results:  # only a report can find nothing
        raise S3RecError(f"{out}: no finished run of these systems, data sets and seeds to report")
    write_outputs(results, seeds, out)
    return results


def study_runs(base: RunConfig, datasets: list[str], seeds: list[int], out: Path, systems: list[str]):
    """(data set label, system, seed, run config, pre-training config and folder or None, None, run folder)
    of every run of the study, in order; S3-Rec's seeds share one pre-training per (data set, recipe)."""
    for dataset in datasets:
        label = Path(dataset).stem if Path(dataset).is_file() else dataset
        for system in systems:
            for seed in seeds:
                cfg = system_config(base, system, seed)
                if Path(dataset).is_file():  # your own file instead of a registry name
                    cfg.data.dataset, cfg.data.path = None, dataset
                else:
                    cfg.data.dataset, cfg.data.path = dataset, None
                pre = pre_dir = None
                if cfg.pretrains:
                    pre = copy.deepcopy(cfg)
                    pre.seed = seeds[0]
                    pre_dir = out / label / f"pretrain-{pretraining_name(base, pre)}"
                    cfg.init = str(pretrained_checkpoint(pre, pre_dir))
                yield label, system, seed, cfg, pre, pre_dir, out / label / f"{system}-seed{seed}"


def missing_jobs(base: RunConfig, datasets: list[str], seeds: list[int], out: Path, systems: list[str]) -> JobList:
    """The pre-trainings and runs run_study() would make, without the finished ones (options checked first)."""
    jobs = JobList()
    for _, _, _, cfg, pre, pre_dir, run_dir in study_runs(base, datasets, seeds, out, systems):
        if pre is not None:
            jobs.pretraining(pre, pre_dir)  # once, shared by the seeds and by systems that pre-train alike
        jobs.run(cfg, run_dir)
    return jobs


def pretraining_name(base: RunConfig, cfg: RunConfig) -> str:
    """The first recipe whose pre-training (on top of `base`) equals cfg's: recipes that pre-train alike share one."""
    for recipe in dict.fromkeys(r for _, r in SYSTEMS.values()):
        other = apply_recipe(dataclasses.replace(copy.deepcopy(base), model="s3rec"), recipe)
        if (other.pretrain, other.encoder) == (cfg.pretrain, cfg.encoder):
            return recipe
    return "custom"


def comparisons(results: list[SystemRuns], metric: str = "NDCG@10") -> list[dict]:
    """With vs without pre-training, per data set: relative change and paired p-values."""
    by = {(r.dataset, r.system): r for r in results}
    rows = []
    for dataset in dict.fromkeys(r.dataset for r in results):
        for with_pt, without in PAIRS:
            if (dataset, with_pt) not in by or (dataset, without) not in by:
                continue
            a, b = by[dataset, with_pt].per_user(metric), by[dataset, without].per_user(metric)
            t_p, w_p = paired_tests(a, b)
            rows.append({"dataset": dataset, "with": with_pt, "without": without, "metric": metric,
                         "mean_with": float(a.mean()), "mean_without": float(b.mean()),
                         "change": float(a.mean() / b.mean() - 1) if b.mean() > 0 else float("nan"),
                         "p_ttest": t_p, "p_wilcoxon": w_p, "users": int(len(a))})
    return rows


def format_markdown(results: list[SystemRuns], seeds: list[int]) -> str:
    """Tables per data set (mean ± std over seeds, wall-clock) and the pre-training verdicts."""
    lines = ["# Does pre-training help under cross-entropy? (`s3rec study`)", "",
             f"Full ranking, history excluded, test split at the best validation epoch; mean ± std over seeds {', '.join(map(str, seeds))}. "
             "Wall-clock: mean seconds of one run on this machine, its (shared) pre-training included.", ""]
    for dataset in dict.fromkeys(r.dataset for r in results):
        lines += [f"## {dataset}", "", "| system | seeds | " + " | ".join(METRICS) + " | seconds |",
                  "|---|---|" + "---|" * (len(METRICS) + 1)]
        for r in (r for r in results if r.dataset == dataset):
            cells = [cell(*r.mean_std(m), len(r.metrics)) for m in METRICS]
            lines.append(f"| {r.system} | {len(r.metrics)} | " + " | ".join(cells) + f" | {r.seconds():.0f} |")
        for name, hr, ndcg in REFERENCES.get(dataset, ()):
            lines.append(f"| *{name} (published)* | | {hr:.4f} | {ndcg:.4f} | – | – | – | – |")
        lines.append("")
    rows = comparisons(results)
    if rows:
        lines += ["## With vs without pre-training (NDCG@10, paired over users)", "",
                  "| data set | with | without | change | p (t-test) | p (Wilcoxon) |", "|---|---|---|---|---|---|"]
        for c in rows:
            lines.append(f"| {c['dataset']} | {c['with']} {c['mean_with']:.4f} | {c['without']} {c['mean_without']:.4f} "
                         f"| {c['change']:+.1%} | {c['p_ttest']:.3g} | {c['p_wilcoxon']:.3g} |")
        lines.append("")
    return "\n".join(lines)


def write_outputs(results: list[SystemRuns], seeds: list[int], out: Path) -> None:
    """study.md, study.csv, study.json and study.png in `out`."""
    import pandas as pd

    records = [{"dataset": r.dataset, "system": r.system, "seeds": len(r.metrics), "seconds": r.seconds(),
                **{f"{m}_mean": r.mean_std(m)[0] for m in METRICS}, **{f"{m}_std": r.mean_std(m)[1] for m in METRICS}}
               for r in results]
    with atomic_path(out / "study.csv") as tmp:
        pd.DataFrame(records).to_csv(tmp, index=False)
    write_json(out / "study.json", {"seeds": seeds, "systems": records, "pretraining": comparisons(results)})
    write_text(out / "study.md", format_markdown(results, seeds))
    plot(results, out / "study.png")


def plot(results: list[SystemRuns], path: Path, metric: str = "NDCG@10") -> None:
    """Grouped bars: one group per data set, one bar per system, error bars = std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r.dataset for r in results))
    systems = list(dict.fromkeys(r.system for r in results))
    by = {(r.dataset, r.system): r.mean_std(metric) for r in results}
    width = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(max(5.0, 2.2 + 1.6 * len(datasets)), 3.6))
    for k, system in enumerate(systems):
        xs = [i + (k - (len(systems) - 1) / 2) * width for i in range(len(datasets))]
        mu = [by.get((d, system), (np.nan, 0))[0] for d in datasets]
        sd = [by.get((d, system), (0, 0))[1] for d in datasets]
        ax.bar(xs, mu, width, yerr=sd, capsize=3, label=system, hatch="//" if "S3-Rec" in system else None)
    ax.set_xticks(range(len(datasets)), datasets)
    ax.set_ylabel(f"test {metric} (full ranking)")
    ax.set_title("With and without pre-training, BCE and CE fine-tuning", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
