"""SASRecF: SASRec with item attributes in its input (a baseline of S3-Rec, Zhou et al., CIKM 2020, §5.1.3).

S3-Rec describes SASRecF as SASRec whose input concatenates the representations of an item and its
attributes. Here the input embedding of item i at a position is

    x_i = W_F [M_I[i] ; mean_{a in A_i} M_A[a]] + b_F        (concatenation + linear, 2d -> d)
    E   = Dropout(LayerNorm(x + P))                            then S3-Rec's causal encoder (Eq. 1-4)

and the prediction is F_t . M_I[j] (Eq. 16) exactly as in SASRec: only the input changes, so the
losses (bce by default, bpr, ce, sampled-softmax), the scoring paths and the weights' init
(N(0, 0.02)) are SASRec's, except W_F's item half, which starts as the identity: with all of W_F
drawn from N(0, 0.02) (RecBole's init) the item signal entering LayerNorm is ~0.003 per dimension
against the position embedding's 0.02, and on Beauty validation NDCG@10 stalled at 0.023 (SASRec:
0.040); starting from SASRec's input plus a small attribute term it does not. Why concatenation +
linear: it is the paper's wording and RecBole's SASRecF; it contains "item + projected attributes"
as the special case W_F = [I, W_A]. Why the mean over an item's attributes (RecBole's default is the
sum): items carry 1 to 625 attributes (LastFM), and a mean keeps every item's attribute vector on one scale; an item without attributes
gets the zero vector. The attributes are not part of the state dict (they come from the data set).

Run defaults (`DEFAULTS`): none. SASRecF has no paper of its own (it is S3-Rec's attribute variant
of SASRec), so it runs with SASRec's S3-Rec recipe (d = 64, 2 layers, 2 heads, dropout 0.5, max_len
50, Adam lr 1e-3, batch 256).

The item -> attribute pooling (`s3rec.models.attributes.ItemAttributes`) is shared with GRU4RecF, FDSA, FM and AutoInt.
"""

from __future__ import annotations

import torch
from torch import nn

from s3rec.data.splits import LeaveOneOut
from s3rec.models.attributes import ItemAttributes, attribute_csr, init_item_half_as_identity
from s3rec.models.encoder import EncoderConfig, SequenceEncoder, init_weights
from s3rec.models.sasrec import SASRec

DEFAULTS: dict = {}


class AttributeSequenceEncoder(SequenceEncoder):
    """S3-Rec's encoder whose input embedding fuses each item with its mean attribute embedding."""

    def __init__(self, n_items: int, n_attributes: int, attr_offsets: torch.Tensor, attr_values: torch.Tensor,
                 cfg: EncoderConfig):
        super().__init__(n_items, cfg)
        self.M_A = nn.Embedding(n_attributes + 1, cfg.d, padding_idx=0)
        self.W_F = nn.Linear(2 * cfg.d, cfg.d)
        self.attrs = ItemAttributes(n_items, attr_offsets, attr_values)

    def embed(self, items: torch.Tensor) -> torch.Tensor:
        """E = Dropout(LayerNorm(W_F [M_I[i] ; mean M_A[A_i]] + P)) for left-padded items (B, w)."""
        w = items.size(1)
        positions = torch.arange(self.cfg.max_len - w, self.cfg.max_len, device=items.device)
        A_mean = self.attrs.mean_of(self.M_A.weight, items)  # (B, w, d)
        x = self.W_F(torch.cat([self.M_I(items), A_mean], dim=-1))  # (B, w, d)
        return self.drop(self.ln(x + self.P(positions)))


class SASRecF(SASRec):
    """SASRec whose inputs carry the items' attributes; scoring and losses are SASRec's.

    Args:
        n_items, n_attributes: vocabulary sizes (ids 1..n).
        attr_offsets, attr_values: item -> attributes CSR (see SequenceData).
        encoder, loss, n_negatives: as for SASRec.
    """

    def __init__(self, n_items: int, n_attributes: int, attr_offsets: torch.Tensor, attr_values: torch.Tensor,
                 encoder: EncoderConfig | None = None, loss: str = "bce", n_negatives: int = 256,
                 label_smoothing: float = 0.0):
        super().__init__(n_items, encoder, loss, n_negatives, label_smoothing)
        self.encoder = AttributeSequenceEncoder(n_items, n_attributes, attr_offsets, attr_values, self.encoder.cfg)
        init_weights(self, self.encoder.cfg.init_std)
        init_item_half_as_identity(self.encoder.W_F)  # the item signal starts at SASRec's scale (module docstring)


def build(split: LeaveOneOut, d: int = 64, max_len: int = 50, loss: str = "bce", n_negatives: int = 256,
          label_smoothing: float = 0.0, **encoder_kw) -> SASRecF:
    """SASRecF for this data set; encoder_kw are other EncoderConfig fields (n_layers, n_heads, dropout, ...)."""
    cfg = EncoderConfig(d=d, max_len=max_len, **encoder_kw)
    return SASRecF(split.n_items, split.data.n_attributes, *attribute_csr(split), cfg, loss=loss, n_negatives=n_negatives,
                       label_smoothing=label_smoothing)
