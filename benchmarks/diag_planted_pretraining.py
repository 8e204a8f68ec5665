"""Why pre-training hurts on the planted-successor set of tests/test_learning.py (docs/s3rec.md).

Pre-trains S3-Rec with several objective sets on that data (500 users, 150 items in 10 topics, the
test's encoder and 8-epoch schedule), then fine-tunes SASRec (BCE) from each: the whole checkpoint,
and the checkpoint with its attention blocks re-initialised (only embeddings kept). Also prints the
item table's geometry after pre-training: mean row norm and effective rank (exp of the entropy of
the centred singular-value spectrum; random N(0, 0.02) init of this size: ~29 of 32).

    OMP_NUM_THREADS=1 python benchmarks/diag_planted_pretraining.py --epochs 40 --out /tmp/diag-planted

With --pretrain-epochs N --every K each variant is pre-trained N epochs and fine-tuned from its
checkpoints after K, 2K, ... N epochs (does longer pre-training undo the collapse?).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from s3rec.config import EvalConfig
from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.models.encoder import EncoderConfig, init_weights
from s3rec.transfer import load_transferred
from s3rec.models.s3rec import ObjectiveConfig
from s3rec.models.sasrec import SASRec
from s3rec.pipeline import evaluate
from s3rec.training.checkpoint import load_checkpoint
from s3rec.training.finetune import FinetuneConfig, finetune
from s3rec.training.pretrain import PretrainConfig, pretrain

ENC = EncoderConfig(d=32, n_layers=2, n_heads=2, max_len=20, dropout=0.2, attn_dropout=0.2)  # the test's
VARIANTS = {
    "all four (default)": {},
    "all four, softmax MIP": {"mip_form": "softmax"},
    "MIP + SP (pairwise)": {"aap": 0.0, "map": 0.0},
    "MIP only, softmax": {"aap": 0.0, "map": 0.0, "sp": 0.0, "mip_form": "softmax"},
    "AAP + MAP": {"mip": 0.0, "sp": 0.0},
}


def effective_rank(table: torch.Tensor) -> float:
    """exp(entropy) of the normalised squared singular values of the centred rows."""
    s = torch.linalg.svdvals(table - table.mean(0))
    p = s**2 / (s**2).sum()
    return float(torch.exp(-(p * p.clamp_min(1e-12).log()).sum()))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=40, help="fine-tuning epochs (2 optimiser steps each)")
    p.add_argument("--out", default="/tmp/diag-planted")
    p.add_argument("--pretrain-epochs", type=int, default=8, help="pre-training epochs (the test's 8)")
    p.add_argument("--every", type=int, default=0, help="also fine-tune from every K-th epoch's checkpoint")
    p.add_argument("--variants", default=";".join(VARIANTS), help="names of VARIANTS, separated by ;")
    args = p.parse_args()
    split = LeaveOneOut.from_data(make_synthetic(n_users=500, n_items=150, avg_len=14, n_attributes=30,
                                                 n_topics=10, seed=0))
    full = EvalConfig(protocol="full")

    def fine_tuned_ndcg(name: str, init: Path | None, blocks_too: bool = True) -> float:
        model = SASRec(split.n_items, ENC)
        if init is not None:
            load_transferred(model, init, split.data)
            if not blocks_too:
                for block in model.encoder.blocks:
                    init_weights(block, ENC.init_std)
        ndcg = lambda m: evaluate(m, split, "valid", full, ENC.max_len, None)["full"].metrics["NDCG@10"]  # noqa: E731
        finetune(model, split, FinetuneConfig(epochs=args.epochs, patience=args.epochs), ENC.max_len, seed=0,
                 validate=lambda m: {"NDCG@10": ndcg(m)}, out_dir=Path(args.out) / name / "finetune",
                 progress=False, log=lambda *a: None)
        return ndcg(model)

    print(f"valid NDCG@10 after {args.epochs} fine-tuning epochs; random init: {fine_tuned_ndcg('scratch', None):.3f}")
    print("| pre-training | epochs | item rows: mean norm | effective rank | whole checkpoint | embeddings only |")
    print("|---|---|---|---|---|---|")
    every = args.every or args.pretrain_epochs
    for name in args.variants.split(";"):
        folder = Path(args.out) / name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
        pretrain(split, PretrainConfig(epochs=args.pretrain_epochs, batch_size=64, lr=5e-3, save_every=every,
                                       objectives=ObjectiveConfig(**VARIANTS[name])),
                 ENC, folder, seed=0, resume=True, progress=False, log=lambda *a: None)
        for epoch in sorted({*range(every, args.pretrain_epochs + 1, every), args.pretrain_epochs}):
            ckpt = folder / f"pretrain-epoch{epoch}.pt"
            table = load_checkpoint(ckpt)["state_dict"]["encoder.M_I.weight"][1 : split.n_items + 1]
            whole = fine_tuned_ndcg(f"{folder.name}-{epoch}-whole", ckpt)
            embeddings = fine_tuned_ndcg(f"{folder.name}-{epoch}-embeddings", ckpt, blocks_too=False)
            print(f"| {name} | {epoch} | {table.norm(dim=1).mean():.2f} | {effective_rank(table):.1f} | {whole:.3f} "
                  f"| {embeddings:.3f} |", flush=True)
    scale = torch.randn(split.n_items, ENC.d, generator=torch.Generator().manual_seed(0)) * ENC.init_std
    print(f"random init table: mean norm {scale.norm(dim=1).mean():.2f}, effective rank {effective_rank(scale):.1f}")


if __name__ == "__main__":
    main()
