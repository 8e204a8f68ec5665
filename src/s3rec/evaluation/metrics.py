"""Ranking metrics from the 0-based rank of the target among the candidates.

Ties never favour the target: rank = number of *other* candidates scoring >= the target.
"""

from __future__ import annotations

import torch

HR_KS = (1, 5, 10, 20)
NDCG_KS = (5, 10, 20)
METRIC_NAMES = tuple(f"HR@{k}" for k in HR_KS) + tuple(f"NDCG@{k}" for k in NDCG_KS) + ("MRR",)
UNREACHABLE = 2**62  # rank of a target that was excluded (-inf score): it can never be hit


def target_rank(scores: torch.Tensor, target_col: torch.Tensor) -> torch.Tensor:
    """(B,) rank of scores[b, target_col[b]]: how many other columns score >= it; UNREACHABLE for -inf or nan targets."""
    target = scores.gather(1, target_col.unsqueeze(1))  # (B, 1)
    ranks = count_true(scores >= target) - 1
    # a nan target compares False with everything: it would rank first, a hit, with NDCG 1/log2(1) = inf
    lost = (target.squeeze(1) == -torch.inf) | target.squeeze(1).isnan()
    return torch.where(lost, UNREACHABLE, ranks)


def count_true(mask: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """(B,) int64 number of True entries in each row of a (B, N) boolean mask.

    Summed as bytes within chunks of `chunk` <= 255 columns, then across chunks: a plain bool sum
    converts every element to int64 first, which made it ~10x slower on CPU (docs/speed.md).
    """
    B, N = mask.shape
    k = N // chunk
    u = mask.contiguous().view(torch.uint8)
    counts = u[:, k * chunk :].sum(1, dtype=torch.int64)
    if k:
        counts += u[:, : k * chunk].view(B, k, chunk).sum(-1, dtype=torch.uint8).sum(-1, dtype=torch.int64)
    return counts


def per_user_metrics(ranks: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-user HR@k, NDCG@k and reciprocal rank from 0-based ranks."""
    ranks = ranks.double()
    out = {f"HR@{k}": (ranks < k).double() for k in HR_KS}
    gain = 1.0 / torch.log2(ranks + 2.0)
    out.update({f"NDCG@{k}": torch.where(ranks < k, gain, 0.0) for k in NDCG_KS})
    out["MRR"] = torch.where(ranks < UNREACHABLE, 1.0 / (ranks + 1.0), 0.0)
    return out


def summarise(per_user: dict[str, torch.Tensor]) -> dict[str, float]:
    """Mean of every per-user metric."""
    return {name: float(v.mean()) for name, v in per_user.items()}
