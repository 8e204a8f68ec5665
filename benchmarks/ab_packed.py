"""Interleaved A/B of how a pre-training batch is encoded: forward + backward on the same batches.

padded: every view padded to its micro-batch's longest sample and encoded at every position (the
straightforward form of the encoder; SP then reads the last position of its three views).
packed: s3rec's `encode_views`: real tokens only outside attention, attention per length group,
and only the last query of SP's views in the last block. `xK` runs each batch as K length-sorted
micro-batches (gradients summed: the same math). Rounds alternate the variants in one process on
identical batches, so the medians share the machine's load; on a noisy shared VM this is steadier
than timing whole epochs one after another.

    S3REC_DATA_DIR=../shared/data/s3rec OMP_NUM_THREADS=1 python benchmarks/ab_packed.py --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from s3rec.models import s3rec as s3rec_module
from s3rec.training.batches import batch_order, micro_batches, pretrain_batch

from bench_pretrain import full_pass_views, new_pretrainer, pretraining_setup  # noqa: E402  (benchmarks/ is the script's folder)

VARIANTS = {"padded x4": (full_pass_views, 4), "padded x1": (full_pass_views, 1), "packed x4": (s3rec_module.encode_views, 4),
            "packed x2": (s3rec_module.encode_views, 2), "packed x1": (s3rec_module.encode_views, 1)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--bucket", action="store_true", help="length-bucketed batches instead of random ones")
    p.add_argument("--variants", default="padded x4,packed x4,packed x2,packed x1",
                   help=f"comma-separated, the first is the baseline; any of: {', '.join(VARIANTS)}")
    args = p.parse_args()
    data, cfg, seqs, (user, start, end) = pretraining_setup(args.dataset)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = new_pretrainer(data, cfg)
    order = batch_order(end - start, 100, gen, args.bucket)[: args.batches]
    batches = [pretrain_batch(seqs, user[i], start[i], end[i], 0.2, gen) for i in order]
    variants = {name: VARIANTS[name] for name in args.variants.split(",")}
    split = {parts: [micro_batches(b, parts) for b in batches] for _, parts in variants.values()}

    def run(views, parts) -> float:
        s3rec_module.encode_views = views
        t0 = time.perf_counter()
        for micro in split[parts]:
            model.zero_grad(set_to_none=True)
            for part in micro:
                model(part)["loss"].backward()
        return time.perf_counter() - t0

    for variant in variants.values():  # warm-up
        run(*variant)
    seconds = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, variant in variants.items():
            seconds[name].append(run(*variant))
    kind = "bucketed" if args.bucket else "random"
    print(f"{args.dataset}: {args.batches} {kind} batches of 100, forward + backward, "
          f"torch threads={torch.get_num_threads()}, {args.rounds} interleaved rounds")
    base_name = next(iter(seconds))
    base = statistics.median(seconds[base_name])
    for name, s in seconds.items():
        m = statistics.median(s)
        print(f"  {name:<10} median {m:6.2f} s  {base / m:5.2f}x vs {base_name}  ({', '.join(f'{x:.2f}' for x in s)})")


if __name__ == "__main__":
    main()
