"""Cost of `s3rec.recommend.top_k` (ties by ascending id) against torch.topk (ties in any order), same run.

Scores of one recommendation batch (users x catalogue): continuous (no ties, the models' usual case)
and small integers (ties everywhere, as PopRec's counts); the score matmul of that batch for scale.

    python benchmarks/bench_topk.py --users 1024 --items 12102 --k 10
"""

from __future__ import annotations

import argparse
import time

import torch

from s3rec.recommend import top_k


def seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=1024)
    p.add_argument("--items", type=int, default=12102, help="catalogue size (default: Beauty's 12,101 + padding)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--rounds", type=int, default=2, help="alternate the variants this many times")
    args = p.parse_args()
    gen = torch.Generator().manual_seed(0)
    cases = {"continuous": torch.randn(args.users, args.items, generator=gen),
             "ties everywhere": torch.randint(0, 50, (args.users, args.items), generator=gen).float()}
    hidden, table = torch.randn(args.users, args.d, generator=gen), torch.randn(args.items, args.d, generator=gen)
    print(f"{args.users} users x {args.items} items, k = {args.k}, {torch.get_num_threads()} thread(s); ms per batch")
    print(f"score matmul (users x d) @ (d x items): {1e3 * seconds(lambda: hidden @ table.T, args.repeats):.1f}")
    for name, scores in cases.items():
        for r in range(args.rounds):
            base = seconds(lambda: torch.topk(scores, args.k, dim=1), args.repeats)
            ours = seconds(lambda: top_k(scores, args.k), args.repeats)
            print(f"{name:16s} round {r + 1}: torch.topk {1e3 * base:7.1f}   top_k {1e3 * ours:7.1f}   "
                  f"ratio {ours / base:.2f}x")


if __name__ == "__main__":
    main()
