"""Tensor helpers that turn flat (CSR) sequences into padded batches without per-sample loops."""

from __future__ import annotations

import numpy as np
import torch


def left_pad(items: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor, length: int) -> torch.Tensor:
    """Rows items[starts[b]:ends[b]], keeping the last `length` items, left-padded with 0 -> (B, length)."""
    idx = ends.unsqueeze(1) - length + torch.arange(length, device=items.device)  # (B, L)
    valid = idx >= starts.unsqueeze(1)
    return torch.where(valid, items[idx.clamp(min=0)], 0)


def trim_left_padding(*seqs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Drop leading columns that are padding in every row of the first tensor (same cut for all)."""
    width = int((seqs[0] != 0).sum(1).max().item()) if seqs[0].numel() else 0
    width = max(width, 1)
    return tuple(s[:, s.size(1) - width :] for s in seqs)


def segment_ids(lengths: torch.Tensor) -> torch.Tensor:
    """Row index of every element of a CSR with these row lengths: [0,0,1,2,2,2] for [2,1,3]."""
    return torch.repeat_interleave(torch.arange(len(lengths), device=lengths.device), lengths)


def gather_ranges(values: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate values[starts[r]:starts[r]+lengths[r]] over rows r -> (flat values, row index)."""
    rows = segment_ids(lengths)
    first = torch.cumsum(lengths, 0) - lengths  # where each row begins in the output
    pos = torch.arange(int(lengths.sum()), device=values.device) - first[rows] + starts[rows]
    return values[pos], rows


class InteractionIndex:
    """Exact, vectorised "did user u interact with item i" over a CSR of sequences."""

    def __init__(self, offsets: np.ndarray, items: np.ndarray, n_items: int):
        users = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
        self.stride = n_items + 2
        self.keys = torch.from_numpy(np.unique(users * self.stride + items))

    def contains(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Bool tensor, same shape as `items`; `users` (B,) is broadcast along items' trailing dims."""
        users = users.reshape(users.shape + (1,) * (items.dim() - users.dim()))
        keys = users * self.stride + items
        pos = torch.searchsorted(self.keys, keys.reshape(-1)).clamp(max=len(self.keys) - 1)
        return (self.keys[pos] == keys.reshape(-1)).reshape(keys.shape)


def sample_unseen(
    users: torch.Tensor, shape: tuple[int, ...], n_items: int, seen: InteractionIndex,
    generator: torch.Generator, max_rounds: int = 50,
) -> torch.Tensor:
    """Uniform item ids in 1..n_items that `users` (broadcast to `shape`) did not interact with."""
    out = torch.randint(1, n_items + 1, shape, generator=generator)
    bad = seen.contains(users, out)
    for _ in range(max_rounds):  # rejection sampling; a handful of rounds even on dense users
        if not bad.any():
            break
        out[bad] = torch.randint(1, n_items + 1, (int(bad.sum()),), generator=generator)
        bad = seen.contains(users, out)
    return out
