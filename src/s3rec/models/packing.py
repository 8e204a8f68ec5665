"""Packed real tokens of left-padded rows, for `SequenceEncoder.encode_views` on batches that are mostly
padding: token-wise work runs on real tokens only, attention per group of rows of similar length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from s3rec.data.batching import length_groups

PACK_GROUPS = 3  # attention groups per set of rows, at most
PACK_OVERHEAD = 800  # padded attention slots one more group must save: its fixed cost (docs/speed.md)


@dataclass
class AttentionGroup:
    """Rows of similar length that attend together, left-padded to their longest row w."""

    shape: tuple[int, int]  # (n rows, w)
    gather: torch.Tensor  # (n * w,) index of each slot's packed token; at padding, the row's first token
    real: torch.Tensor  # (T_g,) slots that hold a real token, in packed order
    mask: torch.Tensor  # (n, 1, w, w) additive attention mask: 0 where allowed, -inf elsewhere
    last_only: bool  # rows after n_full: only their last output is read


class PackedRows:
    """The real tokens of left-padded rows (N, w), packed row after row in attention-group order.

    Rows [0, n_full) and [n_full, N) are grouped separately (length_groups: at most `parts` groups
    each, cut where padding is least), so that the last block can skip all but the last query of
    the second set. Token-wise work (embeddings, projections, feed-forward) then runs on real
    tokens only; only attention sees padding, within each group's width.
    """

    def __init__(self, items: torch.Tensor, n_full: int, dtype: torch.dtype = torch.float32,
                 parts: int | None = None, overhead: int | None = None):
        N, w = items.shape
        parts, overhead = parts or PACK_GROUPS, PACK_OVERHEAD if overhead is None else overhead
        lengths = (items != 0).sum(1)
        if N and int(lengths.min()) == 0:
            raise ValueError("every row needs at least one item")
        spans = [(0, n_full, False), (n_full, N, True)]
        groups = [(rows + a, g_w, last) for a, b, last in spans if b > a
                  for rows, g_w in length_groups(items[a:b], parts, overhead)]
        order = torch.cat([rows for rows, _, _ in groups]) if groups else lengths.new_zeros(0)
        length = lengths[order]  # (N,) in packed order
        offset = torch.cumsum(length, 0) - length  # first token of each packed row
        token_row = torch.repeat_interleave(order, length)  # (T,) original row of each token
        j = torch.arange(len(token_row), device=items.device) - torch.repeat_interleave(offset, length)
        self.flat = token_row * w + (w - lengths[token_row]) + j  # (T,) position in items.view(-1)
        self.n_full_tokens = int(lengths[:n_full].sum())
        is_last = order >= n_full
        self.last_rows = order[is_last]  # (N - n_full,) original row of each last-only output
        self.query_tokens = torch.cat([torch.arange(self.n_full_tokens, device=items.device),
                                       (offset + length - 1)[is_last]])
        self.groups, start = [], 0
        for rows, g_w, last in groups:
            n = len(rows)
            g_len, g_off = length[start:start + n], offset[start:start + n]
            c = torch.arange(g_w, device=items.device)
            pad = (g_w - g_len).unsqueeze(1)
            valid = c >= pad
            # a padding slot repeats a real token: as a key it is masked, as a query its output is dropped,
            # so it gets exactly zero gradient and no zero row has to be appended to the tokens
            gather = (g_off.unsqueeze(1) + (c - pad).clamp(min=0)).reshape(-1)
            allowed = valid[:, None, None, :] | torch.eye(g_w, dtype=torch.bool, device=items.device)
            mask = torch.zeros(allowed.shape, dtype=dtype, device=items.device).masked_fill_(~allowed, float("-inf"))
            real = torch.nonzero(valid.reshape(-1)).squeeze(1)
            self.groups.append(AttentionGroup((n, g_w), gather, real, mask, last))
            start += n
        # all groups at once: their slots concatenated, and where the real outputs sit in the
        # concatenated group outputs (`real_last`: last-only groups output one row each)
        self.gather = torch.cat([g.gather for g in self.groups]) if self.groups else lengths.new_zeros(0)
        self.slot_counts = [g.gather.numel() for g in self.groups]
        real, real_last, at, at_last = [], [], 0, 0
        for g in self.groups:
            real.append(g.real + at)
            own = torch.arange(g.shape[0], device=items.device) if g.last_only else g.real
            real_last.append(own + at_last)
            at += g.gather.numel()
            at_last += g.shape[0] if g.last_only else g.gather.numel()
        self.real = torch.cat(real) if real else lengths.new_zeros(0)
        self.real_last = torch.cat(real_last) if real_last else lengths.new_zeros(0)
