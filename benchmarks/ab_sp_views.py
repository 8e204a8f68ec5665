"""Interleaved A/B of SP's last-query shortcut: pre-training forward + backward on the same batches.

A: every view encoded at every position (SP then reads the last position of its three views).
B: s3rec's default, `encode_views`: the last block computes only the last query of SP's views.
Rounds alternate A and B in one process on identical micro-batches, so the medians share the
machine's load; on a noisy shared VM this is steadier than timing whole epochs one after another.

    S3REC_DATA_DIR=../shared/data/s3rec OMP_NUM_THREADS=1 python benchmarks/ab_sp_views.py --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from s3rec.models import s3rec as s3rec_module
from s3rec.training.batches import batch_order, micro_batches, pretrain_batch

from bench_pretrain import full_pass_views, new_pretrainer, pretraining_setup  # noqa: E402  (benchmarks/ is the script's folder)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    data, cfg, seqs, (user, start, end) = pretraining_setup(args.dataset)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = new_pretrainer(data, cfg)
    order = batch_order(end - start, 100, gen, False)[: args.batches]
    parts = [list(micro_batches(pretrain_batch(seqs, user[i], start[i], end[i], 0.2, gen), 4)) for i in order]
    variants = {"full views": full_pass_views, "last query (default)": s3rec_module.encode_views}

    def run(views) -> float:
        s3rec_module.encode_views = views
        t0 = time.perf_counter()
        for micro in parts:
            model.zero_grad(set_to_none=True)
            for part in micro:
                model(part)["loss"].backward()
        return time.perf_counter() - t0

    for views in variants.values():  # warm-up
        run(views)
    seconds = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, views in variants.items():
            seconds[name].append(run(views))
    print(f"{args.dataset}: {args.batches} batches of 100, forward + backward, torch threads={torch.get_num_threads()}, "
          f"{args.rounds} interleaved rounds")
    for name, s in seconds.items():
        print(f"  {name:<22} median {statistics.median(s):6.2f} s  ({', '.join(f'{x:.2f}' for x in s)})")
    a, b = (statistics.median(s) for s in seconds.values())
    print(f"  speed-up of the last-query shortcut: {a / b:.2f}x")


if __name__ == "__main__":
    main()
