"""`s3rec experiment pretrain-epochs`: S3-Rec after K pre-training epochs (paper §5.3, Fig. 5).

One pre-training of N epochs (--pretrain-epochs) saves pretrain-epochK.pt every pretrain.save_every
epochs (default 10) and after the last; S3-Rec is fine-tuned from each of them (or from those --points
names, e.g. 10,20,100). K = 0 is the same network without pre-training (SASRec), drawn as a point of
the curve and as a dashed line.
Plotted: NDCG@10 on the test split against K.
"""

from __future__ import annotations

from pathlib import Path

from s3rec.errors import S3RecError
from s3rec.compare_format import cell, mean_std
from s3rec.experiments.common import (ExperimentResult, Run, Setup, dataset_name, end_of_runs, lines,
                                      metric_rows, new_figure, pretraining, seed_runs, summary_head, write_outputs,
                                      y_label)

NO_PRETRAINING = "no pre-training (SASRec)"


def pretrain_epochs(setup: Setup, points: list[int] | None = None) -> ExperimentResult:
    """Run (or reuse) the pre-training and a fine-tuning from each saved epoch; write pretrain-epochs.csv/.png/.md.

    `points`: the epochs K > 0 to fine-tune from (default every pretrain.save_every epochs and N); each must
    be a saved checkpoint: a multiple of save_every, or N.
    """
    cfg = setup.config_for("s3rec")
    n, step = cfg.pretrain.epochs, cfg.pretrain.save_every
    if n < 1:
        raise S3RecError("pretrain-epochs needs --pretrain-epochs N with N >= 1")
    if points is None:
        points = [*range(step, n + 1, step), n]
    elif not points or any(not (0 < k <= n and (k % step == 0 or k == n)) for k in points):
        raise S3RecError(f"--points takes pre-training epochs in 1..{n} that are saved (multiples of "
                         f"pretrain.save_every = {step}, or {n}), got {','.join(map(str, points)) or 'none'}")
    epochs = sorted(set(points))
    folder = Path(pretraining(setup, cfg, "pretrain")).parent
    runs: list[Run] = seed_runs(setup, setup.config_for("sasrec"), NO_PRETRAINING, "sasrec", x=0)
    for k in epochs:
        checkpoint = folder / f"pretrain-epoch{k}.pt"
        if not checkpoint.is_file() and not (setup.planning and folder in setup.plan):
            raise S3RecError(f"{checkpoint}: not found; the pre-training in {folder} saved other epochs "
                             f"(pretrain.save_every was not {step}); use another --out")
        cfg.init = str(checkpoint)
        runs += seed_runs(setup, cfg, "S3-Rec", f"s3rec-epoch{k}", x=k)
    end_of_runs(setup)

    protocol, errors = setup.protocol, len(setup.seeds) > 1
    zero = mean_std([r.metrics["test"][protocol]["NDCG@10"] for r in runs if r.x == 0])
    by_k: dict[float, list[float]] = {}
    for r in runs:
        by_k.setdefault(r.x, []).append(r.metrics["test"][protocol]["NDCG@10"])
    xs = sorted(by_k)
    curve = {"S3-Rec": (xs, [mean_std(by_k[k]) for k in xs])}
    fig, (ax,) = new_figure(1, width=6.4)
    lines(ax, curve, "pre-training epochs", y_label("NDCG@10", protocol), errors, reference=(NO_PRETRAINING, zero[0]),
          integer_x=True)
    if len(xs) <= 12:
        ax.set_xticks(xs)  # the saved checkpoints themselves, not round numbers between them
    fig.suptitle(f"S3-Rec after K pre-training epochs, {dataset_name(runs)}")
    rows = metric_rows(runs, x_name="pretrain_epochs")
    return write_outputs(setup, "pretrain-epochs", rows, fig, summarise(setup, runs, curve, protocol), runs)


def summarise(setup: Setup, runs: list[Run], curve: dict, protocol: str) -> str:
    """The Markdown summary of the experiment."""
    lines_ = summary_head(f"S3-Rec against the number of pre-training epochs on {dataset_name(runs)} (paper Fig. 5)",
                          setup, f"Test split at the best validation epoch, {protocol} ranking; epoch 0 = SASRec")
    xs, stats = curve["S3-Rec"]
    lines_ += ["| pre-training epochs | NDCG@10 |", "|---|---|"]
    lines_ += [f"| {k:g} | {cell(*s, len(setup.seeds))} |" for k, s in zip(xs, stats)]
    best = max(range(len(xs)), key=lambda i: stats[i][0])
    lines_ += ["", "![pretrain-epochs](pretrain-epochs.png)", "",
               f"Measured: the best NDCG@10 ({stats[best][0]:.4f}) is after {xs[best]:g} pre-training epochs; "
               f"without pre-training it is {stats[0][0]:.4f}."]
    return "\n".join(lines_) + "\n"
