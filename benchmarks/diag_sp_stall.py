"""How the faithful SP loss dies in length-bucketed pre-training: its scores step by step.

Runs the first steps of S3-Rec pre-training (the paper recipe's objectives and settings) for each seed,
with the default random batches and with length buckets (`pretrain.bucket=true`), and records for every
step the SP scores s+ = x^T W pos and s- = x^T W neg of the batch (docs/s3rec.md, "The faithful double
sigmoid can switch SP off"), and the size of the gradient W_SP gets (only SP trains W_SP; Adam's eps is
1e-8). Usage:

    python benchmarks/diag_sp_stall.py --dataset beauty --steps 3500 --every 250 --seeds 1,2,3
"""

from __future__ import annotations

import argparse
import tempfile

import torch

from s3rec.data.loading import DataConfig, load_data
from s3rec.data.splits import LeaveOneOut
from s3rec.models.encoder import EncoderConfig
from s3rec.models.s3rec import S3RecPretrainer as S3Rec
from s3rec.training import pretrain as pretrain_module
from s3rec.training.pretrain import PretrainConfig, pretrain


class Enough(Exception):
    """Raised from the hook once the wanted number of steps is recorded."""


FORWARD, PAIR_LOSS = S3Rec.forward, S3Rec.pair_loss


def record_sp(steps: int) -> list[dict]:
    """Patch S3Rec so each forward's SP pair_loss call (the second, after MIP) is recorded; returns the list."""
    rows: list[dict] = []

    def counted_forward(self, batch):
        self._calls = 0
        self._batch = batch
        return FORWARD(self, batch)

    def recorded_pair_loss(self, s_pos, s_neg):
        self._calls += 1
        loss = PAIR_LOSS(self, s_pos, s_neg)
        if self._calls == 2:  # MIP first, then SP
            if len(rows) == steps:
                raise Enough
            if not getattr(self, "_hooked", False):  # the gradient W_SP gets from this step's backward
                self.W_SP.weight.register_hook(lambda g: rows[-1].update(grad=float(g.pow(2).mean().sqrt())))
                self._hooked = True
            n = (self._batch["items"] != 0).sum(1).float()
            s_pos, s_neg = s_pos.detach(), s_neg.detach()
            gap = torch.sigmoid(s_pos) - torch.sigmoid(s_neg)
            rows.append({"length": float(n.mean()), "samples": len(n), "sp_samples": len(s_pos),
                         "s_pos": float(s_pos.median()), "s_neg": float(s_neg.median()),
                         "gap": float(gap.abs().mean()),
                         "saturated": float(((s_pos.abs() > 7) & (s_neg.abs() > 7)).float().mean()),
                         "loss": float(loss.detach()) / len(s_pos)})
        return loss

    S3Rec.forward, S3Rec.pair_loss = counted_forward, recorded_pair_loss
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--seeds", default="1", help="comma-separated pre-training seeds")
    ap.add_argument("--every", type=int, default=25, help="print one line per this many steps")
    ap.add_argument("--batching", default="random,buckets", help="comma-separated: random, buckets")
    ap.add_argument("--eps", type=float, default=1e-8, help="Adam's eps (torch's default 1e-8; 1e-10 puts it where "
                    "the authors' loss, summed over the batch of 100 rather than averaged, has it)")
    args = ap.parse_args()
    pretrain_module.adam = lambda params, lr, wd: torch.optim.Adam(params, lr=lr, weight_decay=wd, eps=args.eps,
                                                                   fused=True)  # as training.optim.adam, but eps
    split = LeaveOneOut.from_data(load_data(DataConfig(dataset=args.dataset), progress=False))
    modes = [m == "buckets" for m in args.batching.split(",")]
    for seed, bucket in ((int(s), b) for s in args.seeds.split(",") for b in modes):
        rows = record_sp(args.steps)
        with tempfile.TemporaryDirectory() as out:
            try:
                # epochs enough for the steps (Beauty: 1,503 batches an epoch); Enough ends it early
                cfg = PretrainConfig(epochs=args.steps // 1000 + 1, bucket=bucket)
                pretrain(split, cfg, EncoderConfig(), out, seed, progress=False, log=lambda *a: None, device="cpu")
            except Enough:
                pass
        print(f"\n{args.dataset}, {'length buckets' if bucket else 'random batches'}, seed {seed}, Adam eps {args.eps:g}: "
              "per window of steps, mean over its steps")
        print("steps | mean length | samples | SP samples | median s+ | median s- | mean |σ(s+)-σ(s-)| | both |s| > 7 | "
              "median RMS of W_SP's gradient | SP loss")
        for i in range(0, len(rows), args.every):
            w = rows[i:i + args.every]
            mean = {k: sum(r[k] for r in w) / len(w) for k in w[0] if k != "grad"}
            grad = sorted(r.get("grad", 0.0) for r in w)[len(w) // 2]
            print(f"{i + 1}-{i + len(w)} | {mean['length']:.1f} | {mean['samples']:.0f} | {mean['sp_samples']:.0f} | "
                  f"{mean['s_pos']:+.2f} | {mean['s_neg']:+.2f} | {mean['gap']:.2e} | {mean['saturated']:.0%} | {grad:.1e} | "
                  f"{mean['loss']:.4f}")


if __name__ == "__main__":
    main()
