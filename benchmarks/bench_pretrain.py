"""Seconds per S3-Rec pre-training epoch: s3rec's fast path against the straightforward form, same run.

Straightforward form (what the authors' code computes): every batch padded to max_len, random
batches, torch's nn.Dropout and torch's default (unfused) Adam. s3rec default: the same random batches,
each encoded on its packed real tokens (attention per length group; `PackedRows`), byte-mask dropout.
s3rec padded x4: the previous default, each batch run as at most 4 length-sorted micro-batches cut
where padding is least, each trimmed to its longest sample (gradients summed: the same math).
s3rec equal split: the same with 4 micro-batches of equal row count (an older default).
s3rec full SP views: padded x4 with SP's three views encoded at every position in the last block
(SP reads only their last position). The s3rec variants use s3rec's fused Adam. s3rec bucketed: batches of similar-length samples (faster, changes batch composition). All run the
same samples, objectives and optimiser; each is timed on `--batches` batches and extrapolated to the
epoch. Also reports the achieved model FLOP rate ("useful" counts four full encodings of every real
token, the work as the paper writes it; the last-query shortcut computes less than that).

    S3REC_DATA_DIR=../shared/data/s3rec python benchmarks/bench_pretrain.py --dataset beauty --batches 100
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from torch import nn

from s3rec.data.loading import DataConfig, load_data
from s3rec.data.splits import LeaveOneOut
from s3rec.models import encoder as encoder_module
from s3rec.models.dropout import FastDropout
from s3rec.models.encoder import PACK_MIN_PADDING, EncoderConfig
from s3rec.models import s3rec as s3rec_module
from s3rec.models.s3rec import S3RecPretrainer
from s3rec.training import batches as batching
from s3rec.training.batches import TrainingSequences, batch_order, micro_batches, pretrain_batch
from s3rec.training.optim import adam

from bench_finetune import LEAST_PADDING, equal_groups  # noqa: E402  (benchmarks/ is the script's folder)


def encoder_flops(tokens: int, w: int, cfg: EncoderConfig) -> float:
    """Forward FLOPs of the encoder on `tokens` positions of width-w sequences (matmuls only)."""
    d = cfg.d
    per_token = cfg.n_layers * (2 * d * 3 * d + 2 * d * d + 2 * 2 * d * 4 * d + 2 * 2 * w * d)
    return tokens * per_token


def last_query_flops(rows: int, w: int, cfg: EncoderConfig) -> float:
    """Forward FLOPs of width-w rows of which only the last position's output is computed."""
    d = cfg.d
    full_layers = encoder_flops(rows * w, w, dataclasses.replace(cfg, n_layers=cfg.n_layers - 1))
    last = rows * (w * 2 * d * 2 * d + 2 * d * d + 2 * 2 * w * d + 2 * d * d + 2 * 2 * d * 4 * d)
    return full_layers + last


def packed_flops(items: torch.Tensor, n_full: int, cfg: EncoderConfig) -> float:
    """Forward FLOPs of `encode_views` on packed rows: token-wise work on real tokens only, attention
    over each row's own length (a lower bound: attention runs padded to its group's width)."""
    d, L = cfg.d, cfg.n_layers
    n = (items != 0).sum(1).double()
    token = 2 * d * 3 * d + 2 * d * d + 2 * 2 * d * 4 * d  # projections and feed-forward per token
    full = float((n[:n_full] * (L * token + L * 2 * 2 * n[:n_full] * d)).sum())
    sp = n[n_full:]
    sp_flops = (L - 1) * (sp * token + 2 * 2 * sp * sp * d) + sp * 2 * d * 2 * d + token - 2 * d * 2 * d + 2 * 2 * sp * d
    return full + float(sp_flops.sum())


def full_pass_views(encoder, items, n_full):
    """Every view encoded at every position (no last-query shortcut for SP's views)."""
    F_t = encoder(items, causal=False)
    return F_t[:n_full], F_t[n_full:, -1]


def time_epoch(model, seqs, samples, batches, max_len, padded, n_batches, gen, parts=1, full_views=True,
               packed=False) -> tuple[float, float, int]:
    """(seconds per epoch extrapolated, model GFLOP per epoch extrapolated, batches timed)."""
    user, start, end = samples
    opt = torch.optim.Adam(model.parameters(), lr=1e-3) if padded else adam(model.parameters(), 1e-3)
    for idx in batches[-3:]:  # warm-up (untimed): the first steps of a process pay one-off costs
        b = pretrain_batch(seqs, user[idx], start[idx], end[idx], 0.2, gen)
        model(b)["loss"].backward()
    model.zero_grad(set_to_none=True)
    timed = batches[:n_batches]
    flops = 0.0
    t0 = time.perf_counter()
    for idx in timed:
        b = pretrain_batch(seqs, user[idx], start[idx], end[idx], 0.2, gen)
        if padded:
            b = {k: nn.functional.pad(v, (max_len - v.size(1), 0)) if v.dim() == 2 else v for k, v in b.items()}
        opt.zero_grad()
        for p in micro_batches(b, parts) if parts > 1 else [b]:
            rows, sp_rows, w = p["items"].size(0), 3 * p["sp_context"].size(0), p["items"].size(1)
            if packed:  # forward + backward ~ 3x forward
                views = torch.cat([p["masked"], p["sp_context"], p["sp_pos"], p["sp_neg"]])
                flops += 3 * packed_flops(views, rows, model.enc_cfg)
            else:
                flops += 3 * encoder_flops(rows * w, w, model.enc_cfg)
                flops += 3 * (encoder_flops(sp_rows * w, w, model.enc_cfg) if full_views
                              else last_query_flops(sp_rows, w, model.enc_cfg))
            (model(p)["loss"] * len(p["items"]) / len(b["items"])).backward()
        opt.step()
    seconds = time.perf_counter() - t0
    scale = len(batches) / len(timed)
    return seconds * scale, flops * scale / 1e9, len(timed)


def pretraining_setup(dataset: str):
    """(data, encoder config, training sequences, every-prefix samples) of a registry data set."""
    data = load_data(DataConfig(dataset=dataset), progress=False)
    split = LeaveOneOut.from_data(data)
    cfg = EncoderConfig()
    seqs = TrainingSequences(*split.train_sequences(), data.n_items)
    return data, cfg, seqs, seqs.prefix_samples(cfg.max_len)


def new_pretrainer(data, cfg: EncoderConfig) -> S3RecPretrainer:
    """S3-Rec's pre-training model for `data`."""
    return S3RecPretrainer(data.n_items, data.n_attributes, torch.from_numpy(data.attr_offsets),
                           torch.from_numpy(data.attr_values), cfg)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--batches", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--variants", default="", help="comma-separated subset of the variants (default all)")
    args = p.parse_args()
    data, cfg, seqs, samples = pretraining_setup(args.dataset)
    lengths = samples[2] - samples[1]
    real_tokens = int(lengths.sum())
    results = {}
    variants = (("straightforward", True, False, 1), ("s3rec equal split", False, False, 4),
                ("s3rec full SP views", False, False, 4), ("s3rec padded x4", False, False, 4),
                ("s3rec default", False, False, 1), ("s3rec bucketed", False, True, 1))
    encode_views = s3rec_module.encode_views
    for name, padded, bucket, parts in variants:
        if args.variants and name not in args.variants.split(","):
            continue
        batching.length_groups = equal_groups if name == "s3rec equal split" else LEAST_PADDING
        full_views = padded or name in ("s3rec equal split", "s3rec full SP views")
        s3rec_module.encode_views = full_pass_views if full_views else encode_views
        packed = name == "s3rec default"  # random batches are mostly padding: encode_views packs them
        encoder_module.PACK_MIN_PADDING = PACK_MIN_PADDING if packed else 1.0
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(0)
        model = new_pretrainer(data, cfg)
        if padded:  # torch's own dropout, as a plain implementation would use
            for m in list(model.modules()):
                for attr, child in list(m.named_children()):
                    if isinstance(child, FastDropout):
                        setattr(m, attr, nn.Dropout(cfg.dropout))
        batches = batch_order(lengths, args.batch_size, gen, bucket)
        results[name] = time_epoch(model, seqs, samples, batches, cfg.max_len, padded, args.batches, gen, parts,
                                   full_views, packed)
    useful = 4 * 3 * encoder_flops(real_tokens, 25, cfg) / 1e9  # four encodings of every real token, fwd+bwd
    print(f"{args.dataset}: {len(lengths):,} prefix samples, {real_tokens:,} real tokens, batch {args.batch_size}, "
          f"torch threads={torch.get_num_threads()}, timed {args.batches} batches each")
    for name, (sec, gflop, n) in results.items():
        print(f"  {name:<16} {sec:8.1f} s/epoch  computed {gflop:7.0f} GFLOP ({gflop / sec:5.1f} GFLOP/s), "
              f"useful {useful:5.0f} GFLOP ({useful / sec:5.1f} GFLOP/s)")
    base_name = next(iter(results))
    base = results[base_name][0]
    print(f"  speed-up vs {base_name}: " + ", ".join(f"{n} {base / r[0]:.2f}x" for n, r in results.items() if n != base_name))


if __name__ == "__main__":
    main()
