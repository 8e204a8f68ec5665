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
never read (SP's views), and, for batches that are mostly padding, running everything but attention
on the real tokens alone (`PackedRows`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from s3rec.models.dropout import FastDropout
from s3rec.models.packing import PackedRows


@dataclass(slots=True)
class EncoderConfig:
    """Encoder hyper-parameters (paper and authors' code defaults)."""

    d: int = 64
    n_layers: int = 2
    n_heads: int = 2
    max_len: int = 50
    dropout: float = 0.5
    attn_dropout: float = 0.5
    init_std: float = 0.02


class SelfAttentionBlock(nn.Module):
    """Multi-head self-attention + point-wise feed-forward, each with residual and LayerNorm."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        assert cfg.d % cfg.n_heads == 0, "d must be divisible by n_heads"
        self.n_heads, self.attn_dropout = cfg.n_heads, cfg.attn_dropout
        self.attn_drop = FastDropout(cfg.attn_dropout)
        self.qkv = nn.Linear(cfg.d, 3 * cfg.d)
        self.W_O = nn.Linear(cfg.d, cfg.d)
        self.ln_attn = nn.LayerNorm(cfg.d, eps=1e-12)
        self.W_1 = nn.Linear(cfg.d, 4 * cfg.d)
        self.W_2 = nn.Linear(4 * cfg.d, cfg.d)
        self.ln_ffn = nn.LayerNorm(cfg.d, eps=1e-12)
        self.drop = FastDropout(cfg.dropout)

    def forward(self, F_in: torch.Tensor, attn_mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """(B, L, d) block outputs of left-padded rows; with last_only, (B, 1, d): only the last query."""
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
        S = self.attend(q, k, v, attn_mask).transpose(1, 2).reshape(B, q.size(2), d)  # (B, L_q, d)
        return self.feed_forward(F_in, S)

    def forward_packed(self, x: torch.Tensor, rows: PackedRows, last_only: bool = False) -> torch.Tensor:
        """Block outputs of packed tokens (T, d): attention per length group, the rest on real tokens only.

        With last_only, the last-only rows (SP's views) produce only their last token's output:
        returns (T_full + n_last, d) in the order of `rows.query_tokens`.
        """
        d, h = x.size(1), self.n_heads
        # one gather of every group's slots and one pick of every group's real outputs: per-group
        # indexing would zero-fill and scatter a (T, 3d) gradient once per group in the backward;
        # index_select because CPU advanced indexing (t[idx]) was ~10x slower for these gathers
        slots = self.qkv(x).index_select(0, rows.gather).split(rows.slot_counts)  # each (n * w, 3d)
        S = []
        for g, qkv in zip(rows.groups, slots):
            n, w = g.shape
            q, k, v = qkv.view(n, w, 3, h, d // h).permute(2, 0, 3, 1, 4)  # 3 x (n, h, w, d/h)
            mask = g.mask if g.mask.dtype == q.dtype else g.mask.to(q.dtype)  # autocast may run in bf16
            if last_only and g.last_only:  # only the last query of these rows is ever read
                S.append(self.attend(q[:, :, -1:], k, v, mask[:, :, -1:]).reshape(n, d))
            else:
                S.append(self.attend(q, k, v, mask).transpose(1, 2).reshape(n * w, d))
        S = torch.cat(S).index_select(0, rows.real_last if last_only else rows.real)  # (T or T_full + n_last, d)
        F_in = x.index_select(0, rows.query_tokens) if last_only else x
        return self.feed_forward(F_in, S)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """Multi-head attention (n, h, L_q, d/h); attn_mask (bool: True = allowed, or additive) hides padding keys."""
        if not (self.training and self.attn_dropout > 0 and q.device.type == "cpu"):
            p = self.attn_dropout if self.training else 0.0
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=p)
        # on CPU, SDPA draws its dropout mask with bernoulli_ (~5% of a pre-training step): same math, byte mask
        scores = q @ k.transpose(-2, -1) * q.size(-1) ** -0.5  # (n, h, L_q, w)
        scores = scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else scores + attn_mask
        return self.attn_drop(torch.softmax(scores, dim=-1)) @ v

    def feed_forward(self, F_in: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
        """Output projection, residual + LayerNorm, then the point-wise feed-forward (Eq. 3-4)."""
        F_attn = self.ln_attn(F_in + self.drop(self.W_O(S)))
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

    def last_state(self, items: torch.Tensor, causal: bool) -> torch.Tensor:
        """(B, d) forward(items, causal)[:, -1]: the last block computes only the newest position's query
        (what scoring reads)."""
        attn_mask = attention_mask(items, causal)  # (B, 1, w, w)
        F_t = self.embed(items)
        for block in self.blocks[:-1]:
            F_t = block(F_t, attn_mask)
        return self.blocks[-1](F_t, attn_mask, last_only=True)[:, 0]

    def encode_views(self, items: torch.Tensor, n_full: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Bidirectional outputs: (n_full, w, d) for the first n_full rows, (N - n_full, d) at the last
        position of the others; at real positions the numbers of forward(items, False) sliced that way
        (padding positions: unspecified).

        SP reads only last-position outputs, so the last block computes nothing else for those rows.
        A batch that is mostly padding (random batches of the faithful recipe) runs on packed real
        tokens (`PackedRows`); a nearly full one (length buckets) stays padded, which is faster there.
        """
        if int((items != 0).sum()) < (1 - PACK_MIN_PADDING) * items.numel():
            return self.encode_views_packed(items, n_full)
        attn_mask = attention_mask(items, causal=False)  # (N, 1, w, w)
        F_t = self.embed(items)
        for block in self.blocks[:-1]:
            F_t = block(F_t, attn_mask)
        last, N = self.blocks[-1], items.size(0)
        F_full = last(F_t[:n_full], attn_mask[:n_full]) if n_full > 0 else F_t[:0]
        F_last = last(F_t[n_full:], attn_mask[n_full:], last_only=True)[:, 0] if n_full < N else F_t[n_full:, -1]
        return F_full, F_last

    def encode_views_packed(self, items: torch.Tensor, n_full: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`encode_views` on packed real tokens: no padding outside attention, attention per length group;
        zero at padding positions."""
        N, w = items.shape
        rows = PackedRows(items, n_full, self.M_I.weight.dtype)
        col = rows.flat % w
        positions = self.cfg.max_len - w + col
        x = self.drop(self.ln(self.M_I(items.reshape(-1).index_select(0, rows.flat)) + self.P(positions)))  # (T, d)
        for block in self.blocks[:-1]:
            x = block.forward_packed(x, rows)
        x = self.blocks[-1].forward_packed(x, rows, last_only=True)  # (T_full + N - n_full, d)
        d = x.size(1)
        T_full = rows.n_full_tokens
        F_full = x.new_zeros(n_full * w, d).index_copy(0, rows.flat[:T_full], x[:T_full]).view(n_full, w, d)
        F_last = x.new_zeros(N - n_full, d).index_copy(0, rows.last_rows - n_full, x[T_full:])
        return F_full, F_last


def encode_views(encoder: nn.Module, items: torch.Tensor, n_full: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`SequenceEncoder.encode_views` for any pre-trainable encoder (others run in full and are sliced)."""
    if isinstance(encoder, SequenceEncoder):
        return encoder.encode_views(items, n_full)
    F_t = encoder(items, causal=False)
    return F_t[:n_full], F_t[n_full:, -1]


PACK_MIN_PADDING = 0.3  # encode_views packs batches with at least this share of padding (docs/speed.md)
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
