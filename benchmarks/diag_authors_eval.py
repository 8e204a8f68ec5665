"""Full ranking of finished runs under s3rec's protocol and under the S3-Rec authors' evaluation.

The authors' code (trainers.py, full sort) scores every row of the item embedding table, padding
and [mask] included, and sets the scores of the user's history to 0 instead of excluding them: a
history item then outranks a target whose score is negative. This re-ranks the test (or validation)
split of sasrec / s3rec run directories both ways and says how far the two disagree (docs/s3rec.md,
"Evaluation"). Usage:

    python benchmarks/diag_authors_eval.py runs/beauty-s3rec runs/beauty-sasrec [--split test]
"""

from __future__ import annotations

import argparse

import torch

from s3rec.data.batching import gather_ranges
from s3rec.evaluation.metrics import per_user_metrics, summarise
from s3rec.evaluation.ranking import full_ranking
from s3rec.models.sasrec import SASRec
from s3rec.pipeline import load_run


def authors_ranks(model: SASRec, split, which: str, max_len: int, block: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """(0-based rank, score) of each user's target as the authors rank it: history scored 0, every embedding row a candidate."""
    offsets, hist_items = split.history_index(which)
    targets = split.target(which)
    ranks = torch.empty(split.n_users, dtype=torch.long)
    target_scores = torch.empty(split.n_users)
    for users in torch.arange(split.n_users).split(block):
        with torch.no_grad():
            F_t = model.final_state(split.histories(which, max_len, users))  # (B, d)
            scores = F_t @ model.encoder.M_I.weight.T  # (B, n_items + 2): padding and [mask] rows too
        s_target = scores[torch.arange(len(users)), targets[users]]
        seen, rows = gather_ranges(hist_items, offsets[users], offsets[users + 1] - offsets[users])
        scores[rows, seen] = 0.0
        ranks[users] = (scores > s_target.unsqueeze(1)).sum(1)
        target_scores[users] = s_target
    return ranks, target_scores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run directories of sasrec or s3rec models")
    p.add_argument("--split", default="test", choices=("valid", "test"))
    args = p.parse_args()
    for run_dir in args.runs:
        cfg, _, split, model = load_run(run_dir, progress=False)
        if not isinstance(model, SASRec):
            raise SystemExit(f"{run_dir}: a {cfg.model} run; this diagnostic needs a sasrec or s3rec run")
        model.eval()
        ours = full_ranking(model.score_all, split, args.split, cfg.encoder.max_len).ranks
        theirs, s_target = authors_ranks(model, split, args.split, cfg.encoder.max_len)
        print(f"{run_dir} ({args.split}, {split.n_users} users; target score < 0 for {(s_target < 0).float().mean():.1%})")
        for name, r in (("s3rec", ours), ("authors", theirs)):
            m = summarise(per_user_metrics(r))
            print(f"  {name:<8} HR@10 {m['HR@10']:.4f}  NDCG@10 {m['NDCG@10']:.4f}  HR@20 {m['HR@20']:.4f}  MRR {m['MRR']:.4f}")
        top = (ours < 20) | (theirs < 20)
        print(f"  users whose rank differs: {(ours != theirs).sum()} of {split.n_users}; within the top 20 of either: {(top & (ours != theirs)).sum()}")


if __name__ == "__main__":
    main()
