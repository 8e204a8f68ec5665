"""Negatives for the sampled protocol: K items per user that the user never interacted with."""

from __future__ import annotations

import numpy as np
import torch

from s3rec.data.splits import LeaveOneOut
from s3rec.errors import S3RecError


def sample_eval_negatives(split: LeaveOneOut, k: int = 99, how: str = "uniform", seed: int = 12345) -> torch.Tensor:
    """(U, k) distinct negatives per user, never in the user's sequence (test item included).

    how: 'uniform' (every unseen item equally likely) or 'popularity' (proportional to training
    counts + 1, so every item can be drawn). Seeded: the same seed gives the same negatives.
    """
    n_items, n_users = split.n_items, split.n_users
    if int(split.data.lengths.max()) + k > n_items:
        raise S3RecError(f"sampled protocol: cannot draw {k} distinct unseen negatives from {n_items} items for the "
                         f"longest user ({int(split.data.lengths.max())} items); use fewer "
                         "(eval.n_negatives: --set eval.n_negatives=K when running) or --protocol full")
    if how == "uniform":
        weights = torch.ones(n_items + 1, dtype=torch.double)
    elif how == "popularity":
        weights = torch.from_numpy(split.train_counts().astype(np.float64)) + 1.0
    else:
        raise ValueError(f"unknown negative sampling {how!r} (uniform or popularity)")
    weights[0] = 0.0
    seen = split.all_index()
    gen = torch.Generator().manual_seed(seed)
    out = -torch.arange(1, k + 1).repeat(n_users, 1)  # unfilled slots hold unique negative placeholders
    need = torch.arange(n_users)
    while len(need):
        draw = torch.multinomial(weights, len(need) * 2 * k, replacement=True, generator=gen).view(len(need), 2 * k)
        pool = torch.cat([out[need], draw], dim=1)  # accepted items first, so they keep their place
        valid = (pool > 0) & ~seen.contains(need, pool.clamp(min=0)) & ~_repeats(pool)
        rank = torch.cumsum(valid.long(), dim=1)
        take = valid & (rank <= k)
        rows, cols = take.nonzero(as_tuple=True)
        new = -torch.arange(1, k + 1).repeat(len(need), 1)
        new[rows, rank[rows, cols] - 1] = pool[rows, cols]
        out[need] = new
        need = need[rank[:, -1] < k]
    return out


def _repeats(pool: torch.Tensor) -> torch.Tensor:
    """True where the same value already appeared earlier in the row."""
    values, order = torch.sort(pool, dim=1, stable=True)
    later_copy = torch.zeros_like(pool, dtype=torch.bool)
    later_copy[:, 1:] = values[:, 1:] == values[:, :-1]
    return torch.zeros_like(later_copy).scatter_(1, order, later_copy)
