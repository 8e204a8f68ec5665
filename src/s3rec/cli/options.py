"""The options the run commands share, and how a command line becomes a RunConfig (build_config)."""

from __future__ import annotations

import argparse

import yaml

from s3rec.config import RunConfig, check_eval_flags, check_types, config_from_options, read_options_file, set_path
from s3rec.errors import S3RecError, console_log
from s3rec.models.factory import check_model_options
from s3rec.models.s3rec import OBJECTIVES
from s3rec.recipes import RECIPES


def add_data_args(p: argparse.ArgumentParser) -> None:
    """--dataset or --data and how to read a data file."""
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


def add_run_args(p: argparse.ArgumentParser, model_choice: bool = True, pretrain_only: bool = False,
                  out_help: str = "run directory (default runs/<name>-<model>-seed<seed>, <name> spelt as the data file's, e.g. runs/LastFM-sasrec-seed42)",
                  many_runs: bool = False) -> None:
    """The options of one run; `many_runs` (reproduce, compare, study): no --seed (they take --seeds) and no
    --resume (they resume every unfinished run themselves)."""
    add_data_args(p)
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
        cfg = config_from_options(options, name, _recipe_name(args))
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
    from s3rec.data.loading import check_data_flags, column_list

    flags = ("--user-col", "--item-col", "--time-col", "--attribute-cols", "--min-count")
    check_data_flags(cfg.data, [f for f in flags if getattr(args, f[2:].replace("-", "_"), None) is not None])
    if args.attribute_cols is not None:
        cfg.data.attribute_cols = column_list(args.attribute_cols)
    if args.keep_history:
        cfg.eval.exclude_history = False
    check_eval_flags(cfg.eval.protocol, eval_flags(args))
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
    return str(model or args.model or set_value(args, "model") or options.get("model") or "s3rec")


def _recipe_name(args: argparse.Namespace) -> str | None:
    """The recipe a command line asks for (--recipe, else the last --set recipe=...); None: the file's or paper."""
    return args.recipe or set_value(args, "recipe")


def set_keys(args: argparse.Namespace) -> list[str]:
    """The option names the --set items give, in order."""
    return [item.partition("=")[0].strip() for item in args.set]


def set_value(args: argparse.Namespace, key: str):
    """The value the last `--set KEY=...` gives (read as YAML), None without one."""
    values = [v for k, _, v in (item.partition("=") for item in args.set) if k.strip() == key]
    return yaml.safe_load(values[-1]) if values else None


def eval_flags(args: argparse.Namespace) -> dict:
    """What --negatives and --keep-history set, as EvalConfig fields (config.check_eval_flags reads them)."""
    flags = {"negatives": args.negatives} if args.negatives is not None else {}
    return {**flags, "exclude_history": False} if args.keep_history else flags


_RUN_FLAGS = ("config", "recipe", "seed", "init", "protocol", "negatives", "epochs", "patience", "loss",
              "pretrain_epochs", "objectives", "model")


def refuse_pretraining_flags(args: argparse.Namespace, why: str) -> None:
    """S3RecError if the command line sets the pre-training (--objectives, --pretrain-epochs, --set pretrain.*)."""
    given = [flag for flag, value in (("--objectives", args.objectives), ("--pretrain-epochs", args.pretrain_epochs))
             if value is not None]
    given += [f"--set {k}" for k in set_keys(args) if k.startswith("pretrain.")]
    if given:  # else silently ignored
        raise S3RecError(f"{given[0]} sets the pre-training, and this run has none: {why}")


def logger(args: argparse.Namespace):
    """The `log` of a command: progress lines, or under --quiet warnings only."""
    return console_log(args.quiet)


def add_jobs_option(parser) -> None:
    """`--jobs N` of the multi-run commands (reproduce, compare, study, experiment)."""
    parser.add_argument("--jobs", type=int, default=1, help="pre-trainings and runs done at once, each in its own "
                        "process with its share of the threads (default 1); same seeds and options as --jobs 1")


def add_training_options(p: argparse.ArgumentParser) -> None:
    """--device and --tensorboard, for the commands that train (run, pretrain, finetune)."""
    p.add_argument("--device", default="auto", help="auto (CUDA when present; default), cpu, cuda or cuda:N; "
                   "on a GPU, training runs under bfloat16 autocast")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="write per-epoch losses and validation metrics as TensorBoard event files to DIR")


def parse_seeds(text: str) -> list[int]:
    """--seeds: comma-separated integers, at least one, none twice (a repeat would fake a spread)."""
    seeds = ints(text, "--seeds")
    if not seeds or len(set(seeds)) != len(seeds):
        raise S3RecError(f"--seeds needs at least one seed and no repeats, got {text!r}")
    return seeds


def ints(text: str, option: str) -> list[int]:
    """A comma-separated list of integers, or a one-line S3RecError naming the option."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise S3RecError(f"{option} takes comma-separated integers, got {text!r}") from None


def floats(text: str, option: str) -> list[float]:
    """A comma-separated list of numbers, or a one-line S3RecError naming the option."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise S3RecError(f"{option} takes comma-separated numbers, got {text!r}") from None
