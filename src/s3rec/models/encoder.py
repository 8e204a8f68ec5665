"""The self-attentive sequence encoder of S3-Rec (Zhou et al., CIKM 2020, §4.2, Eq. 1-4).

E_I = LayerNorm(M_I[items] + P) with dropout, then L blocks of
    F = LayerNorm(F + Dropout(MultiHead(F) W_O))          (Eq. 2-3)
    F = LayerNorm(F + Dropout(GELU(F W_1 + b_1) W_2 + b_2)) (Eq. 4)
as in the authors' code (post-LayerNorm, eps 1e-12, GELU, dropout 0.5, weights N(0, 0.02)).

Sequences are left-padded: the last column is always the newest item and has position id
max_len - 1. A batch trimmed to width w keeps position ids max_len - w .. max_len - 1, so trimming
changes no number. Attention is bidirectional (pre-training) or causal (fine-tuning) with the
same weights; padding keys are never attended to. `encode_views` gives pre-training the same
outputs while computing, in the last block, only the last query of rows whose other positions are
never read (SP's views).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class EncoderConfig:
    """Encoder hyper-parameters (paper and authors' code defaults)."""

    d: int = 64
    n_layers: int = 2
    n_heads: int = 2
    max_len: int = 50
    dropout: float = 0.5
    attn_dropout: float = 0.5
    init_std: float = 0.02


class FastDropout(nn.Module):
    """Inverted dropout whose keep-mask comes from random bytes (8 per 64-bit draw).

    On CPU, drawing the mask dominates nn.Dropout's cost (about 30% of a pre-training step); one
    64-bit draw per 8 elements is ~9x cheaper. The drop probability is p rounded to a multiple of
    1/256 (0.5 exactly; 0.2 becomes 51/256 = 0.199); the kept values are scaled by 1 / (1 - p).
    """

    def __init__(self, p: float):
        super().__init__()
        self.threshold = round(p * 256)
        self.p = self.threshold / 256

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        n = x.numel()
        bits = torch.empty((n + 7) // 8, dtype=torch.int64, device=x.device).random_(-(2**63), 2**63 - 1)
        keep = bits.view(torch.uint8)[:n].view_as(x) >= self.threshold
        return x * keep * (1.0 / (1.0 - self.p))


class SelfAttentionBlock(nn.Module):
    """Multi-head self-attention + point-wise feed-forward, each with residual and LayerNorm."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        assert cfg.d % cfg.n_heads == 0, "d must be divisible by n_heads"
        self.n_heads, self.attn_dropout = cfg.n_heads, cfg.attn_dropout
        self.qkv = nn.Linear(cfg.d, 3 * cfg.d)
        self.W_O = nn.Linear(cfg.d, cfg.d)
        self.ln_attn = nn.LayerNorm(cfg.d, eps=1e-12)
        self.W_1 = nn.Linear(cfg.d, 4 * cfg.d)
        self.W_2 = nn.Linear(4 * cfg.d, cfg.d)
        self.ln_ffn = nn.LayerNorm(cfg.d, eps=1e-12)
        self.drop = FastDropout(cfg.dropout)

    def forward(self, F_in: torch.Tensor, attn_mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """(B, L, d) block outputs; with last_only, (B, 1, d): only the last query, over all keys."""
        B, L, d = F_in.shape
        h, d_h = self.n_heads, d // self.n_heads
        if last_only:  # the rows' other outputs are never read: skip their queries, W_O and feed-forward
            W_q, W_kv = self.qkv.weight.split((d, 2 * d))
            b_q, b_kv = self.qkv.bias.split((d, 2 * d))
            k, v = F.linear(F_in, W_kv, b_kv).view(B, L, 2, h, d_h).permute(2, 0, 3, 1, 4)  # 2 x (B, h, L, d/h)
            F_in = F_in[:, -1:]
            q = F.linear(F_in, W_q, b_q).view(B, 1, h, d_h).transpose(1, 2)  # (B, h, 1, d/h)
            attn_mask = attn_mask[:, :, -1:]
        else:
            q, k, v = self.qkv(F_in).view(B, L, 3, h, d_h).permute(2, 0, 3, 1, 4)  # 3 x (B, h, L, d/h)
        p = self.attn_dropout if self.training else 0.0
        S = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=p)  # (B, h, L_q, d/h)
        S = S.transpose(1, 2).reshape(B, q.size(2), d)
        F_attn = self.ln_attn(F_in + self.drop(self.W_O(S)))  # (B, L_q, d)
        return self.ln_ffn(F_attn + self.drop(self.W_2(F.gelu(self.W_1(F_attn)))))


class SequenceEncoder(nn.Module):
    """Item + position embeddings followed by L self-attention blocks.

    Args:
        n_items: number of real items; the embedding table has n_items + 2 rows
            (0 = padding, n_items + 1 = the [mask] token of pre-training).
    """

    def __init__(self, n_items: int, cfg: EncoderConfig):
        super().__init__()
        self.cfg, self.n_items = cfg, n_items
        self.mask_id = n_items + 1
        self.M_I = nn.Embedding(n_items + 2, cfg.d, padding_idx=0)
        self.P = nn.Embedding(cfg.max_len, cfg.d)
        self.ln = nn.LayerNorm(cfg.d, eps=1e-12)
        self.drop = FastDropout(cfg.dropout)
        self.blocks = nn.ModuleList(SelfAttentionBlock(cfg) for _ in range(cfg.n_layers))

    def embed(self, items: torch.Tensor) -> torch.Tensor:
        """E_I = Dropout(LayerNorm(M_I[items] + P)) for left-padded items (B, w), w <= max_len."""
        w = items.size(1)
        positions = torch.arange(self.cfg.max_len - w, self.cfg.max_len, device=items.device)
        return self.drop(self.ln(self.M_I(items) + self.P(positions)))  # (B, w, d)

    def forward(self, items: torch.Tensor, causal: bool) -> torch.Tensor:
        """(B, w, d) encoder outputs F for left-padded items (B, w)."""
        attn_mask = attention_mask(items, causal)  # (B, 1, w, w)
        F_t = self.embed(items)
        for block in self.blocks:
            F_t = block(F_t, attn_mask)
        return F_t

    def encode_views(self, items: torch.Tensor, n_full: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Bidirectional outputs: (n_full, w, d) for the first n_full rows, (N - n_full, d) at the last
        position of the others; the same numbers as forward(items, False) sliced that way.

        SP reads only last-position outputs, so the last block computes nothing else for those rows.
        """
        attn_mask = attention_mask(items, causal=False)  # (N, 1, w, w)
        F_t = self.embed(items)
        for block in self.blocks[:-1]:
            F_t = block(F_t, attn_mask)
        last, N = self.blocks[-1], items.size(0)
        F_full = last(F_t[:n_full], attn_mask[:n_full]) if n_full > 0 else F_t[:0]
        F_last = last(F_t[n_full:], attn_mask[n_full:], last_only=True)[:, 0] if n_full < N else F_t[n_full:, -1]
        return F_full, F_last


def encode_views(encoder: nn.Module, items: torch.Tensor, n_full: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`SequenceEncoder.encode_views` for any pre-trainable encoder (others run in full and are sliced)."""
    if isinstance(encoder, SequenceEncoder):
        return encoder.encode_views(items, n_full)
    F_t = encoder(items, causal=False)
    return F_t[:n_full], F_t[n_full:, -1]


def attention_mask(items: torch.Tensor, causal: bool) -> torch.Tensor:
    """(B, 1, w, w) boolean mask: True where query i may attend to key j.

    Keys that are padding are hidden. Every position may attend to itself so that padding queries
    (whose outputs are never used) have a well-defined softmax; real queries are unaffected.
    """
    w = items.size(1)
    allowed = (items != 0).unsqueeze(1).unsqueeze(2)  # (B, 1, 1, w)
    if causal:
        allowed = allowed & torch.ones(w, w, dtype=torch.bool, device=items.device).tril()
    return allowed | torch.eye(w, dtype=torch.bool, device=items.device)


def init_weights(module: nn.Module, std: float) -> None:
    """N(0, std) for linear and embedding weights, zero biases, unit LayerNorm (authors' init)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
