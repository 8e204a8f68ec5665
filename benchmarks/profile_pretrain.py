"""Where a pre-training step's time goes: torch.profiler over a few default steps (random batches,
each one packed pass, as the trainer runs them).

    S3REC_DATA_DIR=../shared/data/s3rec OMP_NUM_THREADS=1 python benchmarks/profile_pretrain.py --dataset beauty

Prints seconds per batch (extrapolated to the epoch) and the operators by self CPU time; the matmul
share (aten::mm, addmm, bmm) against the rest is the answer to "how far from the matmul rate, and why".
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from s3rec.training.batches import batch_order, micro_batches, pretrain_batch
from s3rec.training.optim import adam

from bench_pretrain import new_pretrainer, pretraining_setup  # noqa: E402  (benchmarks/ is the script's folder)

MATMULS = ("aten::mm", "aten::addmm", "aten::bmm")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--rows", type=int, default=25, help="operators to list")
    args = p.parse_args()
    data, cfg, seqs, (user, start, end) = pretraining_setup(args.dataset)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = new_pretrainer(data, cfg)
    opt = adam(model.parameters(), 1e-3)
    batches = batch_order(end - start, 100, gen, False)

    def step(idx: torch.Tensor) -> None:
        b = pretrain_batch(seqs, user[idx], start[idx], end[idx], 0.2, gen)
        opt.zero_grad()
        for part in micro_batches(b, 1):  # the trainer's default for S3-Rec's encoder (pretrain.micro_batches auto)
            (model(part)["loss"] * len(part["items"]) / len(b["items"])).backward()
        opt.step()

    for idx in batches[:5]:  # warm-up
        step(idx)
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for idx in batches[5 : 5 + args.batches]:
            step(idx)
    per_batch = (time.perf_counter() - t0) / args.batches
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    matmul = sum(e.self_cpu_time_total for e in events if e.key in MATMULS)
    print(f"{args.dataset}: {data.n_items:,} items, {data.n_attributes} attributes, {len(user):,} samples, "
          f"torch threads={torch.get_num_threads()}")
    print(f"{per_batch:.3f} s per batch of 100 under the profiler -> {per_batch * len(batches):.0f} s per epoch "
          f"({len(batches)} batches); matmuls {matmul / total:.0%} of self CPU time")
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
