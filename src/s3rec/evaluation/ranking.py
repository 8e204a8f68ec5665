"""The evaluation protocol: full ranking over all items and sampled ranking (target + K negatives).

Full ranking: every item is a candidate except padding (id 0) and special ids (a mask token is
never scored: models return n_items + 1 columns). Items of the user's history (everything before
the target, not only the last max_len) are excluded by setting their scores to -inf, also when the
target repeats one of them (the S3-Rec code family does this; such targets can never be hit).
`exclude_history=False` keeps them.

Sampled ranking: the target plus K negatives the user never interacted with (see negatives.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from s3rec.data.batching import gather_ranges
from s3rec.data.splits import LeaveOneOut
from s3rec.evaluation.metrics import per_user_metrics, summarise, target_rank

ScoreAll = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (users, histories) -> (B, n_items + 1)
ScoreSome = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (users, histories, candidates) -> (B, C)


@dataclass
class EvalResult:
    """Mean metrics and the per-user values they came from."""

    metrics: dict[str, float]
    per_user: dict[str, torch.Tensor]
    ranks: torch.Tensor


def full_ranking(
    score_all: ScoreAll, split: LeaveOneOut, which: str, max_len: int,
    batch_size: int = 1024, exclude_history: bool = True, progress: bool = False,
) -> EvalResult:
    """Rank each user's `which` target ('valid' or 'test') against all items."""
    offsets, hist_items = split.history_index(which)
    targets = split.target(which)
    ranks = torch.empty(split.n_users, dtype=torch.long)
    for users in _batches(split, which, batch_size, progress, f"full ranking ({which})"):
        with torch.no_grad():
            scores = score_all(users, split.histories(which, max_len, users)).float()  # (B, N + 1)
        scores[:, 0] = -torch.inf
        if exclude_history:
            seen, rows = gather_ranges(hist_items, offsets[users], offsets[users + 1] - offsets[users])
            scores[rows, seen] = -torch.inf
        ranks[users] = target_rank(scores, targets[users])
    per_user = per_user_metrics(ranks)
    return EvalResult(summarise(per_user), per_user, ranks)


def sampled_ranking(
    score: ScoreSome, split: LeaveOneOut, which: str, max_len: int, negatives: torch.Tensor,
    batch_size: int = 1024, progress: bool = False,
) -> EvalResult:
    """Rank each user's `which` target against its row of `negatives` (U, K)."""
    targets = split.target(which)
    ranks = torch.empty(split.n_users, dtype=torch.long)
    for users in _batches(split, which, batch_size, progress, f"sampled ranking ({which})"):
        candidates = torch.cat([targets[users].unsqueeze(1), negatives[users]], dim=1)  # (B, 1 + K)
        with torch.no_grad():
            scores = score(users, split.histories(which, max_len, users), candidates).float()
        ranks[users] = target_rank(scores, torch.zeros(len(users), dtype=torch.long))
    per_user = per_user_metrics(ranks)
    return EvalResult(summarise(per_user), per_user, ranks)


def _batches(split: LeaveOneOut, which: str, batch_size: int, progress: bool, desc: str):
    """User batches in order of history length, so that each batch trims to little padding."""
    lengths = split.history_end(which) - split.starts
    order = torch.argsort(lengths, stable=True)
    return tqdm(order.split(batch_size), desc=desc, disable=not progress, leave=False)
