"""Scale: full ranking in bounded blocks (never users x items), training state linear in interactions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.evaluation.metrics import UNREACHABLE
from s3rec.evaluation.ranking import MAX_SCORES, full_ranking, users_per_block
from s3rec.training.batches import TrainingSequences


def test_users_per_block_bounds_the_score_block():
    assert users_per_block(1024, 12_101) == 1024  # Beauty: unchanged batches
    assert users_per_block(1024, 100_000) == MAX_SCORES // 100_001 == 335
    assert users_per_block(1024, 10**9) == 1  # one row at least
    assert users_per_block(1024, 99, max_scores=1000) == 10


def _brute_force_ranks(scores: torch.Tensor, split: LeaveOneOut, which: str) -> torch.Tensor:
    """Rank = other candidates scoring >= the target; history and padding excluded; excluded target: UNREACHABLE."""
    offsets, hist = split.history_index(which)
    targets = split.target(which)
    out = []
    for u in range(split.n_users):
        s = scores[u].clone()
        s[0] = -torch.inf
        s[hist[offsets[u] : offsets[u + 1]]] = -torch.inf
        t = int(targets[u])
        out.append(UNREACHABLE if s[t] == -torch.inf else int((s >= s[t]).sum()) - 1)
    return torch.tensor(out)


@pytest.mark.parametrize("max_scores", [MAX_SCORES, 61 * 7, 1])
def test_full_ranking_in_blocks_is_exact_and_never_allocates_users_x_items(max_scores):
    split = LeaveOneOut.from_data(make_synthetic(n_users=150, n_items=60, avg_len=8, n_attributes=8, n_topics=4, seed=4))
    gen = torch.Generator().manual_seed(0)
    # small integer scores: exact in float32 whatever the blocking, and with many ties
    U = torch.randint(-3, 4, (split.n_users, 4), generator=gen).float()
    V = torch.randint(-3, 4, (split.n_items + 1, 4), generator=gen).float()
    seen_rows = []

    def score_all(histories: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        seen_rows.append(len(users))
        return U[users] @ V.T

    for which in ("valid", "test"):
        seen_rows.clear()
        result = full_ranking(score_all, split, which, max_len=50, batch_size=64, max_scores=max_scores)
        assert torch.equal(result.ranks, _brute_force_ranks(U @ V.T, split, which))
        assert max(seen_rows) * (split.n_items + 1) <= max(max_scores, split.n_items + 1)
        assert max(seen_rows) <= 64 and sum(seen_rows) == split.n_users


def test_training_state_is_linear_in_interactions():
    """Nothing the training loops keep per data set grows with users x items."""
    for n_items in (100, 10_000):
        data = make_synthetic(n_users=500, n_items=n_items, avg_len=10, n_attributes=30, n_topics=10, seed=1)
        split = LeaveOneOut.from_data(data)
        seqs = TrainingSequences(*split.train_sequences(), data.n_items)
        n_train = int((data.lengths - 2).sum())
        sizes = [seqs.items.numel(), seqs.starts.numel(), seqs.ends.numel(), seqs.seen.keys.numel()]
        assert max(sizes) <= n_train  # the seen-set is the sorted distinct (user, item) keys, not a U x N mask
        user, start, end = seqs.prefix_samples(50)
        assert len(user) == n_train  # every prefix: one sample per training position
        offsets, hist = split.history_index("test")
        assert hist.numel() == int((data.lengths - 1).sum())


def test_membership_keys_are_exact_at_a_million_users_by_100k_items():
    """user * (n_items + 2) + item stays exact in int64 at the scale of the benchmark."""
    from s3rec.data.batching import InteractionIndex

    offsets = np.zeros(1_000_001, dtype=np.int64)
    offsets[-1] = 2  # only the last of 1M users has items
    index = InteractionIndex(offsets, np.array([99_999, 100_000]), 100_000)
    users = torch.tensor([999_999, 999_998])
    got = index.contains(users, torch.tensor([[99_999, 100_000, 5], [99_999, 100_000, 5]]))
    assert got.tolist() == [[True, True, False], [False, False, False]]
