"""The evaluation protocol: full ranking over all items and sampled ranking (target + K negatives).

Full ranking: every item is a candidate except padding (id 0) and special ids (a mask token is
never scored: models return n_items + 1 columns). Items of the user's history (everything before
the target, not only the last max_len) are excluded by setting their scores to -inf, also when the
target repeats one of them (the S3-Rec code family does this; such targets can never be hit).
`exclude_history=False` keeps them.

Sampled ranking: the target plus K negatives the user never interacted with (see negatives.py).

Scale: metrics need only the target's rank (how many other items score >= it), so users are scored
in blocks and nothing of size users x items ever exists. A block holds at most `max_scores` scores
(2**25, 128 MB of float32): 1,024 users per block up to 32k items (every registry data set), 335 at
100k items, one user past 32M items. Memory is one block whatever the number of users.
On a GPU (`device`) the ranks stay on the device until the end (one transfer back); scores are
float32, never autocast: bfloat16 scores would tie often, and ties count against the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from s3rec.data.batching import gather_ranges
from s3rec.data.splits import LeaveOneOut
from s3rec.evaluation.metrics import per_user_metrics, summarise, target_rank

ScoreAll = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (histories, users) -> (B, n_items + 1): model.score_all
ScoreSome = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (histories, candidates, users) -> (B, C): model.score
MAX_SCORES = 2**25  # scores per block of users (float32: 128 MB)


@dataclass
class EvalResult:
    """Mean metrics and the per-user values they came from."""

    metrics: dict[str, float]
    per_user: dict[str, torch.Tensor]
    ranks: torch.Tensor


def full_ranking(
    score_all: ScoreAll, split: LeaveOneOut, which: str, max_len: int,
    batch_size: int = 1024, exclude_history: bool = True, progress: bool = False,
    device: torch.device | str | None = None, max_scores: int = MAX_SCORES,
) -> EvalResult:
    """Rank each user's `which` target ('valid' or 'test') against all items, one block of users at a time."""
    device = torch.device(device or "cpu")
    offsets, hist_items = split.history_index(which)
    targets = split.target(which).to(device)
    ranks = torch.empty(split.n_users, dtype=torch.long, device=device)
    block = users_per_block(batch_size, split.n_items, max_scores)
    for users in _batches(split, which, block, progress, f"full ranking ({which})"):
        on = users.to(device)
        with torch.no_grad():
            scores = score_all(split.histories(which, max_len, users).to(device), on).float()  # (B, N + 1)
        scores[:, 0] = -torch.inf
        if exclude_history:
            seen, rows = gather_ranges(hist_items, offsets[users], offsets[users + 1] - offsets[users])
            scores[rows.to(device), seen.to(device)] = -torch.inf
        ranks[on] = target_rank(scores, targets[on])
    ranks = ranks.cpu()
    per_user = per_user_metrics(ranks)
    return EvalResult(summarise(per_user), per_user, ranks)


def users_per_block(batch_size: int, n_items: int, max_scores: int = MAX_SCORES) -> int:
    """Users scored at once: at most `batch_size`, and at most `max_scores` scores (but one user at least)."""
    return max(1, min(batch_size, max_scores // (n_items + 1)))


def sampled_ranking(
    score: ScoreSome, split: LeaveOneOut, which: str, max_len: int, negatives: torch.Tensor,
    batch_size: int = 1024, progress: bool = False, device: torch.device | str | None = None,
) -> EvalResult:
    """Rank each user's `which` target against its row of `negatives` (U, K)."""
    device = torch.device(device or "cpu")
    targets = split.target(which)
    ranks = torch.empty(split.n_users, dtype=torch.long, device=device)
    for users in _batches(split, which, batch_size, progress, f"sampled ranking ({which})"):
        candidates = torch.cat([targets[users].unsqueeze(1), negatives[users]], dim=1).to(device)  # (B, 1 + K)
        on = users.to(device)
        with torch.no_grad():
            scores = score(split.histories(which, max_len, users).to(device), candidates, on).float()
        ranks[on] = target_rank(scores, torch.zeros(len(users), dtype=torch.long, device=device))
    ranks = ranks.cpu()
    per_user = per_user_metrics(ranks)
    return EvalResult(summarise(per_user), per_user, ranks)


def _batches(split: LeaveOneOut, which: str, batch_size: int, progress: bool, desc: str):
    """User batches in order of history length, so that each batch trims to little padding."""
    lengths = split.history_end(which) - split.starts
    order = torch.argsort(lengths, stable=True)
    return tqdm(order.split(batch_size), desc=desc, disable=not progress, leave=False)
