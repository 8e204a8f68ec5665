"""Wall-clock of an experiment with --jobs N against --jobs 1 (the baseline), measured in the same run.

The experiment is `s3rec experiment ablation` (five pre-trainings, six fine-tunings) on a data set at
a short schedule, into two fresh folders; the CSVs of the two are compared number by number.

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


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "s3rec", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def numbers(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "run_dir"} for row in csv.DictReader(f)]


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
        same = numbers(Path(tmp, "one", "ablation.csv")) == numbers(Path(tmp, "many", "ablation.csv"))
    print(f"ablation on {a.dataset} ({a.pretrain_epochs} pre-training epochs, at most {a.epochs} fine-tuning epochs): "
          f"--jobs 1 {one:.0f} s, --jobs {a.jobs} {many:.0f} s, speed-up x{one / many:.2f}; "
          f"CSV numbers {'equal' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
