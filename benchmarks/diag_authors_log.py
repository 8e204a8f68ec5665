"""Fine-tuning loss per epoch of finished runs beside an S3-Rec authors' published fine-tuning log.

The authors' repository publishes, under `reproduce/`, one log per data set and pre-training length
(`Finetune_sample-<data>-<epochs>.txt`): a line `{'epoch': e, 'rec_avg_loss': ...}` per fine-tuning
epoch (0-based; the mean over batches of the per-target BCE, which is `loss` in s3rec's
`finetune_log.jsonl`) and, last, the test figures of the kept model. This prints both curves at the
chosen epochs (1-based, mean over each group's runs, with how many runs reached the epoch) as a
Markdown table (docs/s3rec.md, "Checked against the authors' published fine-tuning logs"). Usage:

    python benchmarks/diag_authors_log.py --log Finetune_sample-Sports_and_Outdoors-100.txt \\
        --runs runs/sports/e50-seed1 runs/sports/e50-seed2 --runs runs/sports/e100-seed1 --names "50 epochs,100 epochs"
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

import numpy as np


def authors_log(path: str | Path) -> tuple[dict[int, float], dict[str, float]]:
    """({1-based epoch: rec_avg_loss}, the test figures of the log's last line) of an authors' log file."""
    losses: dict[int, float] = {}
    test: dict[str, float] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.startswith("{"):
            continue  # the Namespace(...) header and the run's name
        try:
            record = ast.literal_eval(line)
        except (ValueError, SyntaxError):
            raise SystemExit(f"{path}:{number}: not a log record: {line[:80]!r}") from None
        if "rec_avg_loss" in record:
            losses[int(record["epoch"]) + 1] = float(record["rec_avg_loss"])
        else:  # validation lines during training; the last such line is the test of the kept model
            test = {k: float(v) for k, v in record.items() if k != "Epoch"}
    if not losses:
        raise SystemExit(f"{path}: no 'rec_avg_loss' records: not an authors' fine-tuning log")
    return losses, test


def run_losses(run_dir: str | Path) -> dict[int, float]:
    """{epoch: training loss} of an s3rec run directory's finetune_log.jsonl."""
    path = Path(run_dir) / "finetune_log.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path}: not found (a finished or running fine-tuning writes it)")
    return {r["epoch"]: r["loss"] for r in map(json.loads, path.read_text().splitlines()) if "loss" in r}


def loss_table(groups: dict[str, list[dict[int, float]]], authors: dict[int, float], epochs: list[int]) -> str:
    """Markdown rows: each group's mean loss per epoch (runs that reached it), then the authors'."""
    head = "| fine-tuning epoch | " + " | ".join(map(str, epochs)) + " |"
    rows = [head, "|---" * (len(epochs) + 1) + "|"]
    for name, runs in groups.items():
        cells = []
        for e in epochs:
            values = [r[e] for r in runs if e in r]
            n = f" ({len(values)})" if 0 < len(values) < len(runs) else ""
            cells.append(f"{np.mean(values):.4f}{n}" if values else "")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    rows.append("| authors' log | " + " | ".join(f"{authors[e]:.4f}" if e in authors else "" for e in epochs) + " |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--log", required=True, help="an authors' reproduce/Finetune_sample-<data>-<epochs>.txt")
    p.add_argument("--runs", nargs="+", action="append", required=True, help="run directories of one group (repeatable)")
    p.add_argument("--names", help="comma-separated group names (default: the first run directory of each group)")
    p.add_argument("--epochs", default="1,2,5,10,20,30,40,50,60", help="1-based fine-tuning epochs to show")
    args = p.parse_args()
    names = args.names.split(",") if args.names else [g[0] for g in args.runs]
    if len(names) != len(args.runs):
        raise SystemExit(f"--names gives {len(names)} names for {len(args.runs)} groups of --runs")
    authors, test = authors_log(args.log)
    groups = {name: [run_losses(d) for d in dirs] for name, dirs in zip(names, args.runs)}
    print(loss_table(groups, authors, [int(e) for e in args.epochs.split(",")]))
    if test:
        print("\nauthors' test figures (their last line): " + ", ".join(f"{k} {v:.4f}" for k, v in test.items()))


if __name__ == "__main__":
    main()
