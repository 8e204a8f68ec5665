"""Command-line interface (`s3rec COMMAND`): a thin layer over the Python API.

    options.py     the options the run commands share, and build_config (command line -> RunConfig)
    data.py        data info, data synth
    train.py       run, pretrain, finetune, evaluate
    studies.py     reproduce, compare, study, breakdown
    experiment.py  experiment ablation | transfer | sparsity | pretrain-epochs | convergence
    serving.py     recommend, serve, export
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

import s3rec
from s3rec.cli import data, experiment, serving, studies, train
from s3rec.errors import S3RecError, close_stdout


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, like every other error of s3rec (the usage is one --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (usage: {self.prog} --help)\n")


def make_parser() -> argparse.ArgumentParser:
    """The `s3rec` argument parser with every command."""
    parser = _Parser(prog="s3rec", description="Self-supervised sequential recommendation (S3-Rec).")
    parser.add_argument("--version", action="version", version=f"s3rec {s3rec.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for commands in (data, train, studies, experiment, serving):
        commands.add_commands(sub)
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
