"""Item attributes for the attribute-aware models: the item -> attribute CSR and per-item pooling.

Pooling the whole catalogue (`mean`, `attend`) is what scoring every item needs (FM, AutoInt); a
training batch needs only its own items (`mean_of`, `attend_of`: the same numbers for those ids, at
the cost of the batch's distinct items instead of the catalogue's).
"""

from __future__ import annotations

import torch
from torch import nn

from s3rec.data.batching import gather_ranges
from s3rec.data.splits import LeaveOneOut


class ItemAttributes(nn.Module):
    """Item -> attribute CSR as (non-persistent) buffers, pooling attribute vectors into one per item id.

    Args:
        n_items: number of items; pooled tables have n_items + 2 rows (0 = padding and
            n_items + 1 = [mask] have no attributes).
        attr_offsets: (n_items + 1,) CSR offsets; item i's attributes are attr_values[attr_offsets[i-1]:attr_offsets[i]].
        attr_values: attribute ids in 1..n_attributes.
    """

    def __init__(self, n_items: int, attr_offsets: torch.Tensor, attr_values: torch.Tensor):
        super().__init__()
        offsets = torch.as_tensor(attr_offsets, dtype=torch.long)
        lens = torch.diff(offsets)
        self.n_rows = n_items + 2
        item_of = torch.repeat_interleave(torch.arange(1, n_items + 1), lens)  # item id of each CSR entry
        self.register_buffer("values", torch.as_tensor(attr_values, dtype=torch.long), persistent=False)
        self.register_buffer("item_of", item_of, persistent=False)
        count = torch.bincount(item_of, minlength=self.n_rows)
        self.register_buffer("count", count.float(), persistent=False)
        self.register_buffer("start", torch.cumsum(count, 0) - count, persistent=False)  # first CSR entry per item

    def mean(self, table: torch.Tensor) -> torch.Tensor:
        """(n_items + 2, d) mean over each item's attributes of table (n_attributes + 1, d); 0 without any."""
        return pooled_mean(table, self.values, self.item_of, self.n_rows)

    def attend(self, table: torch.Tensor, w: nn.Linear) -> torch.Tensor:
        """(n_items + 2, d) sum_a alpha_a table[a] with alpha = softmax over the item's attributes of w(table[a])."""
        return pooled_attention(table, w, self.values, self.item_of, self.n_rows)

    def multi_hot(self, items: torch.Tensor, n_attributes: int) -> torch.Tensor:
        """(n, n_attributes) targets of items (n,): [r, a - 1] = 1 when item items[r] has attribute a."""
        target = self.count.new_zeros(len(items), n_attributes)
        values, rows = gather_ranges(self.values, self.start[items], self.count[items].long())
        target[rows, values - 1] = 1.0
        return target

    def bags(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The CSR restricted to the distinct ids of `items` (a batch needs far fewer rows than the catalogue).

        Returns (inverse, values, bag, first): `inverse` (items.shape) indexes the K distinct ids; `values`
        (nnz_K,) their attribute ids in CSR order; `bag` (nnz_K,) which distinct id each entry belongs to;
        `first` (K,) where each id's entries start in `values`.
        """
        ids, inverse = torch.unique(items, return_inverse=True)
        lens = self.count[ids].long()
        first = torch.cumsum(lens, 0) - lens
        bag = torch.repeat_interleave(torch.arange(len(ids), device=items.device), lens)
        entry = (self.start[ids] - first)[bag] + torch.arange(len(bag), device=items.device)
        return inverse, self.values[entry], bag, first

    def mean_of(self, table: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(*items.shape, d) = mean(table)[items], pooling only the attributes of the ids in `items`."""
        inverse, values, bag, first = self.bags(items)
        return pooled_mean(table, values, bag, len(first))[inverse]

    def attend_of(self, table: torch.Tensor, w: nn.Linear, items: torch.Tensor) -> torch.Tensor:
        """(*items.shape, d) = attend(table, w)[items], attending only over the attributes of the ids in `items`."""
        inverse, values, bag, first = self.bags(items)
        return pooled_attention(table, w, values, bag, len(first))[inverse]


def pooled_mean(table: torch.Tensor, values: torch.Tensor, bag: torch.Tensor, n_bags: int) -> torch.Tensor:
    """(n_bags, d) mean of table[values] within each bag (bag[j]: the bag of entry j); 0 for an empty bag."""
    sums = table.new_zeros(n_bags, table.size(1)).index_add(0, bag, table.index_select(0, values))
    return sums / torch.bincount(bag, minlength=n_bags).clamp(min=1).to(table.dtype).unsqueeze(1)


def pooled_attention(table: torch.Tensor, w: nn.Linear, values: torch.Tensor, bag: torch.Tensor,
                     n_bags: int) -> torch.Tensor:
    """(n_bags, d) sum_j alpha_j table[values_j] within each bag, alpha = softmax over the bag of w(table[values_j])."""
    A = table.index_select(0, values)  # (nnz, d)
    logits = w(A).squeeze(-1)  # (nnz,)
    top = torch.full((n_bags,), -torch.inf, device=A.device, dtype=A.dtype)
    top = top.scatter_reduce(0, bag, logits.detach(), "amax")  # for a stable softmax
    e = torch.exp(logits - top[bag])
    alpha = e / e.new_zeros(n_bags).index_add(0, bag, e)[bag]
    return A.new_zeros(n_bags, A.size(1)).index_add(0, bag, alpha.unsqueeze(1) * A)


def init_item_half_as_identity(fusion: nn.Linear) -> None:
    """Make the first d input columns of a (2d -> d) fusion layer the identity: its output starts as the item path."""
    d = fusion.out_features
    with torch.no_grad():
        fusion.weight[:, :d].copy_(torch.eye(d))


def attribute_csr(split: LeaveOneOut) -> tuple[torch.Tensor, torch.Tensor]:
    """(attr_offsets, attr_values) of a split's data set as tensors."""
    return torch.from_numpy(split.data.attr_offsets), torch.from_numpy(split.data.attr_values)
