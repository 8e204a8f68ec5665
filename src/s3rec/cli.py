"""Command-line interface: a thin layer over s3rec.pipeline and the data API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

import yaml

import s3rec
from s3rec.config import RunConfig, check_eval_flags, check_types, read_options_file, set_path
from s3rec.errors import DataError, S3RecError, close_stdout, console_log, print_out, write_out
from s3rec.experiments.cli import add_experiment_command, parse_seeds
from s3rec.breakdown import add_parser as add_breakdown_command
from s3rec.export import add_export_command
from s3rec.serve import add_serve_command
from s3rec.tensorboard_log import add_tensorboard_option
from s3rec.models.factory import check_model_options, with_model_defaults
from s3rec.parallel import add_jobs_option, check_jobs
from s3rec.recipes import RECIPES, with_recipe

OBJECTIVES = ("aap", "mip", "map", "sp")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", help="registry name: beauty, sports, toys, yelp, lastfm")
    g.add_argument("--data", dest="path", help="your own file: S3-Rec Name.txt or a CSV/TSV/Parquet table")
    g.add_argument("--data-dir", help="folder holding the registry files (default $S3REC_DATA_DIR, then the cache)")
    g.add_argument("--item-table", help="item table with attribute columns (for --data tables)")
    g.add_argument("--user-col", help="user column of --data tables (default user_id)")
    g.add_argument("--item-col", help="item column (default item_id)")
    g.add_argument("--time-col", help="timestamp column (default timestamp; 'none' = file order)")
    g.add_argument("--attribute-cols", help="comma-separated attribute columns of --item-table (default categories)")
    g.add_argument("--min-count", type=int, help="k-core threshold for --data tables (default 5)")
    g.add_argument("--train-fraction", type=float, help="keep this fraction of each user's most recent training items")


def _add_run_args(p: argparse.ArgumentParser, model_choice: bool = True, pretrain_only: bool = False,
                  out_help: str = "run directory (default runs/<name>-<model>-seed<seed>, <name> spelt as the data file's, e.g. runs/LastFM-sasrec-seed42)",
                  many_runs: bool = False) -> None:
    """The options of one run; `many_runs` (reproduce, compare, study): no --seed (they take --seeds) and no
    --resume (they resume every unfinished run themselves)."""
    _add_data_args(p)
    if model_choice:
        p.add_argument("--model", default=None, help="s3rec (default), sasrec, pop, gru4rec, gru4recf, caser, bert4rec, hgn, sasrecf, fdsa, fm, autoint")
    p.add_argument("--recipe", choices=list(RECIPES),
                   help="settings preset: paper (default; the paper's and authors' settings), best (s3rec/sasrec: "
                        "cross-entropy fine-tuning, softmax MIP) or fast (best after 10 bucketed pre-training "
                        "epochs); see docs/recipe.md")
    p.add_argument("--config", help="YAML or JSON file of options (nested like config.json; a run's config.json repeats it); flags override it")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any option, e.g. --set pretrain.objectives.sp=0.3 (repeatable)")
    p.add_argument("--out", help=out_help)
    if not many_runs:
        p.add_argument("--seed", type=int, help="random seed (default 42)")
    # `s3rec pretrain --epochs N` counts pre-training epochs; evaluation, fine-tuning and --init flags,
    # which it would record and ignore, are errors there
    if pretrain_only:
        p.add_argument("--epochs", "--pretrain-epochs", dest="pretrain_epochs", type=int,
                       help="pre-training epochs (default 100; 10 with --recipe fast)")
    else:
        p.add_argument("--protocol", choices=["full", "sampled", "both"], help="evaluation protocol (default full)")
        p.add_argument("--negatives", choices=["auto", "uniform", "popularity", "file"], help="sampled-protocol negatives")
        p.add_argument("--keep-history", action="store_true", help="do not exclude history items from full ranking")
        p.add_argument("--epochs", type=int, help="maximum fine-tuning epochs (default 200, early stopping)")
        p.add_argument("--patience", type=int, help="early-stopping patience in epochs (default 10; recipes best and fast 20)")
        p.add_argument("--loss", choices=["bce", "bpr", "ce", "sampled-softmax"], help="fine-tuning loss (default bce)")
        p.add_argument("--pretrain-epochs", type=int, help="pre-training epochs (s3rec; default 100; 10 with --recipe fast)")
        p.add_argument("--init", help="pre-trained checkpoint to fine-tune from (s3rec; skips pre-training)")
    p.add_argument("--objectives", help="comma-separated pre-training objectives to use (default aap,mip,map,sp)")
    if not many_runs:
        p.add_argument("--resume", action="store_true",
                       help="continue an interrupted run from its last checkpoint (same options; --epochs and --patience may grow)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines (warnings still go to stderr)")


def build_config(args: argparse.Namespace, model: str | None = None) -> RunConfig:
    """Defaults < recipe < --config file < --set < explicit flags; bad options are one-line errors."""
    try:
        return _build_config(args, model).validate()
    except (ValueError, TypeError) as e:
        raise S3RecError(f"bad option: {e}") from None


def _build_config(args: argparse.Namespace, model: str | None) -> RunConfig:
    args = argparse.Namespace(**{**{k: None for k in _RUN_FLAGS}, "set": [], "keep_history": False, **vars(args)})
    options = read_options_file(args.config) if args.config else {}
    # the model's paper defaults go below the file, --set and flags (s3rec.models.factory)
    name = _model_name(args, model, options)
    try:
        cfg = RunConfig.from_dict(with_model_defaults(with_recipe(options, _recipe_name(args), name), name))
        if args.config:
            check_types(cfg)  # a wrong type in the file is named with the file, before --set and flags apply
    except (ValueError, TypeError) as e:
        raise S3RecError(f"{args.config}: bad option: {e}" if args.config else f"bad option: {e}") from None
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise S3RecError(f"--set expects KEY=VALUE, got {item!r}")
        set_path(cfg, key.strip(), yaml.safe_load(value))
    flags = {
        "model": model or getattr(args, "model", None), "recipe": args.recipe, "seed": args.seed, "init": args.init,
        "data.dataset": args.dataset, "data.path": args.path, "data.data_dir": args.data_dir,
        "data.item_table": args.item_table, "data.user_col": args.user_col, "data.item_col": args.item_col,
        "data.min_count": args.min_count, "data.train_fraction": args.train_fraction,
        "eval.protocol": args.protocol, "eval.negatives": args.negatives,
        "finetune.epochs": args.epochs, "finetune.patience": args.patience, "finetune.loss": args.loss,
        "pretrain.epochs": args.pretrain_epochs,
    }
    for key, value in flags.items():
        if value is not None:
            set_path(cfg, key, value)
    if args.time_col is not None:
        cfg.data.time_col = args.time_col
    if isinstance(cfg.data.time_col, str) and cfg.data.time_col.lower() == "none":  # flag, --set or file alike
        cfg.data.time_col = None
    from s3rec.data.loading import check_data_flags

    flags = ("--user-col", "--item-col", "--time-col", "--attribute-cols", "--min-count")
    check_data_flags(cfg.data, [f for f in flags if getattr(args, f[2:].replace("-", "_"), None) is not None])
    if args.attribute_cols is not None:
        cfg.data.attribute_cols = [c for c in args.attribute_cols.split(",") if c]
    if args.keep_history:
        cfg.eval.exclude_history = False
    check_eval_flags(cfg.eval.protocol, _eval_flags(args))
    if args.objectives is not None:
        chosen = {o.strip().lower() for o in args.objectives.split(",") if o.strip()}
        if not chosen or chosen - set(OBJECTIVES):
            raise S3RecError(f"--objectives takes a comma-separated subset of {','.join(OBJECTIVES)}, got {args.objectives!r}")
        for o in OBJECTIVES:
            if o not in chosen:
                setattr(cfg.pretrain.objectives, o, 0.0)
    check_model_options(cfg)
    return cfg


def _model_name(args: argparse.Namespace, model: str | None, options: dict) -> str:
    """The model a command line asks for, by the precedence of build_config: flag > --set > file > s3rec."""
    return str(model or args.model or _set_value(args, "model") or options.get("model") or "s3rec")


def _recipe_name(args: argparse.Namespace) -> str | None:
    """The recipe a command line asks for (--recipe, else the last --set recipe=...); None: the file's or paper."""
    return args.recipe or _set_value(args, "recipe")


def _set_keys(args: argparse.Namespace) -> list[str]:
    """The option names the --set items give, in order."""
    return [item.partition("=")[0].strip() for item in args.set]


def _set_value(args: argparse.Namespace, key: str):
    """The value the last `--set KEY=...` gives (read as YAML), None without one."""
    values = [v for k, _, v in (item.partition("=") for item in args.set) if k.strip() == key]
    return yaml.safe_load(values[-1]) if values else None


def _eval_flags(args: argparse.Namespace) -> dict:
    """What --negatives and --keep-history set, as EvalConfig fields (config.check_eval_flags reads them)."""
    flags = {"negatives": args.negatives} if args.negatives is not None else {}
    return {**flags, "exclude_history": False} if args.keep_history else flags


_RUN_FLAGS = ("config", "recipe", "seed", "init", "protocol", "negatives", "epochs", "patience", "loss",
              "pretrain_epochs", "objectives", "model")


def cmd_data_info(args: argparse.Namespace) -> None:
    """`s3rec data info`: the data set's statistics."""
    from s3rec.data.loading import load_data
    from s3rec.data.stats import dataset_statistics, format_statistics

    cfg = build_config(args)
    data = load_data(cfg.data, progress=not args.quiet)
    write_out(format_statistics(data.name, dataset_statistics(data)) + "\n")


def cmd_run(args: argparse.Namespace, model: str | None = None) -> None:
    """`s3rec run` (and `finetune`): train, evaluate and write a run directory."""
    from s3rec.pipeline import run
    from s3rec.tensorboard_log import epoch_logger
    from s3rec.training import distributed

    cfg = build_config(args, model)
    if not cfg.pretrains:
        refuse_pretraining_flags(args, "it fine-tunes from --init" if cfg.init is not None else f"{cfg.model} does not pre-train")
    # --tensorboard DIR (under torchrun, rank 0's alone)
    with epoch_logger(getattr(args, "tensorboard", None) if distributed.is_main() else None) as on_epoch:
        run(cfg, out=args.out, resume=args.resume, progress=not args.quiet, log=_logger(args), on_epoch=on_epoch,
            echo=print_out, device=getattr(args, "device", "auto"))


def refuse_pretraining_flags(args: argparse.Namespace, why: str) -> None:
    """S3RecError if the command line sets the pre-training (--objectives, --pretrain-epochs, --set pretrain.*)."""
    given = [flag for flag, value in (("--objectives", args.objectives), ("--pretrain-epochs", args.pretrain_epochs))
             if value is not None]
    given += [f"--set {k}" for k in _set_keys(args) if k.startswith("pretrain.")]
    if given:  # else silently ignored
        raise S3RecError(f"{given[0]} sets the pre-training, and this run has none: {why}")


def cmd_pretrain(args: argparse.Namespace) -> None:
    """`s3rec pretrain`: the four objectives alone; prints the last checkpoint's path."""
    from s3rec.pipeline import pretrain_run
    from s3rec.tensorboard_log import epoch_logger
    from s3rec.training import distributed

    cfg = build_config(args, "s3rec")
    with epoch_logger(args.tensorboard if distributed.is_main() else None) as on_epoch:  # --tensorboard DIR
        path = pretrain_run(cfg, out=args.out, resume=args.resume, progress=not args.quiet, log=_logger(args),
                            on_epoch=on_epoch, device=args.device)
    if distributed.is_main():
        print_out(f"pre-trained checkpoint: {path}")


def cmd_finetune(args: argparse.Namespace) -> None:
    """`s3rec finetune --init CKPT`: `run` of S3-Rec from a pre-training."""
    if not args.init:
        raise S3RecError("finetune needs --init PATH/TO/pretrain-epochN.pt")
    cmd_run(args, "s3rec")


def cmd_reproduce(args: argparse.Namespace) -> None:
    """`s3rec reproduce`: S3-Rec and SASRec over seeds against the paper's table."""
    from s3rec.reproduce import reproduce

    cfg = build_config(args, "s3rec")
    if args.init is not None:
        refuse_pretraining_flags(args, "it fine-tunes from --init")
    seeds = parse_seeds(args.seeds)
    out = Path(args.out or f"runs/reproduce-{cfg.data.label}")
    print_out(reproduce(cfg, seeds, out, init=args.init, progress=not args.quiet, log=_logger(args),
                        jobs=check_jobs(args.jobs)))


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
    given += [f"--set {k}" for k in _set_keys(args) if k in defining]
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
    run_study(cfg, datasets, seeds, out, systems, progress=not args.quiet, log=_logger(args), report_only=args.report,
              jobs=check_jobs(args.jobs))
    print_out((out / "study.md").read_text())


def cmd_evaluate(args: argparse.Namespace) -> None:
    """`s3rec evaluate`: evaluate a finished run again, under another protocol if asked."""
    from s3rec.pipeline import evaluate_run

    overrides = {**({"protocol": args.protocol} if args.protocol is not None else {}), **_eval_flags(args)}
    evaluate_run(args.run, progress=not args.quiet, eval_overrides=overrides or None)


def cmd_recommend(args: argparse.Namespace) -> None:
    """Top-k recommendations in raw ids as JSONL (one object per input); nothing is written on error."""
    import json

    from s3rec.io import atomic_path
    from s3rec.recommend import Recommender, check_k

    check_k(args.k)
    if args.users is not None:
        users = [u.strip() for u in args.users.split(",") if u.strip()]
        if not users:
            raise S3RecError("--users expects comma-separated user ids, e.g. --users u1,u2")
        rec = Recommender.load(args.run)
        results = rec.recommend(users=users, k=args.k, exclude_seen=not args.keep_seen)
    else:
        requests = _read_recommend_input(Path(args.input))
        rec = Recommender.load(args.run)
        queries = []
        for line, key, value in requests:
            try:
                queries.append(rec.user_query(value) if key == "user" else rec.history_query(value))
            except S3RecError as e:
                raise DataError(str(e), args.input, line) from None
        results = rec.rank(queries, args.k, exclude_seen=not args.keep_seen)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
    if args.out is None:
        write_out(text)
        return
    with atomic_path(args.out) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _read_recommend_input(path: Path) -> list[tuple[int, str, object]]:
    """(line, "history" | "user", value) of each non-blank line of a JSONL file of {"history": [...]} / {"user": id}."""
    import json

    stdin = str(path) == "-"
    if stdin:
        path = Path("<stdin>")
    elif not path.exists():  # not is_file(): a pipe (/dev/stdin, <(...)) is no regular file but can be read
        raise DataError("file not found", path)
    elif path.is_dir():
        raise DataError("is a folder, expected a JSONL file", path)
    try:
        data = sys.stdin.buffer.read() if stdin else path.read_bytes()
        lines = data.decode("utf-8-sig").splitlines()  # a byte-order mark is not part of the first line
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"not UTF-8 text ({e.reason} at byte {e.start})", path, line) from None
    requests = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"not valid JSON ({e.msg}, column {e.colno})", path, number) from None
        if not isinstance(obj, dict) or len(obj) != 1 or not {"history", "user"} & set(obj):
            raise DataError('expected an object with one key, {"history": [item ids]} or {"user": user id}', path, number)
        key, value = next(iter(obj.items()))
        if key == "history" and not isinstance(value, list):
            raise DataError(f'"history" must be a list of item ids, got {type(value).__name__}', path, number)
        if key == "user" and (isinstance(value, bool) or not isinstance(value, (str, int))):
            raise DataError(f'"user" must be a string or integer id, got {json.dumps(value)}', path, number)
        requests.append((number, key, value))
    if not requests:
        raise DataError("no requests (the file has no non-blank lines)", path)
    return requests


def _logger(args: argparse.Namespace):
    return console_log(args.quiet)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, like every other error of s3rec (the usage is one --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (usage: {self.prog} --help)\n")


def make_parser() -> argparse.ArgumentParser:
    """The `s3rec` argument parser with every command."""
    parser = _Parser(prog="s3rec", description="Self-supervised sequential recommendation (S3-Rec).")
    parser.add_argument("--version", action="version", version=f"s3rec {s3rec.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="data set tools").add_subparsers(dest="data_command", required=True)
    info = data.add_parser("info", help="print the paper's Table 1 statistics of a data set")
    _add_data_args(info)
    info.add_argument("--quiet", action="store_true")
    info.set_defaults(func=cmd_data_info)
    from s3rec.data.synth_cli import add_synth_parser
    add_synth_parser(data)  # data synth

    p = sub.add_parser("run", help="train (pre-train + fine-tune for s3rec) and evaluate one model")
    _add_run_args(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("pretrain", help="S3-Rec self-supervised pre-training only")
    _add_run_args(p, model_choice=False, pretrain_only=True,
                  out_help="checkpoint folder (default runs/<name>-s3rec-seed<seed>/pretrain, <name> spelt as the data file's)")
    p.set_defaults(func=cmd_pretrain)
    p = sub.add_parser("finetune", help="fine-tune S3-Rec from a pre-trained checkpoint (--init) and evaluate")
    _add_run_args(p, model_choice=False)
    p.set_defaults(func=cmd_finetune)
    from s3rec.device import add_device_options
    add_device_options(sub)  # --device for run, pretrain, finetune
    p = sub.add_parser("reproduce", help="the paper's S3-Rec table: one pre-training, S3-Rec and SASRec over seeds")
    _add_run_args(p, model_choice=False, many_runs=True,
                  out_help="output folder of the runs and reproduction.md (default runs/reproduce-<dataset>)")
    p.add_argument("--seeds", default="1,2,3", help="fine-tuning seeds (default 1,2,3)")
    add_jobs_option(p)
    p.set_defaults(func=cmd_reproduce)
    from s3rec.compare import add_parser as add_compare_parser  # `s3rec compare` (its own module)
    add_compare_parser(sub, _add_run_args)
    p = sub.add_parser("study", help="pre-training under BCE and CE fine-tuning: SASRec/S3-Rec x paper/best recipes over seeds")
    _add_run_args(p, model_choice=False, many_runs=True, out_help="output folder of the runs and tables (default runs/study)")
    p.add_argument("--datasets", help="comma-separated data sets (registry names or files; default --dataset/--data)")
    p.add_argument("--seeds", default="1,2,3", help="fine-tuning seeds (default 1,2,3; one pre-training per data set and recipe)")
    p.add_argument("--systems", help="subset of SASRec-BCE,SASRec-CE,S3-Rec-BCE,S3-Rec-best (default all)")
    p.add_argument("--report", action="store_true",
                   help="train nothing: write the tables from the runs that have finished (e.g. while the study runs)")
    add_jobs_option(p)
    p.set_defaults(func=cmd_study)
    p = sub.add_parser("evaluate", help="re-evaluate a finished run directory")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--protocol", choices=("full", "sampled", "both"),
                   help="another protocol than the run's: writes evaluation-<protocol>.json/.npz into the run directory "
                        "(-<negatives>-negatives, -keep-history added for those options); breakdown reads them")
    p.add_argument("--negatives", choices=("auto", "uniform", "popularity", "file"), help="sampled-protocol negatives")
    p.add_argument("--keep-history", action="store_true", help="do not exclude history items from full ranking")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("recommend", help="top-k recommendations of a finished run, in raw ids (JSONL)")
    p.add_argument("--run", required=True, help="run directory")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--users", help="comma-separated raw user ids of the run's data (their whole sequence is the history)")
    who.add_argument("--input", help='JSONL file ("-": standard input), one {"history": [raw item ids]} or '
                                      '{"user": raw id} per line')
    p.add_argument("--k", type=int, default=10, help="number of items per input (default 10)")
    p.add_argument("--keep-seen", action="store_true", help="do not exclude the history's items")
    p.add_argument("--out", help="output JSONL file (default: stdout)")
    p.set_defaults(func=cmd_recommend)
    add_experiment_command(sub, _add_data_args)  # s3rec.experiments
    add_serve_command(sub)  # s3rec.serve
    add_export_command(sub)  # s3rec.export
    add_breakdown_command(sub)  # s3rec.breakdown
    add_tensorboard_option(sub)  # --tensorboard DIR for run, pretrain, finetune
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 for an S3RecError, printed as one line)."""
    from s3rec.training.distributed import check_command

    args = make_parser().parse_args(argv)
    try:
        check_command(args.command)  # under torchrun only run, pretrain and finetune share the work
        args.func(args)
    except S3RecError as e:
        print(f"s3rec: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of the output went away (`s3rec recommend ... | head`): end quietly
        close_stdout()
        return 141  # as a shell reports a command ended by SIGPIPE
    except OSError as e:  # an output path that is a folder, a file where a folder goes, no permission, a full disk
        where = f"{e.filename}: " if e.filename else ""
        print(f"s3rec: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("s3rec: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
