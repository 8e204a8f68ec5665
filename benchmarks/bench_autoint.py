"""AutoInt's full ranking (`score_all`) and sampled scoring (`score`) per (user, item) pair, by chunk size, same run.

Beauty-sized vocabularies with random weights; only a slice of the catalogue is ranked (the cost per
pair does not depend on the catalogue size). Alternates the chunk sizes `--rounds` times.

    OMP_NUM_THREADS=1 python benchmarks/bench_autoint.py --users 256 --items 2000
"""

from __future__ import annotations

import argparse
import time

import torch

from s3rec.models import autoint
from s3rec.models.autoint import AutoInt

BEAUTY = {"n_items": 12101, "n_users": 22363, "n_attributes": 1221}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=256, help="users per evaluation batch")
    p.add_argument("--items", type=int, default=2000, help="items ranked per user (a slice of Beauty's catalogue)")
    p.add_argument("--candidates", type=int, default=100, help="candidates per user in score (target + 99)")
    p.add_argument("--pairs", default="128,512,2048,65536", help="pairs per chunk to compare")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    torch.manual_seed(0)
    offsets = torch.arange(0, 2 * BEAUTY["n_items"] + 1, 2)  # two attributes per item
    values = torch.randint(1, BEAUTY["n_attributes"] + 1, (int(offsets[-1]),))
    model = AutoInt(**BEAUTY, attr_offsets=offsets, attr_values=values).eval()
    model.n_items = args.items  # score_all ranks items 0..args.items
    hist = torch.randint(1, BEAUTY["n_items"] + 1, (args.users, 50))
    users = torch.randint(0, BEAUTY["n_users"], (args.users,))
    cands = torch.randint(1, BEAUTY["n_items"] + 1, (args.users, args.candidates))
    sizes = [int(x) for x in args.pairs.split(",")]
    print(f"{args.users} users x {args.items + 1} items, {torch.get_num_threads()} thread(s); µs per pair")
    full = {n: [] for n in sizes}
    sampled = {n: [] for n in sizes}
    with torch.no_grad():
        for _ in range(args.rounds):
            for n in sizes:
                autoint.PAIRS_PER_CHUNK["cpu"] = n  # the default chunk of both score_all and score
                start = time.perf_counter()
                model.score_all(hist, users)
                full[n].append((time.perf_counter() - start) / (args.users * (args.items + 1)) * 1e6)
                start = time.perf_counter()
                model.score(hist, cands, users)
                sampled[n].append((time.perf_counter() - start) / cands.numel() * 1e6)
    base = min(full[sizes[-1]])
    for n in sizes:
        print(f"{n:>6} pairs per chunk: score_all {min(full[n]):6.2f}  score {min(sampled[n]):6.2f}"
              f"  (score_all speed-up vs {sizes[-1]}: x{base / min(full[n]):.2f})")


if __name__ == "__main__":
    main()
