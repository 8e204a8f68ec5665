"""Validation NDCG@10 per fine-tuning epoch on planted synthetic data, for several data sizes.

Why a one-epoch SASRec at 1M users ranks worse than at 100k (docs/speed.md): BCE fine-tuning peaks
after a number of *steps*, and an epoch at 1M users is 3,907 of them. Usage:

    OMP_NUM_THREADS=1 python benchmarks/diag_finetune_steps.py --users 100000 --epochs 5

Validation is full ranking of a random sample of users (history not excluded), printed per epoch.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.evaluation.metrics import per_user_metrics, summarise, target_rank
from s3rec.models.encoder import EncoderConfig
from s3rec.models.sasrec import SASRec
from s3rec.training.finetune import FinetuneConfig, finetune


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--valid-users", type=int, default=3000, help="users sampled for the validation ranking")
    p.add_argument("--valid-every", type=int, default=0, help="also validate every N steps (finetune.valid_every)")
    p.add_argument("--loss", default="bce")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    data = make_synthetic(n_users=args.users, n_items=args.items, avg_len=20, n_attributes=1000, seed=args.seed)
    split = LeaveOneOut.from_data(data)
    users = torch.randperm(split.n_users, generator=torch.Generator().manual_seed(0))[: args.valid_users]
    targets = split.target("valid")[users]

    def validate(model) -> dict[str, float]:
        with torch.no_grad():
            scores = model.score_all(split.histories("valid", 50, users), users).float()
        scores[:, 0] = -torch.inf
        return summarise(per_user_metrics(target_rank(scores, targets)))

    torch.manual_seed(0)
    model = SASRec(data.n_items, EncoderConfig(), loss=args.loss)
    cfg = FinetuneConfig(epochs=args.epochs, patience=10**6, loss=args.loss, valid_every=args.valid_every)
    steps = -(-args.users // cfg.batch_size)
    print(f"{args.users:,} users x {args.items:,} items: {steps:,} steps per epoch", flush=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = finetune(model, split, cfg, 50, args.seed, validate, tmp, progress=False, log=lambda *a, **k: None)
    for r in result.history:
        print(f"epoch {r['epoch']:>8}  step {r['step']:>7,}  loss {r['loss']:.4f}  valid NDCG@10 {r['valid_NDCG@10']:.4f}")
    print(f"{time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
