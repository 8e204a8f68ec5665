"""`s3rec experiment sparsity`: S3-Rec and baselines on less training data (paper §5.3, Fig. 4).

For each fraction f (default 20%, 40%, ..., 100%) every user keeps the most recent f of their
training items (data.train_fraction; validation and test items are untouched), S3-Rec pre-trains
and fine-tunes on that, and each baseline trains on it. Plotted: NDCG@10 and HR@10 on the test
split against the fraction of training data.
"""

from __future__ import annotations

from s3rec.errors import S3RecError
from s3rec.compare_format import DISPLAY, cell, mean_std
from s3rec.experiments.common import (epochs_text, ExperimentResult, Run, Setup, check_models, dataset_name,
                                      dead_objective_line, dead_objectives, end_of_runs, lines, metric_rows,
                                      new_figure, pretraining, seed_runs, summary_head, write_outputs, y_label)
from s3rec.models.factory import MODEL_NAMES

FRACTIONS = (0.2, 0.4, 0.6, 0.8, 1.0)
BASELINES = ("sasrec", "gru4recf")
METRICS = ("NDCG@10", "HR@10")


def sparsity(setup: Setup, fractions: tuple[float, ...] | list[float] = FRACTIONS,
             baselines: tuple[str, ...] | list[str] = BASELINES) -> ExperimentResult:
    """Run (or reuse) S3-Rec and the baselines at every fraction; write sparsity.csv/.png/.md."""
    fractions = sorted(set(fractions))
    if not fractions or not all(0 < f <= 1 for f in fractions):
        raise S3RecError(f"--fractions takes fractions of the training data in (0, 1], got {fractions}")
    baselines = check_models(list(baselines), tuple(m for m in MODEL_NAMES if m != "s3rec"), "--baselines")
    for b in baselines:
        setup.config_for(b)  # a bad option for any baseline fails before the first run
    runs: list[Run] = []
    for f in fractions:
        tag = f"{f * 100:g}pct"
        cfg = setup.config_for("s3rec")
        cfg.data.train_fraction = f
        cfg.init = pretraining(setup, cfg, f"pretrain-{tag}")
        runs += seed_runs(setup, cfg, "S3-Rec", f"s3rec-{tag}", x=f)
        for b in baselines:
            c = setup.config_for(b)
            c.data.train_fraction = f
            runs += seed_runs(setup, c, DISPLAY.get(b, b), f"{b}-{tag}", x=f)
    end_of_runs(setup)

    protocol, errors = setup.protocol, len(setup.seeds) > 1
    curves = {metric: curves_of(runs, protocol, metric) for metric in METRICS}
    fig, axes = new_figure(2)
    for ax, metric in zip(axes, METRICS):
        lines(ax, curves[metric], "training data kept (%)", y_label(metric, protocol), errors)
    fig.suptitle(f"Performance with less training data, {dataset_name(runs)}")
    rows = metric_rows(runs, x_name="train_fraction")
    return write_outputs(setup, "sparsity", rows, fig, summarise(setup, runs, curves, protocol), runs)


def curves_of(runs: list[Run], protocol: str, metric: str) -> dict[str, tuple[list[float], list[tuple[float, float]]]]:
    """label -> (percent of training data, (mean, std) over seeds at each)."""
    values: dict[str, dict[float, list[float]]] = {}
    for r in runs:
        values.setdefault(r.label, {}).setdefault(r.x, []).append(r.metrics["test"][protocol][metric])
    return {label: ([100 * x for x in per_x], [mean_std(v) for v in per_x.values()]) for label, per_x in values.items()}


def summarise(setup: Setup, runs: list[Run], curves: dict, protocol: str) -> str:
    """The Markdown summary of the experiment."""
    lines_ = summary_head(f"Less training data on {dataset_name(runs)} (paper Fig. 4)", setup,
                          f"Test split at the best validation epoch, {protocol} ranking; "
                          f"{epochs_text(setup.config_for('s3rec').pretrain.epochs)} at each fraction")
    ndcg = curves["NDCG@10"]
    labels = list(ndcg)
    xs = ndcg["S3-Rec"][0]
    lines_ += ["NDCG@10:", "", "| training data | " + " | ".join(labels) + " | S3-Rec vs best baseline |",
               "|---" * (len(labels) + 2) + "|"]
    ahead = 0
    for i, x in enumerate(xs):
        means = {label: ndcg[label][1][i] for label in labels}
        best = max((means[label][0] for label in labels[1:]), default=0.0)
        ahead += means["S3-Rec"][0] > best
        gain = f"{(means['S3-Rec'][0] - best) / best:+.1%}" if best else "n/a"
        lines_.append(f"| {x:g}% | " + " | ".join(cell(*means[label], len(setup.seeds)) for label in labels)
                      + f" | {gain} |")
    lines_ += ["", "![sparsity](sparsity.png)", "",
               f"Measured: S3-Rec's NDCG@10 is above every baseline's at {ahead} of {len(xs)} fractions."]
    folders = {f"the {x:g}% pre-training": f"pretrain-{x:g}pct" for x in xs}
    lines_ += [dead_objective_line(*dead) + "." for dead in dead_objectives(setup, folders)]
    return "\n".join(lines_) + "\n"
