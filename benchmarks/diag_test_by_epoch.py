"""Validation and test full-ranking metrics after every fine-tuning epoch, without early stopping.

Which epoch the early-stopping rule picks decides much of a BCE run's test figure. This trains for a
fixed number of epochs (patience off), ranks both the validation and the test split after each one,
writes the trajectory to `--out` (JSON lines), and prints which epoch, and which test figures, each
selection rule would have given on the same trajectory: validation NDCG@10 or NDCG@20 with
patience 10 (s3rec's and the authors' rule), NDCG@10 with patience 20, or the last epoch. Reading
the test split every epoch is for diagnosis only; no selection here should be tuned on it. Usage:

    OMP_NUM_THREADS=1 python benchmarks/diag_test_by_epoch.py --dataset beauty --model sasrec --seed 1 \\
        --epochs 150 --out runs/diag-beauty-sasrec-1.jsonl [--init runs/pt/pretrain-epoch150.pt]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import torch

from s3rec.config import RunConfig
from s3rec.data.loading import load_data
from s3rec.data.splits import LeaveOneOut
from s3rec.io import write_json
from s3rec.models.factory import build_model
from s3rec.transfer import load_transferred
from s3rec.pipeline import evaluate
from s3rec.training.finetune import finetune

WATCH = ("HR@10", "NDCG@10", "HR@20", "NDCG@20")


def select(log: list[dict], key: str, patience: int) -> dict:
    """The record early stopping on `key` with `patience` keeps (the trajectory does not depend on when it stops)."""
    best, bad = log[0], 0
    for rec in log[1:]:
        if rec[key] > best[key]:
            best, bad = rec, 0
        else:
            bad += 1
            if bad >= patience:
                break
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--model", default="sasrec", choices=("sasrec", "s3rec"))
    p.add_argument("--init", help="pre-training checkpoint (s3rec)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--out", required=True, help="JSON-lines file for the trajectory")
    args = p.parse_args()
    if (args.model == "s3rec") != (args.init is not None):
        raise SystemExit("--init is required with --model s3rec and only then")

    cfg = RunConfig(model=args.model, seed=args.seed, init=args.init)
    cfg.data = dataclasses.replace(cfg.data, dataset=args.dataset)
    cfg.finetune = dataclasses.replace(cfg.finetune, epochs=args.epochs, patience=args.epochs)
    cfg.eval = dataclasses.replace(cfg.eval, protocol="full")
    torch.manual_seed(cfg.seed)
    data = load_data(cfg.data, progress=False)
    split = LeaveOneOut.from_data(data)
    model = build_model(cfg.model, split, cfg.encoder, cfg.finetune.loss, cfg.finetune.n_negatives,
                        cfg.finetune.label_smoothing)
    if args.init:
        load_transferred(model, args.init, data)
    max_len = cfg.encoder.max_len

    def validate(m) -> dict[str, float]:
        valid = evaluate(m, split, "valid", cfg.eval, max_len, None)["full"].metrics
        test = evaluate(m, split, "test", cfg.eval, max_len, None)["full"].metrics
        return {**{k: valid[k] for k in WATCH}, **{f"test_{k}": test[k] for k in WATCH}}

    log: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        finetune(model, split, cfg.finetune, max_len, cfg.seed, validate, tmp, progress=False,
                 log=lambda *a, **k: None, on_epoch=log.append)
    Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in log))
    write_json(Path(args.out).with_suffix(".config.json"), {**cfg.to_dict(), "epochs_logged": len(log)})
    print("rule                          epoch  valid NDCG@10  test HR@10  test NDCG@10  test HR@20")
    rules = [("valid NDCG@10, patience 10", select(log, "valid_NDCG@10", 10)),
             ("valid NDCG@20, patience 10", select(log, "valid_NDCG@20", 10)),
             ("valid NDCG@10, patience 20", select(log, "valid_NDCG@10", 20)),
             ("last epoch", log[-1])]
    for name, r in rules:
        print(f"{name:<29} {r['epoch']:>5}  {r['valid_NDCG@10']:.4f}         {r['valid_test_HR@10']:.4f}      "
              f"{r['valid_test_NDCG@10']:.4f}        {r['valid_test_HR@20']:.4f}")


if __name__ == "__main__":
    main()
