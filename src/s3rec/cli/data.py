"""`s3rec data info` and `s3rec data synth`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from s3rec.cli.options import add_data_args, build_config
from s3rec.errors import S3RecError, write_out

_STRUCTURE = """\
planted structure (s3rec.data.synthetic):
  topics      item i belongs to topic i mod T (T = --topics)
  attributes  each item has its topic's attribute (1..T) and, with probability 1/2, one random extra
              attribute (T+1..A: noise)
  successor   each item has one fixed successor in its topic (a random cycle per topic)
  users       a favourite topic each; first item from it; each next item is the previous item's
              successor with probability --p-next, else a random item of the favourite topic with
              probability --p-topic, else a uniform random item
  lengths     5 + Poisson(L - 5) interactions per user
About --p-next of all transitions go to the planted successor (chance: 1/M); the run prints the share.

output (--out NAME.<suffix>; --format defaults to the suffix):
  s3rec    NAME.txt + NAME_item2attributes.json       recbole  NAME.inter + NAME.item
  csv, tsv, parquet   NAME.<suffix> (user_id, item_id, timestamp) + NAME_items.<suffix> (item_id, categories)
Ids: users 0..N-1 (1..N in S3-Rec text), items 1..M, attributes 1..A; the timestamp is the position in the
user's sequence. Every file is written atomically. Read it back with `--data NAME.<suffix>` (tables: add
`--item-table NAME_items.<suffix>`; `--min-count 1` keeps every item).

example: s3rec data synth --users 1000000 --items 100000 --avg-len 20 --attributes 1000 --out big.parquet
"""


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `data info` and `data synth` under `data`."""
    data = sub.add_parser("data", help="data set tools").add_subparsers(dest="data_command", required=True)
    info = data.add_parser("info", help="print the paper's Table 1 statistics of a data set")
    add_data_args(info)
    info.add_argument("--quiet", action="store_true", help="no download progress bar")
    info.set_defaults(func=cmd_data_info)
    add_synth_parser(data)


def cmd_data_info(args: argparse.Namespace) -> None:
    """`s3rec data info`: the data set's statistics."""
    from s3rec.data.loading import load_data
    from s3rec.data.stats import dataset_statistics, format_statistics

    cfg = build_config(args)
    data = load_data(cfg.data, progress=not args.quiet)
    write_out(format_statistics(data.name, dataset_statistics(data)) + "\n")


def add_synth_parser(data_sub: argparse._SubParsersAction) -> None:
    """Register `data synth` under the `data` subcommand."""
    from s3rec.data.writers import FORMATS

    p = data_sub.add_parser("synth", help="write a synthetic data set with planted sequential and attribute structure",
                            description="Write a synthetic data set with planted sequential and attribute structure.",
                            epilog=_STRUCTURE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, required=True, help="number of users N")
    p.add_argument("--items", type=int, required=True, help="number of items M (>= 2 x --topics)")
    p.add_argument("--avg-len", type=float, default=20.0, help="mean interactions per user L (>= 5, default 20)")
    p.add_argument("--attributes", type=int, default=None, help="number of attributes A (>= --topics; default 2 x --topics)")
    p.add_argument("--topics", type=int, default=20, help="number of topics T (default 20)")
    p.add_argument("--p-next", type=float, default=0.6, help="probability of the planted successor (default 0.6)")
    p.add_argument("--p-topic", type=float, default=0.3, help="probability of a favourite-topic item (default 0.3)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="interactions file to write (its suffix picks the format)")
    p.add_argument("--format", choices=list(FORMATS), help="output format (default: from the --out suffix)")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    p.set_defaults(func=cmd_synth)


def check_args(args: argparse.Namespace) -> tuple[str, int]:
    """(format, attributes) after checking every option; bad options are one-line S3RecErrors."""
    from s3rec.data.writers import FORMATS

    if args.users < 1:
        raise S3RecError(f"--users must be at least 1, got {args.users}")
    if args.topics < 1:
        raise S3RecError(f"--topics must be at least 1, got {args.topics}")
    if args.items < 2 * args.topics:
        raise S3RecError(f"--items must be at least 2 x --topics = {2 * args.topics}, got {args.items}")
    if not args.avg_len >= 5:  # also rejects nan
        raise S3RecError(f"--avg-len must be at least 5 (every user gets 5 + Poisson(L - 5) items), got {args.avg_len}")
    attributes = 2 * args.topics if args.attributes is None else args.attributes
    if attributes < args.topics:
        raise S3RecError(f"--attributes must be at least --topics = {args.topics}, got {attributes}")
    if not (0 <= args.p_next <= 1 and 0 <= args.p_topic <= 1 and args.p_next + args.p_topic <= 1):
        raise S3RecError(f"--p-next and --p-topic must be in [0, 1] with a sum <= 1, got {args.p_next} and {args.p_topic}")
    if args.seed < 0:
        raise S3RecError(f"--seed must be a non-negative integer, got {args.seed}")
    out = Path(args.out)
    by_suffix = {s: f for f, s in FORMATS.items()}
    fmt = args.format or by_suffix.get(out.suffix.lower())
    if fmt is None:
        raise S3RecError(f"--out {out}: cannot tell the format from the suffix {out.suffix!r}; use one of "
                         f"{', '.join(by_suffix)} or give --format")
    if out.suffix.lower() != FORMATS[fmt]:
        raise S3RecError(f"--out {out}: --format {fmt} writes a {FORMATS[fmt]} file")
    if out.is_dir():
        raise S3RecError(f"--out {out} is a directory; give a file name such as {out / ('synthetic' + FORMATS[fmt])}")
    return fmt, attributes


def cmd_synth(args: argparse.Namespace) -> None:
    """Generate, write, and report the planted successor share."""
    from s3rec.data.writers import write_data
    from s3rec.data.synthetic import make_synthetic, successor_share

    fmt, attributes = check_args(args)
    t0 = time.perf_counter()
    data = make_synthetic(n_users=args.users, n_items=args.items, avg_len=args.avg_len, n_attributes=attributes,
                          n_topics=args.topics, p_next=args.p_next, p_topic=args.p_topic, seed=args.seed,
                          name=Path(args.out).stem)
    t1 = time.perf_counter()
    paths = write_data(data, args.out, fmt)
    t2 = time.perf_counter()
    if not args.quiet:
        share = successor_share(data.offsets, data.items, data.extra["successor"])
        print(f"{data.n_users:,} users, {data.n_items:,} items, {len(data.items):,} interactions, "
              f"{attributes:,} attributes; {share:.1%} of transitions go to the planted successor "
              f"[generated in {t1 - t0:.1f} s, written in {t2 - t1:.1f} s]")
        for p in paths:
            print(f"wrote {p}")
