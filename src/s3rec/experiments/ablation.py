"""`s3rec experiment ablation`: S3-Rec with each pre-training objective removed (paper §5.3, Fig. 2).

Variants: the full model and ¬AAP, ¬MIP, ¬MAP, ¬SP (that objective's weight set to 0, which also
skips its computation), each with its own pre-training and fine-tuned with every seed, beside a
baseline trained without pre-training (default SASRec: S3-Rec's network from random weights).
Plotted: NDCG@10 and HR@10 on the test split.
"""

from __future__ import annotations

from matplotlib.patches import Patch

from s3rec.compare_format import DISPLAY, cell
from s3rec.experiments.common import (epochs_text, ExperimentResult, Setup, bars, by_label, check_models,
                                      dataset_name, dead_objective_line, dead_objectives, end_of_runs, metric_rows,
                                      new_figure, pretraining, seed_runs, summary_head, write_outputs, y_label)
from s3rec.models.factory import MODEL_NAMES

VARIANTS = (("S3-Rec", None), ("¬AAP", "aap"), ("¬MIP", "mip"), ("¬MAP", "map"), ("¬SP", "sp"))
METRICS = ("NDCG@10", "HR@10")


def ablation(setup: Setup, baseline: str = "sasrec") -> ExperimentResult:
    """Run (or reuse) every variant and the baseline; write ablation.csv/.png/.md."""
    (baseline,) = check_models([baseline], tuple(m for m in MODEL_NAMES if m != "s3rec"), "--baseline")
    baseline_cfg = setup.config_for(baseline)  # a bad option for it fails before the first run
    runs = []
    for label, removed in VARIANTS:
        cfg = setup.config_for("s3rec")
        slug = "full" if removed is None else f"no-{removed}"
        if removed is not None:
            setattr(cfg.pretrain.objectives, removed, 0.0)
        cfg.init = pretraining(setup, cfg, f"pretrain-{slug}")
        runs += seed_runs(setup, cfg, label, f"s3rec-{slug}")
    runs += seed_runs(setup, baseline_cfg, DISPLAY.get(baseline, baseline), baseline)
    end_of_runs(setup)

    protocol, errors = setup.protocol, len(setup.seeds) > 1
    stats = {m: by_label(runs, protocol, m) for m in METRICS}
    fig, axes = new_figure(2)
    colors = ["C0"] + ["C1"] * (len(VARIANTS) - 1) + ["C7"]
    for ax, metric in zip(axes, METRICS):
        bars(ax, list(stats[metric]), list(stats[metric].values()), y_label(metric, protocol), errors, colors)
    axes[0].set_ylim(0, axes[0].get_ylim()[1] * 1.25)  # room above the bars for the legend
    axes[0].legend(handles=[Patch(color="C0", label="S3-Rec, all objectives"), Patch(color="C1", label="one removed"),
                            Patch(color="C7", label="no pre-training")], loc="upper center", ncols=3, fontsize=8)
    fig.suptitle(f"S3-Rec without one pre-training objective, {dataset_name(runs)}")
    return write_outputs(setup, "ablation", metric_rows(runs), fig, summarise(setup, runs, stats, protocol), runs)


def summarise(setup: Setup, runs, stats: dict, protocol: str) -> str:
    """The table of the figure and what it shows, in numbers."""
    cfg = setup.config_for("s3rec")
    lines = summary_head(f"Ablation of S3-Rec's objectives on {dataset_name(runs)} (paper Fig. 2)", setup,
                         f"Test split at the best validation epoch, {protocol} ranking; "
                         f"{epochs_text(cfg.pretrain.epochs)} per variant")
    ndcg = stats["NDCG@10"]
    full = ndcg["S3-Rec"][0]
    lines += ["| variant | NDCG@10 | HR@10 | NDCG@10 vs S3-Rec |", "|---|---|---|---|"]
    for label, (mean, std) in ndcg.items():
        change = "" if label == "S3-Rec" else f"{(mean - full) / full:+.1%}" if full else "n/a"
        lines.append(f"| {label} | {cell(mean, std, len(setup.seeds))} | "
                     f"{cell(*stats['HR@10'][label], len(setup.seeds))} | {change} |")
    removed = {label: ndcg[label][0] for label, _ in VARIANTS[1:]}
    worst = min(removed, key=removed.get)
    helped = [label for label, v in removed.items() if v < full]
    drop = (f"the largest drop is {worst} ({removed[worst]:.4f} vs {full:.4f})" if helped else
            f"the smallest rise is {worst} ({removed[worst]:.4f} vs {full:.4f})")
    lines += ["", "![ablation](ablation.png)", "",
              f"Measured: removing an objective lowered NDCG@10 for {', '.join(helped) or 'none of them'}; {drop}."]
    folders = {label: "pretrain-full" if removed is None else f"pretrain-no-{removed}" for label, removed in VARIANTS}
    for label, k, first, last in dead_objectives(setup, folders):
        lines.append(dead_objective_line(f"{label}'s pre-training", k, first, last)
                     + (f", so ¬{k.upper()} is compared with a model that did not use it either." if label == "S3-Rec"
                        else "."))
    return "\n".join(lines) + "\n"
