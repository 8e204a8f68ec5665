"""Validation-only sweep of fine-tuning options on top of `--recipe best` (docs/recipe.md).

One pre-training (the recipe's, --pretrain-epochs bucketed epochs, seed 1) is shared; each option is
fine-tuned from it with every seed, and the table reports the best **validation** NDCG@10 (full
ranking) per option, mean ± std over seeds, plus the paired difference to the recipe as shipped.
Test numbers are not read. Resumable: finished runs in --out are reused.

    S3REC_DATA_DIR=../shared/data/s3rec OMP_NUM_THREADS=1 python benchmarks/sweep_finetune_options.py \
        --dataset lastfm --seeds 1,2 --out runs/sweep-lastfm
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from s3rec.cli import main as cli

OPTIONS = {  # run folder name -> extra --set options on top of --recipe best
    "as-shipped": [],
    "label-smoothing-0.1": ["finetune.label_smoothing=0.1"],
    "label-smoothing-0.2": ["finetune.label_smoothing=0.2"],
    "lr-linear": ["finetune.lr_schedule=linear"],
    "adamw-wd-0.01": ["finetune.optimizer=adamw", "finetune.weight_decay=0.01"],
    # fine-tuning only (the pre-training keeps the paper's 0.5): eSASRec's SASRec uses 0.2
    "dropout-0.2": ["encoder.dropout=0.2", "encoder.attn_dropout=0.2"],
    # same trajectory as shipped, longer wait: does the CE recipe stop early on a plateau?
    "patience-20": ["finetune.patience=20"],
    # eSASRec's loss: softmax over the target and 256 shared uniform negatives instead of every item
    "sampled-softmax-256": ["finetune.loss=sampled-softmax", "finetune.n_negatives=256"],
}


def call(argv: list[str]) -> None:
    """Run one s3rec command in this process; stop the sweep if it fails."""
    if cli(argv) != 0:
        raise SystemExit(f"s3rec {' '.join(argv)}: failed")


def best_valid(run_dir: Path) -> float:
    return json.loads((run_dir / "summary.json").read_text())["best_valid"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="lastfm")
    p.add_argument("--seeds", default="1,2")
    p.add_argument("--pretrain-epochs", type=int, default=10)
    p.add_argument("--options", default="", help=f"comma-separated subset of {', '.join(OPTIONS)} (default all)")
    p.add_argument("--out", default="runs/sweep")
    args = p.parse_args()
    out, seeds = Path(args.out), [int(s) for s in args.seeds.split(",")]
    pre = out / "pretrain"
    checkpoint = pre / f"pretrain-epoch{args.pretrain_epochs}.pt"
    if not checkpoint.exists():
        call(["pretrain", "--dataset", args.dataset, "--recipe", "best", "--pretrain-epochs", str(args.pretrain_epochs),
              "--set", "pretrain.bucket=true", "--seed", "1", "--out", str(pre), "--quiet", "--resume"])
    chosen = [o for o in OPTIONS if not args.options or o in args.options.split(",")]
    values: dict[str, list[float]] = {}
    for name in chosen:
        for seed in seeds:
            run_dir = out / f"{name}-seed{seed}"
            if not (run_dir / "summary.json").exists():
                sets = [a for s in OPTIONS[name] for a in ("--set", s)]
                call(["run", "--model", "s3rec", "--recipe", "best", "--dataset", args.dataset, "--init", str(checkpoint),
                      "--seed", str(seed), *sets, "--out", str(run_dir), "--quiet", "--resume"])
            values.setdefault(name, []).append(best_valid(run_dir))
        print(f"{name}: {values[name]}", flush=True)
    base = values.get("as-shipped")
    print(f"\n{args.dataset}, best validation NDCG@10 (full ranking), seeds {seeds}\n")
    print("| option | valid NDCG@10 | vs as shipped (mean of per-seed differences) |")
    print("|---|---|---|")
    for name, v in values.items():
        spread = statistics.stdev(v) if len(v) > 1 else 0.0
        diff = f"{statistics.mean(a - b for a, b in zip(v, base)):+.4f}" if base and name != "as-shipped" else ""
        print(f"| {name} | {statistics.mean(v):.4f} ± {spread:.4f} | {diff} |")


if __name__ == "__main__":
    main()
