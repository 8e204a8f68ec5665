"""Batches for pre-training and fine-tuning, built with tensor operations from the training CSR.

Pre-training samples are (start, end) index pairs into the flat training items: the faithful
recipe makes every prefix of each user's last `max_len` training items a sample (authors' code);
`random-prefix` draws one prefix per user per epoch. Batches are trimmed to their longest sample
(left padding keeps each item's position id), and optionally bucketed by length so that little
compute is spent on padding: samples are shuffled, sorted by length within pools of 64 batches,
cut into batches of a constant number of tokens, and the batches shuffled — each sample and its
math are unchanged, only which samples share a batch differs.
"""

from __future__ import annotations

import numpy as np
import torch

from s3rec.data.batching import InteractionIndex, left_pad, length_groups, sample_unseen


class TrainingSequences:
    """The training part (items[:-2]) of every user as flat tensors plus a membership index."""

    def __init__(self, offsets: np.ndarray, items: np.ndarray, n_items: int):
        self.items = torch.from_numpy(items)
        self.starts = torch.from_numpy(offsets[:-1])
        self.ends = torch.from_numpy(offsets[1:])
        self.n_items = n_items
        self.seen = InteractionIndex(offsets, items, n_items)

    @property
    def n_users(self) -> int:
        return len(self.starts)

    def prefix_samples(self, max_len: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(user, start, end) of every prefix of each user's last max_len training items."""
        first = torch.maximum(self.starts, self.ends - max_len)
        n = self.ends - first
        user = torch.repeat_interleave(torch.arange(self.n_users), n)
        offset = torch.arange(int(n.sum())) - (torch.cumsum(n, 0) - n)[user]
        return user, first[user], first[user] + offset + 1

    def next_item_samples(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(user, end) of every prefix items[start:end] with at least one input before its target items[end - 1]."""
        n = (self.ends - self.starts - 1).clamp(min=0)  # prefixes per user
        user = torch.repeat_interleave(torch.arange(self.n_users), n)
        offset = torch.arange(int(n.sum())) - (torch.cumsum(n, 0) - n)[user]
        return user, self.starts[user] + 2 + offset

    def random_prefix_samples(self, max_len: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One random prefix per user (with at least one training item)."""
        first = torch.maximum(self.starts, self.ends - max_len)
        n = self.ends - first
        user = torch.arange(self.n_users)[n > 0]
        length = 1 + (torch.rand(len(user), generator=gen) * n[user]).long()
        return user, first[user], first[user] + length


def batch_order(lengths: torch.Tensor, batch_size: int, gen: torch.Generator, bucket: bool) -> list[torch.Tensor]:
    """Sample indices grouped into batches: random batches of `batch_size`, or length buckets.

    Buckets hold a constant number of tokens (batch_size x the mean length) rather than of samples,
    so every step sees about as many positions as a random batch: the loss keeps its scale from
    step to step (Adam adapts to that scale) and every position keeps the same weight in the epoch.
    """
    perm = torch.randperm(len(lengths), generator=gen)
    if not bucket:
        return list(perm.split(batch_size))
    pool = batch_size * 64
    chunk = torch.arange(len(perm)) // pool
    perm = perm[torch.argsort(chunk * (int(lengths.max()) + 1) + lengths[perm], stable=True)]
    budget = batch_size * float(lengths.float().mean())
    start = torch.cumsum(lengths[perm], 0) - lengths[perm]  # tokens before each sample
    sizes = torch.unique_consecutive((start / budget).long(), return_counts=True)[1]
    batches = list(perm.split(sizes.tolist()))
    return [batches[i] for i in torch.randperm(len(batches), generator=gen)]


def pretrain_batch(
    seqs: TrainingSequences, user: torch.Tensor, start: torch.Tensor, end: torch.Tensor,
    mask_ratio: float, gen: torch.Generator, with_sp: bool = True, with_mip_negatives: bool = True,
) -> dict[str, torch.Tensor]:
    """Masked sequences, MIP negatives (zeros without) and SP views for samples items[start:end] of `user`."""
    n = end - start  # (B,)
    w = int(n.max())
    items = left_pad(seqs.items, start, end, w)  # (B, w)
    real = items != 0
    mask_id = seqs.n_items + 1
    # MIP/MAP: mask each item with probability mask_ratio, and always the last one (authors' code)
    is_mask = (torch.rand(items.shape, generator=gen) < mask_ratio) & real
    is_mask[:, -1] = True
    masked = torch.where(is_mask, mask_id, items)
    neg_items = (torch.where(is_mask, sample_unseen(user, items.shape, seqs.n_items, seqs.seen, gen), 0)
                 if with_mip_negatives else torch.zeros_like(items))
    batch = {"items": items, "masked": masked, "neg_items": neg_items}

    # SP: mask a contiguous segment of length 1..n//2 of each sample with n >= 2
    sel = torch.nonzero(n >= 2).squeeze(1) if with_sp else torch.zeros(0, dtype=torch.long)
    ns = n[sel]
    seg_len = 1 + (torch.rand(len(sel), generator=gen) * (ns // 2)).long()
    seg_start = (torch.rand(len(sel), generator=gen) * (ns - seg_len + 1)).long()
    # float64: a float32 draw has 2**24 steps, too coarse to reach every start beyond ~16M interactions
    neg_start = (torch.rand(len(sel), generator=gen, dtype=torch.float64) * (len(seqs.items) - seg_len + 1)).long()
    k = torch.arange(w).unsqueeze(0) - (w - ns).unsqueeze(1)  # (S, w) index of the item within its sample
    in_seg = (k >= seg_start.unsqueeze(1)) & (k < (seg_start + seg_len).unsqueeze(1))
    x, r = items[sel], real[sel]
    outside = torch.where(r, mask_id, 0)  # the segment views show only the segment, [mask] elsewhere
    neg_idx = (neg_start.unsqueeze(1) + k - seg_start.unsqueeze(1)).clamp(0, len(seqs.items) - 1)
    batch["sp_context"] = torch.where(in_seg, mask_id, x)
    batch["sp_pos"] = torch.where(in_seg, x, outside)
    batch["sp_neg"] = torch.where(in_seg, seqs.items[neg_idx], outside)
    batch["sp_rows"] = sel  # which sample each SP view belongs to
    return batch


SP_VIEWS = ("sp_context", "sp_pos", "sp_neg")
def micro_batches(batch: dict[str, torch.Tensor], parts: int) -> list[dict[str, torch.Tensor]]:
    """Split a pre-training batch into `parts` groups of similar length, each trimmed to its longest sample.

    The per-sample losses are independent, so the summed losses (and gradients) of the parts equal
    those of the whole batch: the batch composition of the faithful recipe is kept while little
    compute is spent on padding.
    """
    sp_of = torch.full((len(batch["items"]),), -1, dtype=torch.long)
    sp_of[batch["sp_rows"]] = torch.arange(len(batch["sp_rows"]))
    out = []
    for rows, w in length_groups(batch["items"], parts):
        part = {k: batch[k][rows, -w:] for k in ("items", "masked", "neg_items")}
        sp = sp_of[rows][sp_of[rows] >= 0]
        part.update({k: batch[k][sp, -w:] for k in SP_VIEWS})
        part["sp_rows"] = torch.nonzero(sp_of[rows] >= 0).squeeze(1)
        out.append(part)
    return out


INPUT_KEYS = ("inputs", "masked")  # the left-padded input rows of a fine-tuning batch (next-item, cloze)


def finetune_micro_batches(batch: dict[str, torch.Tensor], parts: int) -> list[tuple[dict[str, torch.Tensor], float]]:
    """Split a fine-tuning batch into `parts` row groups of similar length, each trimmed to its longest input.

    Row tensors are those shaped like `targets` (B, w) (inputs, targets, negatives; a cloze batch's
    masked inputs); anything else (the shared sampled negatives) goes to every part. Returns (part,
    share) pairs, share = the part's targets / the batch's targets. A loss that is a mean over
    independent target positions, weighted by `share` and summed over the parts, equals the whole
    batch's loss (and so do the gradients): the batch composition of random batches is kept while
    little compute is spent on padding. Parts without a target are dropped.
    """
    if parts <= 1:  # any model's batch, untouched
        return [(batch, 1.0)]
    n_targets = int((batch["targets"] != 0).sum())
    if n_targets == 0:
        return [(batch, 1.0)]
    shape = batch["targets"].shape
    inputs = next(batch[k] for k in INPUT_KEYS if k in batch)
    out = []
    for rows, w in length_groups(inputs, parts):
        part = {k: v[rows, -w:] if v.shape == shape else v for k, v in batch.items()}
        t = int((part["targets"] != 0).sum())
        if t:
            out.append((part, t / n_targets))
    return out


def finetune_batch(
    seqs: TrainingSequences, users: torch.Tensor, max_len: int, gen: torch.Generator,
    n_sampled: int = 0, ends: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Inputs items[:-3] and next-item targets items[1:-2] (last max_len), one negative per target.

    With `ends` (prefix samples), each row is the prefix items[start:end] of its user and only its
    last item items[end - 1] is a target: every position of a history counts once per epoch.
    """
    prefix = ends is not None
    ends = ends if prefix else seqs.ends[users]
    inputs = left_pad(seqs.items, seqs.starts[users], ends - 1, max_len)
    targets = left_pad(seqs.items, seqs.starts[users] + 1, ends, max_len)
    w = max(int((inputs != 0).sum(1).max()), 1)  # trim columns that are padding in every row
    if prefix:
        targets[:, :-1] = 0
    inputs, targets = inputs[:, -w:], targets[:, -w:]
    negatives = torch.where(targets != 0, sample_unseen(users, targets.shape, seqs.n_items, seqs.seen, gen), 0)
    batch = {"inputs": inputs, "targets": targets, "negatives": negatives}
    if n_sampled:
        batch["sampled"] = torch.randint(1, seqs.n_items + 1, (n_sampled,), generator=gen)
    return batch
