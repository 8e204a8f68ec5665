"""Seconds per fine-tuning epoch: whole random batches against length-sorted micro-batches.

Both run the same random batches (the faithful recipe) and the same losses; micro-batches split each
batch into at most `parts` row groups of similar length, each trimmed to its longest input, and sum the
gradients (exact: tests/test_batches.py). `parts=K` cuts where padding is least (s3rec's
`length_groups`); `equal=K` cuts into K groups of equal row count (the previous default), for comparison. Variants are timed round-robin on the same batches, so
other load on the machine hits them alike; each epoch is extrapolated from `--batches` batches.

    S3REC_DATA_DIR=../shared/data/s3rec python benchmarks/bench_finetune.py --dataset beauty --batches 30
    ... bench_finetune.py --model gru4rec --losses bce --parts 1,8      # any model whose batches split (its defaults)
"""

from __future__ import annotations

import argparse
import time

import torch

from s3rec.data.loading import DataConfig, load_data
from s3rec.data.splits import LeaveOneOut
from s3rec.models.factory import build_model, default_config
from s3rec.training import batches as batching
from s3rec.training.batches import TrainingSequences, batch_order, finetune_micro_batches
from s3rec.training.optim import adam

LEAST_PADDING = batching.length_groups


def equal_groups(items: torch.Tensor, parts: int) -> list[tuple[torch.Tensor, int]]:
    """The previous split: `parts` groups of equal row count in length order."""
    lengths = (items != 0).sum(1)
    groups = torch.argsort(lengths, stable=True).tensor_split(min(parts, len(lengths)))
    return [(rows, max(int(lengths[rows].max()), 1)) for rows in groups]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--model", default="sasrec", help="sasrec (S3-Rec's fine-tuning), sasrecf, fdsa, gru4rec, gru4recf, bert4rec")
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--losses", default="bce,ce")
    p.add_argument("--parts", default="1,equal=8,4,8", help="variants: K (least padding) or equal=K")
    args = p.parse_args()
    split = LeaveOneOut.from_data(load_data(DataConfig(dataset=args.dataset), progress=False))
    seqs = TrainingSequences(*split.train_sequences(), split.n_items)
    lengths = (seqs.ends - seqs.starts - 1).clamp(min=1, max=50)
    gen = torch.Generator().manual_seed(0)
    order = batch_order(lengths, 256, gen, False)
    parts_list = args.parts.split(",")
    print(f"{args.model} on {args.dataset}: {seqs.n_users:,} rows, {int(lengths.sum()):,} target positions, {len(order)} batches of 256, "
          f"torch threads={torch.get_num_threads()}, {args.batches} batches timed per variant")
    encoder = default_config(args.model).encoder  # the model's paper defaults, as `s3rec run --model M`
    for loss in args.losses.split(",") if args.model != "bert4rec" else ["cloze"]:
        torch.manual_seed(0)
        models = {k: build_model(args.model, split, encoder, loss=loss) for k in parts_list}
        opts = {k: adam(m.parameters(), 1e-3) for k, m in models.items()}
        seconds = dict.fromkeys(parts_list, 0.0)
        for idx in order[: args.batches]:
            batch = models[parts_list[0]].training_batch(seqs, idx, 50, gen)
            for k in parts_list:  # round-robin: the same batch through every variant
                equal = k.startswith("equal=")
                batching.length_groups = equal_groups if equal else LEAST_PADDING
                t0 = time.perf_counter()
                opts[k].zero_grad(set_to_none=True)
                for part, share in finetune_micro_batches(batch, int(k.removeprefix("equal="))):
                    (models[k].loss(part) * share).backward()
                opts[k].step()
                seconds[k] += time.perf_counter() - t0
        scale = len(order) / args.batches
        base = seconds[parts_list[0]] * scale
        for k in parts_list:
            epoch = seconds[k] * scale
            print(f"  {loss:<4} parts={k:<8} {epoch:6.1f} s/epoch  ({base / epoch:4.2f}x vs parts={parts_list[0]})")


if __name__ == "__main__":
    main()
