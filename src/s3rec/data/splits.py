"""Leave-one-out splits: last item = test, second last = validation, the rest = training.

Validation history = items[:-2]; test history = items[:-1] (it includes the validation item).
Histories fed to a model are the last `max_len` items, left-padded with 0. History exclusion in
evaluation uses the whole history, not only the truncated part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from s3rec.data.batching import InteractionIndex, left_pad
from s3rec.data.dataset import SequenceData
from s3rec.errors import DataError


def keep_train_fraction(data: SequenceData, fraction: float) -> SequenceData:
    """Keep the most recent `fraction` of each user's training items (at least one); valid/test untouched.

    The oldest training items of every user are dropped, so the kept data stays one contiguous,
    time-ordered sequence per user (what sequential models need); every user keeps
    max(1, round(fraction * n_train)) training items, and the last two items (validation, test) always.
    """
    if not 0 < fraction <= 1:
        raise DataError(f"--train-fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return data
    lengths = data.lengths
    n_train = lengths - 2
    keep = np.maximum(1, np.round(fraction * n_train).astype(np.int64))
    new_lengths = keep + 2
    new_starts = data.offsets[1:] - new_lengths
    new_offsets = np.zeros_like(data.offsets)
    np.cumsum(new_lengths, out=new_offsets[1:])
    idx = np.repeat(new_starts - new_offsets[:-1], new_lengths) + np.arange(new_offsets[-1])
    out = data.with_sequences(new_offsets, data.items[idx])
    out.extra["train_fraction"] = fraction
    return out


@dataclass
class LeaveOneOut:
    """Leave-one-out view of a SequenceData, with tensors ready for batching."""

    data: SequenceData
    items: torch.Tensor  # (n_interactions,) all items, flat
    starts: torch.Tensor  # (U,) first index of each user
    ends: torch.Tensor  # (U,) one past the last index of each user

    @classmethod
    def from_data(cls, data: SequenceData) -> "LeaveOneOut":
        """The split of `data`; every user needs >= 3 items (train, validation, test)."""
        too_short = np.flatnonzero(data.lengths < 3)
        if len(too_short):
            raise DataError(
                f"{len(too_short)} users have fewer than 3 interactions and cannot be split leave-one-out "
                f"(e.g. user {data.user_ids[too_short[0]]})", data.source or data.name)
        return cls(data, torch.from_numpy(data.items), torch.from_numpy(data.offsets[:-1]), torch.from_numpy(data.offsets[1:]))

    @property
    def n_users(self) -> int:
        return self.data.n_users

    @property
    def n_items(self) -> int:
        return self.data.n_items

    def train_end(self) -> torch.Tensor:
        """(U,) one past the last training item (training = items[:-2])."""
        return self.ends - 2

    def target(self, split: str) -> torch.Tensor:
        """(U,) the held-out item of `split` ('valid' or 'test')."""
        return self.items[self.ends - (2 if split == "valid" else 1)]

    def history_end(self, split: str) -> torch.Tensor:
        """(U,) one past the last history item for `split`."""
        return self.ends - (2 if split == "valid" else 1)

    def histories(self, split: str, max_len: int, users: torch.Tensor | None = None) -> torch.Tensor:
        """(B, max_len) left-padded model inputs for `split`."""
        users = torch.arange(self.n_users) if users is None else users
        return left_pad(self.items, self.starts[users], self.history_end(split)[users], max_len)

    def history_index(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """CSR (offsets, items) of each user's full history for `split`, for exclusion in ranking."""
        lengths = self.history_end(split) - self.starts
        offsets = torch.zeros(self.n_users + 1, dtype=torch.long)
        torch.cumsum(lengths, 0, out=offsets[1:])
        rows = torch.repeat_interleave(torch.arange(self.n_users), lengths)
        pos = torch.arange(int(offsets[-1])) - offsets[rows] + self.starts[rows]
        return offsets, self.items[pos]

    def repeated_targets(self, split: str) -> int:
        """Users whose `split` target is an item of their own history (full ranking excludes it: never a hit)."""
        offsets, hist = self.history_index(split)
        rows = torch.repeat_interleave(torch.arange(self.n_users), offsets.diff())
        repeats = torch.zeros(self.n_users, dtype=torch.long).index_add_(0, rows, (hist == self.target(split)[rows]).long())
        return int((repeats > 0).sum())

    def train_sequences(self) -> tuple[np.ndarray, np.ndarray]:
        """CSR (offsets, items) of the training part items[:-2] of every user."""
        lengths = self.data.lengths - 2
        offsets = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        idx = np.repeat(self.data.offsets[:-1] - offsets[:-1], lengths) + np.arange(offsets[-1])
        return offsets, self.data.items[idx]

    def train_index(self) -> InteractionIndex:
        """Membership index over the training items of every user."""
        return InteractionIndex(*self.train_sequences(), self.n_items)

    def all_index(self) -> InteractionIndex:
        """Membership index over every interaction (for sampled-evaluation negatives)."""
        return InteractionIndex(self.data.offsets, self.data.items, self.n_items)

    def train_counts(self) -> np.ndarray:
        """(n_items + 1,) interaction counts in the training part only."""
        _, items = self.train_sequences()
        return np.bincount(items, minlength=self.n_items + 1)
