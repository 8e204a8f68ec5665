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
    """(B,) rank of scores[b, target_col[b]]: how many other columns score >= it; UNREACHABLE for -inf targets."""
    target = scores.gather(1, target_col.unsqueeze(1))  # (B, 1)
    ranks = (scores >= target).sum(1) - 1
    return torch.where(target.squeeze(1) == -torch.inf, UNREACHABLE, ranks)


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
