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


GROUP_OVERHEAD = 200  # padded tokens one more micro-batch must save: its fixed cost (measured on Beauty, docs/speed.md)


def length_groups(items: torch.Tensor, parts: int, overhead: int = GROUP_OVERHEAD) -> list[tuple[torch.Tensor, int]]:
    """(rows, width) of at most `parts` groups of left-padded rows, width = the group's longest row.

    Rows are sorted by length and cut into contiguous groups that minimise the padded tokens
    (sum of rows x width) plus `overhead` tokens per group (dynamic programming over cut points,
    O(parts x rows^2) tensor work): a few long rows get a group of their own instead of widening a
    quarter of the batch. Rows keep their order within a length; ties go to fewer groups.
    """
    lengths = (items != 0).sum(1).clamp(min=1)
    order = torch.argsort(lengths, stable=True)
    n, k_max = len(order), max(1, min(parts, len(order)))
    width = lengths[order].double()  # sorted: a group of sorted rows i..j-1 is width[j-1] wide
    cut = torch.arange(n + 1, dtype=torch.float64)
    size = cut[None, :] - cut[:, None]  # (n+1, n+1) rows in group [i, j)
    cost = torch.where(size > 0, size * width[(cut.long() - 1).clamp(min=0)][None, :], torch.inf)
    best, back = [cost[0]], []  # best[k][j]: least padded tokens of rows [0, j) in k + 1 groups
    for _ in range(1, k_max):
        total, start = (best[-1][:, None] + cost).min(0)
        best.append(total)
        back.append(start)
    k = int(torch.argmin(torch.stack([b[n] + overhead * g for g, b in enumerate(best)])))  # first minimum: fewest groups
    ends = [n]
    for level in range(k - 1, -1, -1):
        ends.append(int(back[level][ends[-1]]))
    bounds = [0] + ends[::-1]
    return [(order[i:j], int(lengths[order[j - 1]])) for i, j in zip(bounds[:-1], bounds[1:])]
