"""FDSA: Feature-level Deeper Self-Attention Network (Zhang et al., IJCAI 2019), a baseline of S3-Rec.

Two causal self-attention streams over the same left-padded history, fused at every position:

    item stream     O_s = SA(Dropout(LayerNorm(M_I[s_t] + P)))              S3-Rec's encoder (Eq. 1-4)
    vanilla attn.   alpha = softmax_{a in A_i}(W_f M_A[a])                  §3.2, over item i's attributes
                    f_i = sum_a alpha_a M_A[a]                              (zero for an item without any)
    feature stream  O_f = SA(Dropout(LayerNorm(f_{s_t} + P_f)))             own positions and blocks
    fusion          O_sf = [O_s ; O_f] W_sf + b_sf                          §3.4
    prediction      y_{t,j} = O_sf,t . M_I[j]                               scored against item embeddings

Each stream uses the S3-Rec block (multi-head attention + feed-forward, residual, post-LayerNorm,
GELU) so FDSA differs from SASRec only in what the paper adds. W_sf's item half starts as the
identity (the rest N(0, 0.02)): O_sf begins as the item stream's output, i.e. SASRec's, plus a small
feature term. The paper's attention bias b_f is left out: adding one number to every logit of a
softmax changes nothing, so b_f gets no gradient (exactly zero or rounding noise, by CPU). Drawn
entirely from N(0, 0.02), W_sf scrambles the item stream's output before it is scored against M_I,
and on Beauty validation NDCG@10 stalled near 0.019 (SASRec: 0.040). The
attributes of an item are pooled by the paper's vanilla attention (not a mean). Losses and scoring are SASRec's (bce with one
negative by default; bpr, ce, sampled-softmax). Defaults follow S3-Rec's comparison (d = 64,
2 layers, 2 heads, dropout 0.5, max_len 50, weights N(0, 0.02)). Run defaults (`DEFAULTS`): none;
these are the S3-Rec recipe's (with Adam lr 1e-3, batch 256), which this comparison uses for FDSA.
"""

from __future__ import annotations

import torch
from torch import nn

from s3rec.data.splits import LeaveOneOut
from s3rec.models.dropout import FastDropout
from s3rec.models.encoder import EncoderConfig, SelfAttentionBlock, SequenceEncoder, attention_mask, init_weights
from s3rec.models.sasrec import SASRec
from s3rec.models.attributes import ItemAttributes, attribute_csr, init_item_half_as_identity

DEFAULTS: dict = {}


class FeatureStream(nn.Module):
    """Position embeddings + self-attention blocks over a sequence of feature vectors (B, w, d)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.P = nn.Embedding(cfg.max_len, cfg.d)
        self.ln = nn.LayerNorm(cfg.d, eps=1e-12)
        self.drop = FastDropout(cfg.dropout)
        self.blocks = nn.ModuleList(SelfAttentionBlock(cfg) for _ in range(cfg.n_layers))

    def forward(self, f: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        w = f.size(1)
        positions = torch.arange(self.cfg.max_len - w, self.cfg.max_len, device=f.device)
        O_f = self.drop(self.ln(f + self.P(positions)))  # (B, w, d)
        for block in self.blocks:
            O_f = block(O_f, attn_mask)
        return O_f


class FDSAEncoder(nn.Module):
    """The two streams and their fusion; offers SequenceEncoder's interface (forward(items, causal), M_I, cfg)."""

    def __init__(self, n_items: int, n_attributes: int, attr_offsets: torch.Tensor, attr_values: torch.Tensor,
                 cfg: EncoderConfig):
        super().__init__()
        self.cfg, self.n_items = cfg, n_items
        self.item_stream = SequenceEncoder(n_items, cfg)
        self.M_A = nn.Embedding(n_attributes + 1, cfg.d, padding_idx=0)
        self.W_f = nn.Linear(cfg.d, 1, bias=False)  # vanilla attention over an item's attributes
        self.feature_stream = FeatureStream(cfg)
        self.W_sf = nn.Linear(2 * cfg.d, cfg.d)
        self.attrs = ItemAttributes(n_items, attr_offsets, attr_values)

    @property
    def M_I(self) -> nn.Embedding:
        return self.item_stream.M_I

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before 2026-12-07 hold the dead bias b_f (see the module docstring)
        state_dict.pop(prefix + "W_f.bias", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, items: torch.Tensor, causal: bool) -> torch.Tensor:
        """(B, w, d) fused outputs O_sf for left-padded items (B, w)."""
        O_s = self.item_stream(items, causal)  # (B, w, d)
        f = self.attrs.attend_of(self.M_A.weight, self.W_f, items)  # (B, w, d)
        O_f = self.feature_stream(f, attention_mask(items, causal))  # (B, w, d)
        return self.W_sf(torch.cat([O_s, O_f], dim=-1))


class FDSA(SASRec):
    """FDSA with SASRec's scoring and losses (the encoder is replaced by the two-stream FDSAEncoder).

    Args:
        n_items, n_attributes: vocabulary sizes (ids 1..n).
        attr_offsets, attr_values: item -> attributes CSR (see SequenceData).
        encoder: configuration of both streams; loss, n_negatives: as for SASRec.
    """

    def __init__(self, n_items: int, n_attributes: int, attr_offsets: torch.Tensor, attr_values: torch.Tensor,
                 encoder: EncoderConfig | None = None, loss: str = "bce", n_negatives: int = 256,
                 label_smoothing: float = 0.0):
        super().__init__(n_items, encoder, loss, n_negatives, label_smoothing)
        self.encoder = FDSAEncoder(n_items, n_attributes, attr_offsets, attr_values, self.encoder.cfg)
        init_weights(self, self.encoder.cfg.init_std)
        init_item_half_as_identity(self.encoder.W_sf)  # O_sf starts as the item stream's output (module docstring)


def build(split: LeaveOneOut, d: int = 64, max_len: int = 50, loss: str = "bce", n_negatives: int = 256,
          label_smoothing: float = 0.0, **encoder_kw) -> FDSA:
    """FDSA for this data set; encoder_kw are other EncoderConfig fields (n_layers, n_heads, dropout, ...)."""
    cfg = EncoderConfig(d=d, max_len=max_len, **encoder_kw)
    return FDSA(split.n_items, split.data.n_attributes, *attribute_csr(split), cfg, loss=loss, n_negatives=n_negatives,
                    label_smoothing=label_smoothing)
