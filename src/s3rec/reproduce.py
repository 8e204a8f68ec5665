"""`s3rec reproduce`: the paper's S3-Rec table on one data set — one pre-training, fine-tuning with
several seeds, SASRec (same pipeline, no pre-training) with the same seeds — as mean ± std beside
the paper's figures. Every step reuses finished run directories, so an interrupted call resumes.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from s3rec.compare_format import cell, mean_std
from s3rec.config import RunConfig
from s3rec.io import write_json, write_text
from s3rec.parallel import JobList, execute
from s3rec.runs import pretrain_or_reuse, pretrained_checkpoint, run_or_reuse, run_seconds
from s3rec.training.checkpoint import load_checkpoint

# S3-Rec in the paper (Zhou et al. 2020), test split; only the figures our issues quote.
PAPER_S3REC = {
    ("beauty", "full"): {"HR@10": 0.0647, "NDCG@10": 0.0327, "HR@20": 0.0994},
    ("sports", "full"): {"HR@10": 0.0385, "NDCG@10": 0.0204},
    ("lastfm", "full"): {"HR@10": 0.0743, "NDCG@10": 0.0427},
    ("beauty", "sampled"): {"HR@10": 0.5506, "NDCG@10": 0.3732, "MRR": 0.3340},
}
SHOWN = ("HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR")


def reproduce(cfg: RunConfig, seeds: list[int], out: str | Path, init: str | None = None,
              progress: bool = True, log=print, jobs: int = 1) -> str:
    """Run (or reuse) the pre-training and every fine-tuning; write reproduction.md/.json; return the table.

    jobs: do the missing pre-training and runs that many at a time in worker processes first (s3rec.parallel).
    """
    out = Path(out)  # made by the first run that writes (a bad --init leaves nothing behind)
    todo = missing_jobs(cfg, seeds, out, init)  # every folder's options checked before anything trains
    if jobs > 1:
        execute(todo, jobs, log)
    if init is None:
        init = str(pretrain_or_reuse(pretraining_config(cfg, seeds), out / "pretrain", progress=progress, log=log))
    results: dict[str, list[dict]] = {"s3rec": [], "sasrec": []}
    for model, seed, c in run_configs(cfg, seeds, init):
        results[model].append(run_or_reuse(c, out / f"{model}-seed{seed}", progress=progress, log=log))
    key = cfg.data.label
    table = format_table(key, results, seeds, init)
    write_text(out / "reproduction.md", table)
    write_json(out / "reproduction.json", {"dataset": key, "seeds": seeds, "init": init, "runs": results})
    return table


def pretraining_config(cfg: RunConfig, seeds: list[int]) -> RunConfig:
    """The one pre-training's config: the first seed."""
    pre = copy.deepcopy(cfg)
    pre.seed = seeds[0]
    return pre


def run_configs(cfg: RunConfig, seeds: list[int], init: str):
    """(model, seed, config) of every fine-tuning: S3-Rec from `init`, SASRec from random weights."""
    for model in ("s3rec", "sasrec"):
        for seed in seeds:
            c = copy.deepcopy(cfg)
            c.model, c.seed, c.init = model, seed, (init if model == "s3rec" else None)
            yield model, seed, c


def missing_jobs(cfg: RunConfig, seeds: list[int], out: Path, init: str | None = None) -> JobList:
    """The pre-training and runs reproduce() would make, without the finished ones (options checked first)."""
    jobs = JobList()
    if init is not None:
        load_checkpoint(init, stage="pretrain")  # a bad --init fails before any run starts
    else:
        pre = pretraining_config(cfg, seeds)
        jobs.pretraining(pre, out / "pretrain")
        init = str(pretrained_checkpoint(pre, out / "pretrain"))
    for model, seed, c in run_configs(cfg, seeds, init):
        jobs.run(c, out / f"{model}-seed{seed}")
    return jobs


def seed_mean_std(runs: list[dict], protocol: str, metric: str) -> tuple[float, float]:
    """Mean and std over the runs that evaluated `protocol` of a test metric."""
    return mean_std([r["test"][protocol][metric] for r in runs if protocol in r["test"]])


def format_table(key: str, results: dict[str, list[dict]], seeds: list[int], init: str) -> str:
    """Markdown: metrics as rows; paper S3-Rec, ours S3-Rec and ours SASRec as mean ± std over seeds."""
    lines = [f"# S3-Rec reproduction on {key}", "",
             f"Test split, best validation epoch; mean ± std over seeds {', '.join(map(str, seeds))} (fine-tuning seeds; one "
             f"pre-training: `{init}`).", ""]
    for protocol in ("full", "sampled"):
        if not any(protocol in r["test"] for r in results["s3rec"]):
            continue
        paper = PAPER_S3REC.get((key, protocol), {})
        lines += [f"## {protocol} ranking", "", "| metric | paper S3-Rec | S3-Rec (ours) | SASRec (ours) |", "|---|---|---|---|"]
        for m in SHOWN:
            cells = [f"{paper[m]:.4f}" if m in paper else "–"]
            for model in ("s3rec", "sasrec"):
                cells.append(cell(*seed_mean_std(results[model], protocol, m), len(results[model])))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    secs = {model: np.mean([run_seconds(r) for r in rs]) for model, rs in results.items()}
    lines.append("Mean wall-clock per fine-tuning run (s): " + ", ".join(f"{m} {v:.0f}" for m, v in secs.items()))
    return "\n".join(lines) + "\n"
