"""`s3rec reproduce`, `compare`, `study` and `breakdown`: many runs, through s3rec.reproduce, s3rec.compare,
s3rec.study and s3rec.breakdown."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from s3rec.breakdown import BIN_TITLES, breakdown, format_breakdown
from s3rec.cli.options import (add_jobs_option, add_run_args, build_config, logger, parse_seeds,
                               refuse_pretraining_flags, set_keys)
from s3rec.compare import PAPER_ORDER, compare, model_of
from s3rec.errors import S3RecError, print_out, write_out
from s3rec.evaluation.metrics import METRIC_NAMES
from s3rec.io import write_text
from s3rec.parallel import check_jobs
from s3rec.recipes import RECIPES


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register reproduce, compare, study and breakdown."""
    p = sub.add_parser("reproduce", help="the paper's S3-Rec table: one pre-training, S3-Rec and SASRec over seeds")
    add_run_args(p, model_choice=False, many_runs=True,
                 out_help="output folder of the runs and reproduction.md (default runs/reproduce-<dataset>)")
    p.add_argument("--seeds", default="1,2,3", help="fine-tuning seeds (default 1,2,3)")
    add_jobs_option(p)
    p.set_defaults(func=cmd_reproduce)
    _add_compare(sub)
    p = sub.add_parser("study", help="pre-training under BCE and CE fine-tuning: SASRec/S3-Rec x paper/best recipes over seeds")
    add_run_args(p, model_choice=False, many_runs=True, out_help="output folder of the runs and tables (default runs/study)")
    p.add_argument("--datasets", help="comma-separated data sets (registry names or files; default --dataset/--data)")
    p.add_argument("--seeds", default="1,2,3", help="fine-tuning seeds (default 1,2,3; one pre-training per data set and recipe)")
    p.add_argument("--systems", help="subset of SASRec-BCE,SASRec-CE,S3-Rec-BCE,S3-Rec-best (default all)")
    p.add_argument("--report", action="store_true",
                   help="train nothing: write the tables from the runs that have finished (e.g. while the study runs)")
    add_jobs_option(p)
    p.set_defaults(func=cmd_study)
    _add_breakdown(sub)


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="the paper's Table 2: several models over seeds, mean ± std, significance")
    add_run_args(p, model_choice=False, many_runs=True,
                 out_help="output folder of the runs and comparison.md/.csv/.tex (default runs/compare-<dataset>)")
    p.add_argument("--models", default=",".join(PAPER_ORDER),
                   help="comma-separated models, the table's columns in this order; MODEL@RECIPE runs a model under "
                        f"another recipe, e.g. s3rec@best (default all: {','.join(PAPER_ORDER)})")
    p.add_argument("--seeds", default="1,2,3", help="seeds of every model (default 1,2,3)")
    add_jobs_option(p)
    p.add_argument("--report", action="store_true",
                   help="train nothing: write the tables from the finished runs only (read a long comparison while it runs)")
    p.set_defaults(func=cmd_compare)


def _add_breakdown(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("breakdown", help="a metric by target popularity or history length, for groups of finished runs")
    p.add_argument("--runs", nargs="+", action="append", required=True, metavar="RUN_DIR",
                   help="run directories of one group (their per-user values are averaged); repeat for more groups, "
                        "the first is the reference")
    p.add_argument("--names", help="comma-separated group names (default: group 1, group 2, ...)")
    p.add_argument("--split", choices=("test", "valid"), default="test")
    p.add_argument("--protocol", choices=("full", "sampled"), default="full")
    p.add_argument("--metric", default="NDCG@10", help=f"one of {', '.join(METRIC_NAMES)} (default NDCG@10)")
    p.add_argument("--by", choices=tuple(BIN_TITLES), default="popularity",
                   help="bin users by their target's training count (default) or their history length")
    p.add_argument("--bins", help="bin edges (default: popularity 1,5,20,60, bins 0, 1-4, 5-19, 20-59, 60+; "
                                  "length 5,10,20,50)")
    p.add_argument("--out", help="also write the table to this file")
    p.set_defaults(func=cmd_breakdown)


def cmd_reproduce(args: argparse.Namespace) -> None:
    """`s3rec reproduce`: S3-Rec and SASRec over seeds against the paper's table."""
    from s3rec.reproduce import reproduce

    cfg = build_config(args, "s3rec")
    if args.init is not None:
        refuse_pretraining_flags(args, "it fine-tunes from --init")
    seeds = parse_seeds(args.seeds)
    out = Path(args.out or f"runs/reproduce-{cfg.data.label}")
    print_out(reproduce(cfg, seeds, out, init=args.init, progress=not args.quiet, log=logger(args),
                        jobs=check_jobs(args.jobs)))


def cmd_compare(args) -> None:
    """Build each model's config as `s3rec run --model M` would (its paper defaults, then the options), compare."""
    columns = [m.strip().lower() for m in args.models.split(",") if m.strip()]
    seeds = parse_seeds(args.seeds)
    if not columns:
        raise S3RecError("--models needs at least one model, e.g. --models pop,sasrec,s3rec")
    if len(set(columns)) != len(columns):
        raise S3RecError(f"--models lists a model twice: {args.models}")
    if args.init is not None:
        refuse_pretraining_flags(args, "S3-Rec fine-tunes from --init")
    configs = {c: build_config(_with_recipe(args, c), model_of(c)) for c in columns}
    same = {}  # a column under the call's own recipe named twice (sasrec and sasrec@paper) would train twice
    for c, cfg in configs.items():
        options = json.dumps({k: v for k, v in cfg.to_dict().items() if k != "recipe"}, sort_keys=True)
        if options in same:
            raise S3RecError(f"--models: {same[options]} and {c} are the same configuration")
        same[options] = c
    first = configs[columns[0]]
    out = Path(args.out or f"runs/compare-{first.data.label}")
    compare(configs, seeds, out, progress=not args.quiet, log=logger(args), report_only=args.report, jobs=check_jobs(args.jobs))
    print((out / "comparison.md").read_text(encoding="utf-8"), end="")


def _with_recipe(args, column: str):
    """The call's options with the recipe of a `model@recipe` column (a plain column keeps --recipe)."""
    model, at, recipe = column.partition("@")
    if not at:
        return args
    if not model or recipe not in RECIPES:
        raise S3RecError(f"--models: {column!r} is not MODEL or MODEL@RECIPE (recipes: {', '.join(RECIPES)})")
    return argparse.Namespace(**{**vars(args), "recipe": recipe})


def cmd_study(args: argparse.Namespace) -> None:
    """`s3rec study`: with and without pre-training, BCE and CE, on several data sets."""
    from s3rec.recipes import RECIPES
    from s3rec.study import SYSTEMS, run_study

    cfg = build_config(args, "sasrec")
    if cfg.recipe != "paper":
        raise S3RecError("study runs each system with its own recipe (paper or best): drop --recipe / recipe:")
    if cfg.eval.protocol == "sampled":
        raise S3RecError("study's tables are of full ranking: use --protocol full or both")
    # what tells the systems apart is theirs alone: a loss given here would relabel one system as another
    defining = {k for r in RECIPES.values() for k in r} - {"pretrain.epochs", "pretrain.bucket"}
    given = [f for f, v in (("--loss", args.loss), ("--patience", args.patience)) if v is not None]
    given += [f"--set {k}" for k in set_keys(args) if k in defining]
    if given:
        raise S3RecError(f"{given[0]}: study's systems are defined by their recipes' {', '.join(sorted(defining))}; "
                         "compare other values with s3rec compare")
    datasets = [d.strip() for d in (args.datasets or cfg.data.dataset or cfg.data.path or "").split(",") if d.strip()]
    seeds = parse_seeds(args.seeds)
    systems = [s.strip() for s in args.systems.split(",")] if args.systems else list(SYSTEMS)
    if not datasets:
        raise S3RecError("study needs --datasets (or --dataset/--data)")
    if set(systems) - set(SYSTEMS):
        raise S3RecError(f"--systems takes a subset of {','.join(SYSTEMS)}, got {args.systems!r}")
    out = Path(args.out or "runs/study")
    run_study(cfg, datasets, seeds, out, systems, progress=not args.quiet, log=logger(args), report_only=args.report,
              jobs=check_jobs(args.jobs))
    print_out((out / "study.md").read_text())


def cmd_breakdown(args) -> None:
    """Print (and optionally write) the breakdown table."""
    names = [n.strip() for n in args.names.split(",")] if args.names else [f"group {i + 1}" for i in range(len(args.runs))]
    if len(names) != len(args.runs) or len(set(names)) != len(names):
        raise S3RecError(f"--names needs {len(args.runs)} distinct names, one per --runs (got {args.names!r})")
    try:
        edges = None if args.bins is None else [int(x) for x in args.bins.split(",") if x.strip()]
    except ValueError:
        raise S3RecError(f"--bins must be comma-separated integers, e.g. 1,5,20,60 (got {args.bins!r})") from None
    table = format_breakdown(breakdown({n: [Path(d) for d in dirs] for n, dirs in zip(names, args.runs)},
                                       args.split, args.protocol, args.metric, edges, args.by))
    if args.out:
        write_text(args.out, table)
    write_out(table)
