"""`s3rec experiment transfer`: S3-Rec's pre-training applied to other models (paper §5.3, Fig. 3).

Each model is trained without and with pre-training (s3rec.transfer):
- GRU4Rec, GRU4RecF, SASRecF: the four objectives pre-train the model's own encoder and tables;
- SASRec: S3-Rec's pre-training (SASRec's network is S3-Rec's encoder);
- Caser, AutoInt: item (and attribute) embeddings from an S3-Rec pre-training whose width is the
  model's embedding size (one pre-training per width, shared by the models of that width).
Plotted: NDCG@10 and HR@10 on the test split, without and with pre-training per model.
"""

from __future__ import annotations

from s3rec.data.loading import load_data
from s3rec.data.splits import LeaveOneOut
from s3rec.compare_format import DISPLAY, cell, mean_std
from s3rec.experiments.common import (epochs_text, ExperimentResult, Run, Setup, check_models, dataset_name,
                                      end_of_runs, grouped_bars, metric_rows, new_figure, pretraining,
                                      seed_runs, summary_head, write_outputs, y_label)
from s3rec.models.factory import build_model
from s3rec.transfer import EMBEDDING_MODELS, ENCODER_MODELS, embedding_width

MODELS = ("gru4rec", "gru4recf", "sasrec", "sasrecf", "autoint", "caser")
KINDS = {"none": "without pre-training", "encoder": "pre-trained encoder", "embeddings": "S3-Rec embeddings"}
METRICS = ("NDCG@10", "HR@10")


def transfer(setup: Setup, models: tuple[str, ...] | list[str] = MODELS) -> ExperimentResult:
    """Run (or reuse) every model without and with pre-training; write transfer.csv/.png/.md."""
    models = check_models(list(models), ENCODER_MODELS + EMBEDDING_MODELS, "--models")
    configs = {m: setup.config_for(m) for m in models}  # a bad option for any model fails before the first run
    runs: list[Run] = []
    for m, cfg in configs.items():
        runs += seed_runs(setup, cfg, "none", m)
        if m == "sasrec":
            cfg.init = s3rec_pretraining(setup, cfg.encoder.d)
        elif m in ENCODER_MODELS:
            cfg.init = pretraining(setup, cfg, f"pretrain-{m}")
        else:
            cfg.init = s3rec_pretraining(setup, width_of(cfg))
        runs += seed_runs(setup, cfg, "embeddings" if m in EMBEDDING_MODELS else "encoder", f"{m}-pretrained")
    end_of_runs(setup)

    protocol, errors = setup.protocol, len(setup.seeds) > 1
    stats = {metric: table(runs, models, protocol, metric) for metric in METRICS}
    fig, axes = new_figure(2, width=max(5.2, 1.1 * len(models) + 1))
    groups = [DISPLAY[m] for m in models]
    for ax, metric in zip(axes, METRICS):
        grouped_bars(ax, groups, {"without pre-training": [s[0] for s in stats[metric]],
                                  "with pre-training": [s[1] for s in stats[metric]]}, y_label(metric, protocol), errors)
    fig.suptitle(f"S3-Rec's pre-training applied to other models, {dataset_name(runs)}")
    return write_outputs(setup, "transfer", metric_rows(runs), fig, summarise(setup, runs, models, stats, protocol), runs)


def s3rec_pretraining(setup: Setup, width: int) -> str:
    """S3-Rec's pre-training with encoder width `width` (heads reduced to 1 when they do not divide it)."""
    cfg = setup.config_for("s3rec")
    cfg.encoder.d = width
    if width % cfg.encoder.n_heads:
        cfg.encoder.n_heads = 1
    return pretraining(setup, cfg, f"pretrain-s3rec-d{width}")


def width_of(cfg) -> int:
    """Embedding width of cfg.model as built for this data set (Caser: encoder.d; AutoInt: its field size)."""
    split = LeaveOneOut.from_data(load_data(cfg.data, progress=False))
    return embedding_width(build_model(cfg.model, split, cfg.encoder, cfg.finetune.loss, cfg.finetune.n_negatives))


def table(runs: list[Run], models: list[str], protocol: str, metric: str) -> list[tuple[tuple, tuple]]:
    """Per model: ((mean, std) without, (mean, std) with pre-training) over seeds."""
    out = []
    for m in models:
        without = [r.metrics["test"][protocol][metric] for r in runs if r.model == m and r.label == "none"]
        with_ = [r.metrics["test"][protocol][metric] for r in runs if r.model == m and r.label != "none"]
        out.append((mean_std(without), mean_std(with_)))
    return out


def summarise(setup: Setup, runs: list[Run], models: list[str], stats: dict, protocol: str) -> str:
    """The Markdown summary of the experiment."""
    cfg = setup.config_for("s3rec")
    lines = summary_head(f"S3-Rec's pre-training applied to other models on {dataset_name(runs)} (paper Fig. 3)",
                         setup, f"Test split at the best validation epoch, {protocol} ranking; "
                                f"{epochs_text(cfg.pretrain.epochs)}")
    lines += ["| model | pre-training | NDCG@10 without | NDCG@10 with | change | HR@10 without | HR@10 with |",
              "|---|---|---|---|---|---|---|"]
    n = len(setup.seeds)
    better = []
    for m, (without, with_), (h_without, h_with) in zip(models, stats["NDCG@10"], stats["HR@10"]):
        kind = KINDS["embeddings" if m in EMBEDDING_MODELS else "encoder"]
        change = f"{(with_[0] - without[0]) / without[0]:+.1%}" if without[0] else "n/a"
        if with_[0] > without[0]:
            better.append(DISPLAY[m])
        lines.append(f"| {DISPLAY[m]} | {kind} | {cell(*without, n)} | {cell(*with_, n)} | {change} | "
                     f"{cell(*h_without, n)} | {cell(*h_with, n)} |")
    lines += ["", "![transfer](transfer.png)", "",
              f"Measured: pre-training raised NDCG@10 for {', '.join(better) or 'none of the models'} "
              f"({len(better)} of {len(models)})."]
    return "\n".join(lines) + "\n"
