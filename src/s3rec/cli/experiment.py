"""`s3rec experiment NAME`: the paper's analyses, a thin layer over s3rec.experiments."""

from __future__ import annotations

import argparse
import shlex
from functools import partial
from pathlib import Path

from s3rec.cli.options import add_data_args, add_jobs_option, build_config, floats, ints, logger, parse_seeds
from s3rec.parallel import check_jobs

HELP = {
    "ablation": "Fig. 2: S3-Rec with each pre-training objective removed, beside a baseline",
    "transfer": "Fig. 3: pre-training applied to GRU4Rec(F), SASRec(F), and as embeddings to AutoInt, Caser",
    "sparsity": "Fig. 4: S3-Rec and baselines on 20..100%% of the training data",
    "pretrain-epochs": "Fig. 5: S3-Rec fine-tuned after 0, 10, 20, ... N pre-training epochs",
    "convergence": "Fig. 6: validation NDCG@10 per fine-tuning epoch, S3-Rec against baselines",
}
NOT_COMMAND = ("func", "command", "experiment", "command_parser")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `s3rec experiment {ablation,transfer,sparsity,pretrain-epochs,convergence}`."""
    p = sub.add_parser("experiment", help="the paper's §5.3 analyses: runs (or reuses) them, writes CSV, PNG, Markdown")
    names = p.add_subparsers(dest="experiment", required=True)
    for name, text in HELP.items():
        q = names.add_parser(name, help=text, description=text.replace("%%", "%"))
        add_data_args(q)
        q.add_argument("--seeds", default="1", help="fine-tuning seeds, comma-separated (default 1); "
                                                    "pre-trainings use the first")
        q.add_argument("--out", help=f"output folder (default runs/experiments/{name}-<dataset>)")
        q.add_argument("--config", help="YAML or JSON file of options (nested like config.json)")
        q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any option (repeatable)")
        q.add_argument("--recipe", help="settings preset (default paper)")
        q.add_argument("--pretrain-epochs", type=int, help="pre-training epochs (default 100)")
        q.add_argument("--epochs", type=int, help="maximum fine-tuning epochs (default 200, early stopping)")
        q.add_argument("--patience", type=int, help="early-stopping patience in epochs (default 10; recipes best and fast 20)")
        q.add_argument("--loss", help="fine-tuning loss of the models that take one (default bce)")
        q.add_argument("--protocol", choices=["full", "sampled", "both"], help="evaluation protocol (default full; "
                       "plots use full ranking when it was run)")
        q.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines (warnings still go to stderr)")
        add_jobs_option(q)
        if name == "ablation":
            q.add_argument("--baseline", default="sasrec", help="baseline without pre-training (default sasrec)")
        elif name == "transfer":
            q.add_argument("--models", default="gru4rec,gru4recf,sasrec,sasrecf,autoint,caser",
                           help="models to train without and with pre-training (default all six)")
        elif name == "sparsity":
            q.add_argument("--fractions", default="0.2,0.4,0.6,0.8,1", help="fractions of the training data (default 0.2,...,1)")
            q.add_argument("--baselines", default="sasrec,gru4recf", help="baselines (default sasrec,gru4recf)")
        elif name == "pretrain-epochs":
            q.add_argument("--points", help="pre-training epochs to fine-tune from, comma-separated (default every "
                                            "pretrain.save_every epochs up to --pretrain-epochs)")
        elif name == "convergence":
            q.add_argument("--baselines", default="sasrec", help="baselines (default sasrec)")
        q.set_defaults(func=cmd_experiment, command_parser=q)


def cmd_experiment(args: argparse.Namespace) -> None:
    """`s3rec experiment NAME`: one of the paper's analyses."""
    from s3rec import experiments

    base = build_config(args, "s3rec")  # bad options fail here, before any run
    setup = experiments.Setup(config_for=lambda model: build_config(args, model), seeds=parse_seeds(args.seeds),
                              out=Path(args.out or f"runs/experiments/{args.experiment}-{base.data.label}"),
                              command=command_line(args), progress=not args.quiet,
                              log=logger(args))
    if args.experiment == "ablation":
        experiment = partial(experiments.ablation, baseline=args.baseline)
    elif args.experiment == "transfer":
        experiment = partial(experiments.transfer, models=args.models.split(","))
    elif args.experiment == "sparsity":
        experiment = partial(experiments.sparsity, fractions=floats(args.fractions, "--fractions"),
                             baselines=args.baselines.split(","))
    elif args.experiment == "pretrain-epochs":
        experiment = partial(experiments.pretrain_epochs, points=None if args.points is None else ints(args.points, "--points"))
    else:
        experiment = partial(experiments.convergence, baselines=args.baselines.split(","))
    result = experiments.run_experiment(experiment, setup, jobs=check_jobs(args.jobs))
    print(result.md.read_text(encoding="utf-8"), end="")
    print(f"wrote {result.csv}, {result.png}, {result.md}")


def command_line(args: argparse.Namespace) -> str:
    """The command as typed, less options left at their defaults (for the summary)."""
    parts = ["s3rec", "experiment", args.experiment]
    parser: argparse.ArgumentParser = args.command_parser
    for dest, value in vars(args).items():
        if dest in NOT_COMMAND or value is None or value is False or value == parser.get_default(dest):
            continue
        flag = "--data" if dest == "path" else "--" + dest.replace("_", "-")
        if dest == "set":
            parts += [x for item in value for x in ("--set", item)]
        else:
            parts += [flag] if value is True else [flag, str(value)]
    return shlex.join(parts)
