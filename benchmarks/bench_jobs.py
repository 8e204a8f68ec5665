"""Wall-clock of an experiment with --jobs N against --jobs 1 (the baseline), measured in the same run.

The experiment is `s3rec experiment ablation` (five pre-trainings, six fine-tunings) on a data set at
a short schedule, into two fresh folders; the test NDCG@10 of their CSVs are compared. With
OMP_NUM_THREADS=T, --jobs 1 runs each job on T threads and --jobs N on T // N: with T = 1 both
use one thread per run, so the numbers must be equal; with T = N they may round differently.

    S3REC_DATA_DIR=../shared/data/s3rec python benchmarks/bench_jobs.py --dataset lastfm --jobs 2
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "s3rec", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def ndcg(path: Path) -> list[float]:
    with open(path, newline="") as f:
        return [float(row["NDCG@10"]) for row in csv.DictReader(f)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="lastfm")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--pretrain-epochs", default="1")
    p.add_argument("--epochs", default="5")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = ["experiment", "ablation", "--dataset", a.dataset, "--pretrain-epochs", a.pretrain_epochs,
                "--epochs", a.epochs, "--set", "pretrain.bucket=true", "--quiet"]
        one = timed([*base, "--out", f"{tmp}/one"])
        many = timed([*base, "--out", f"{tmp}/many", "--jobs", str(a.jobs)])
        a1, an = ndcg(Path(tmp, "one", "ablation.csv")), ndcg(Path(tmp, "many", "ablation.csv"))
    diff = max(abs(x - y) for x, y in zip(a1, an))
    print(f"ablation on {a.dataset} ({a.pretrain_epochs} pre-training epochs, at most {a.epochs} fine-tuning epochs, "
          f"{torch.get_num_threads()} torch threads): --jobs 1 {one:.0f} s, --jobs {a.jobs} {many:.0f} s, "
          f"speed-up x{one / many:.2f}; test NDCG@10 of the {len(a1)} CSV rows "
          f"{'equal' if a1 == an else f'differ by up to {diff:.4f}'}")


if __name__ == "__main__":
    main()
