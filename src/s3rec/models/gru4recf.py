"""GRU4RecF: GRU4Rec with item features (Hidasi, Quadrana, Karatzoglou & Tikk, RecSys 2016, feature-rich
session RNNs), the attribute-aware GRU baseline of the S3-Rec paper (Zhou et al., CIKM 2020, §5.1.2).

    a_i = mean_{a in A_i} M_A[a]             mean embedding of item i's attributes (0 if it has none)
    x_t = Dropout(E[i_t] + a_{i_t})          GRU input: item embedding plus attribute embedding
    h_t = GRU(x_t, h_{t-1});  r_t(j) = h_t . E[j]   as in GRU4Rec (gru4rec.py)

Features are fused at the input by addition (not through the parallel per-feature GRUs of the
p-RNN paper, nor RecBole's concatenation + dense layer). a_i is one EmbeddingBag (mean) over the
item -> attribute CSR, for the distinct items of the input only; items are scored against the item
embeddings E only. Defaults as GRU4Rec: d = 64, 1 layer, dropout 0.25,
M_A ~ N(0, 0.02). Run defaults (`DEFAULTS`) as GRU4Rec's: encoder.dropout = 0.25 and
finetune.loss = ce (softmax over all items; see gru4rec.py for why), the rest the S3-Rec recipe.
"""

from __future__ import annotations

import torch
from torch import nn

from s3rec.data.splits import LeaveOneOut
from s3rec.models.attributes import ItemAttributes
from s3rec.models.gru4rec import DEFAULTS as GRU4REC_DEFAULTS
from s3rec.models.gru4rec import GRU4Rec

DEFAULTS = dict(GRU4REC_DEFAULTS)


class GRU4RecF(GRU4Rec):
    """GRU4Rec whose input at each position adds the mean embedding of the item's attributes.

    Args:
        n_items, n_attributes: vocabulary sizes (ids 1..n).
        attr_offsets: (n_items + 1,) item -> attribute CSR offsets (item i: attr_offsets[i-1]:attr_offsets[i]).
        attr_values: attribute ids in 1..n_attributes.
    """

    def __init__(self, n_items: int, n_attributes: int, attr_offsets: torch.Tensor, attr_values: torch.Tensor,
                 d: int = 64, n_layers: int = 1, dropout: float = 0.25, loss: str = "bce", n_negatives: int = 256,
                 init_std: float = 0.02, label_smoothing: float = 0.0):
        super().__init__(n_items, d=d, n_layers=n_layers, dropout=dropout, loss=loss, n_negatives=n_negatives,
                         init_std=init_std, label_smoothing=label_smoothing)
        self.n_attributes = n_attributes
        self.M_A = nn.EmbeddingBag(n_attributes + 1, d, mode="mean", padding_idx=0)
        nn.init.normal_(self.M_A.weight, 0.0, init_std)
        with torch.no_grad():
            self.M_A.weight[0].zero_()
        self.attrs = ItemAttributes(n_items, attr_offsets, attr_values)

    def embed(self, items: torch.Tensor) -> torch.Tensor:
        """(B, w, d) E[i] + a_i, pooling the attributes of the batch's distinct items only."""
        inverse, values, _, first = self.attrs.bags(items)
        return self.E(items) + self.M_A(values, first)[inverse]


def build(split: LeaveOneOut, d: int = 64, max_len: int = 50, **kw) -> GRU4RecF:
    """GRU4RecF for this split, with its item attributes."""
    data = split.data
    return GRU4RecF(split.n_items, data.n_attributes, torch.from_numpy(data.attr_offsets),
                    torch.from_numpy(data.attr_values), d=d, **kw)
