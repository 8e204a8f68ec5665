"""`s3rec run`, `pretrain`, `finetune` and `evaluate`: one run, through s3rec.pipeline."""

from __future__ import annotations

import argparse

from s3rec.cli.options import add_run_args, add_training_options, build_config, eval_flags, logger, refuse_pretraining_flags
from s3rec.errors import S3RecError, print_out


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register run, pretrain, finetune and evaluate."""
    p = sub.add_parser("run", help="train (pre-train + fine-tune for s3rec) and evaluate one model")
    add_run_args(p)
    add_training_options(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("pretrain", help="S3-Rec self-supervised pre-training only")
    add_run_args(p, model_choice=False, pretrain_only=True,
                 out_help="checkpoint folder (default runs/<name>-s3rec-seed<seed>/pretrain, <name> spelt as the data file's)")
    add_training_options(p)
    p.set_defaults(func=cmd_pretrain)
    p = sub.add_parser("finetune", help="fine-tune S3-Rec from a pre-trained checkpoint (--init) and evaluate")
    add_run_args(p, model_choice=False)
    add_training_options(p)
    p.set_defaults(func=cmd_finetune)
    p = sub.add_parser("evaluate", help="re-evaluate a finished run directory")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--protocol", choices=("full", "sampled", "both"),
                   help="another protocol than the run's: writes evaluation-<protocol>.json/.npz into the run directory "
                        "(-<negatives>-negatives, -keep-history added for those options); breakdown reads them")
    p.add_argument("--negatives", choices=("auto", "uniform", "popularity", "file"), help="sampled-protocol negatives")
    p.add_argument("--keep-history", action="store_true", help="do not exclude history items from full ranking")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate)


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
        run(cfg, out=args.out, resume=args.resume, progress=not args.quiet, log=logger(args), on_epoch=on_epoch,
            echo=print_out, device=getattr(args, "device", "auto"))


def cmd_pretrain(args: argparse.Namespace) -> None:
    """`s3rec pretrain`: the four objectives alone; prints the last checkpoint's path."""
    from s3rec.pipeline import pretrain_run
    from s3rec.tensorboard_log import epoch_logger
    from s3rec.training import distributed

    cfg = build_config(args, "s3rec")
    with epoch_logger(args.tensorboard if distributed.is_main() else None) as on_epoch:  # --tensorboard DIR
        path = pretrain_run(cfg, out=args.out, resume=args.resume, progress=not args.quiet, log=logger(args),
                            on_epoch=on_epoch, device=args.device)
    if distributed.is_main():
        print_out(f"pre-trained checkpoint: {path}")


def cmd_finetune(args: argparse.Namespace) -> None:
    """`s3rec finetune --init CKPT`: `run` of S3-Rec from a pre-training."""
    if not args.init:
        raise S3RecError("finetune needs --init PATH/TO/pretrain-epochN.pt")
    cmd_run(args, "s3rec")


def cmd_evaluate(args: argparse.Namespace) -> None:
    """`s3rec evaluate`: evaluate a finished run again, under another protocol if asked."""
    from s3rec.pipeline import evaluate_run

    overrides = {**({"protocol": args.protocol} if args.protocol is not None else {}), **eval_flags(args)}
    evaluate_run(args.run, progress=not args.quiet, eval_overrides=overrides or None)
