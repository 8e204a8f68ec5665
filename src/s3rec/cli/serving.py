"""`s3rec recommend`, `serve` and `export`: a finished run's recommendations, through s3rec.recommend,
s3rec.serve and s3rec.export."""

from __future__ import annotations

import argparse
from pathlib import Path

from s3rec.errors import DataError, S3RecError, write_out
from s3rec.export import FORMATS


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register recommend, serve and export."""
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
    _add_serve(sub)
    _add_export(sub)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="HTTP JSON recommendation service over a finished run (FastAPI)",
                       description="Serve POST /recommend, POST /recommend/batch, GET /health and /openapi.json "
                                   "for a finished run (needs s3rec[serve]).")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--quiet", action="store_true", help="log warnings only, not every request")
    p.set_defaults(func=cmd_serve)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a sasrec/s3rec run's scorer as TorchScript or ONNX",
                       description="Export the fine-tuned scorer of a sasrec or s3rec run: (B, L) left-padded int64 "
                                   "internal item ids -> (B, n_items + 1) scores (column 0 = padding). Other models "
                                   "cannot be exported.")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--format", required=True, choices=FORMATS, help="torchscript, or onnx (needs s3rec[onnx])")
    p.add_argument("--out", required=True, help="output file")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> None:
    """`s3rec export`: write the run's scorer as TorchScript or ONNX."""
    from s3rec.export import export_run

    path = export_run(args.run, args.format, args.out)
    print(f"exported {args.format} scorer: {path}")


def cmd_recommend(args: argparse.Namespace) -> None:
    """Top-k recommendations in raw ids as JSONL (one object per input); nothing is written on error."""
    import json

    from s3rec.io import atomic_path
    from s3rec.recommend import Recommender, check_k, read_requests

    check_k(args.k)
    if args.users is not None:
        users = [u.strip() for u in args.users.split(",") if u.strip()]
        if not users:
            raise S3RecError("--users expects comma-separated user ids, e.g. --users u1,u2")
        rec = Recommender.load(args.run)
        results = rec.recommend(users=users, k=args.k, exclude_seen=not args.keep_seen)
    else:
        requests = read_requests(Path(args.input))
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


def cmd_serve(args: argparse.Namespace) -> None:
    """`s3rec serve`: answer HTTP requests until interrupted."""
    from s3rec.serve import serve

    serve(args.run, args.host, args.port, "warning" if args.quiet else "info")
