"""AutoInt: automatic feature interaction via self-attention (Song et al., CIKM 2019), a baseline of S3-Rec.

Four fields per (user, history, candidate item) triple, each embedded in d_field dimensions (§4.2,
multi-valued fields averaged, Eq. 2):

    e_user  E_U[u]                      (zero for an unknown user)
    e_hist  mean of E_H over the last max_len history items
    e_item  E_I[i]
    e_attr  mean of E_A over the item's attributes

Interacting layer (§4.3), per head h and field m, over the M = 4 fields:

    alpha_mk = softmax_k(<W_Q e_m, W_K e_k>)                   Eq. 5-6 (no 1/sqrt(d') scaling)
    e~_m     = concat_h sum_k alpha_mk W_V e_k                 Eq. 7-8
    e_m      = ReLU(e~_m + W_Res e_m)                          Eq. 9
    y        = w^T [e_1 ; ... ; e_M] + b  (a logit)            Eq. 10

Paper defaults: d_field = 16, 3 layers, 2 heads of d' = 32 (H d' = 64). `build` maps the sequence
models' width d = 64 to H d' = d (so d' = d / H = 32) and keeps d_field = 16. Init as in the
authors' code: embeddings N(0, 0.01), dense layers Glorot-uniform, output bias 0. Loss: logloss
(BCE, default) or BPR over (user, history prefix, next item, unseen negative) triples.

Full ranking: the first layer's projections are per field, so they are computed once per user
(user, history) and once per item (item, attributes) and only the 4 x 4 attention runs per pair;
layers 2.. run per (user, item) pair, `chunk_size` items at a time, so memory is
O(B * chunk_size * M * 4 H d') whatever the number of items. The default chunk holds about 512 pairs on
a CPU, where every intermediate then stays in cache (2.5x faster per pair than chunks of 2^16 pairs:
benchmarks/bench_autoint.py), and 2^16 pairs on a GPU. `score` (the sampled protocol) runs its
(user, candidate) pairs in chunks of the same size.

Run defaults (`DEFAULTS`): eval.selection = sampled: the best epoch is chosen on the sampled
validation (target + 99 negatives), because one full-ranking pass costs ~12 µs per (user, item) pair
on one CPU thread (~40 min per pass on Beauty, measured 2026-12-05; the S3-Rec paper reports AutoInt on the sampled protocol only);
the test split is still ranked under every protocol asked for. The paper's sizes above are built in
and its logloss is the recipe's `bce`; optimiser and batch are the S3-Rec recipe's (Adam lr 1e-3,
batches of 256 users with all their next-item targets).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from s3rec.data.splits import LeaveOneOut
from s3rec.models.base import SequentialRecommender
from s3rec.models.fm import PAIR_LOSSES, pair_batch, pair_loss, prefix_mean
from s3rec.models.attributes import ItemAttributes, attribute_csr
from s3rec.training.batches import TrainingSequences

N_FIELDS = 4  # user, history | item, attributes
DEFAULTS: dict = {"eval.selection": "sampled"}
PAIRS_PER_CHUNK = {"cpu": 512, "cuda": 1 << 16}  # default (user, item) pairs per chunk, by device type


def pairs_per_chunk(device: torch.device) -> int:
    """Default (user, item) pairs per chunk on this device (small on a CPU so intermediates stay in cache)."""
    return PAIRS_PER_CHUNK.get(device.type, PAIRS_PER_CHUNK["cuda"])


class InteractingLayer(nn.Module):
    """Multi-head self-attention across fields with a residual projection (Eq. 5-9)."""

    def __init__(self, d_in: int, n_heads: int, d_head: int):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_head
        self.W = nn.Linear(d_in, 4 * n_heads * d_head, bias=False)  # [W_Query ; W_Key ; W_Value ; W_Res]

    def project(self, e: torch.Tensor) -> torch.Tensor:
        """(..., M, 4 H d') the four projections of each field; field-wise, so it can run per side."""
        return self.W(e)

    def interact(self, proj: torch.Tensor) -> torch.Tensor:
        """(N, M, H d') layer output from the projections (N, M, 4 H d') of N field sets."""
        N, M, _ = proj.shape
        q, k, v, res = proj.view(N, M, 4, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)  # 4 x (N, H, M, d')
        e_tilde = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # (N, H, M, d')
        return F.relu(e_tilde + res).transpose(1, 2).reshape(N, M, self.n_heads * self.d_head)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return self.interact(self.project(e))


class AutoInt(SequentialRecommender):
    """AutoInt over user, history, item and attribute fields, scoring every item in chunks.

    Args:
        n_items, n_users, n_attributes: vocabulary sizes (items/attributes 1..n, users 0..n-1).
        attr_offsets, attr_values: item -> attributes CSR (see SequenceData).
        d_field: field embedding size; n_layers, n_heads, d_head: interacting layers (H heads of d');
        max_len: history items read (the newest); loss: "bce" or "bpr";
        chunk_size: items per chunk in score_all (None: pairs_per_chunk(device) // B).
    """

    def __init__(self, n_items: int, n_users: int, n_attributes: int, attr_offsets: torch.Tensor,
                 attr_values: torch.Tensor, d_field: int = 16, n_layers: int = 3, n_heads: int = 2,
                 d_head: int = 32, max_len: int = 50, loss: str = "bce", chunk_size: int | None = None):
        super().__init__()
        if loss not in PAIR_LOSSES:
            raise ValueError(f"unknown loss {loss!r} for AutoInt; choose from {', '.join(PAIR_LOSSES)}")
        if n_layers < 1:
            raise ValueError("AutoInt needs at least one interacting layer")
        self.n_items, self.max_len, self.loss_name, self.chunk_size = n_items, max_len, loss, chunk_size
        self.E_U = nn.Embedding(n_users, d_field)
        self.E_H = nn.Embedding(n_items + 2, d_field)
        self.E_I = nn.Embedding(n_items + 2, d_field)
        self.E_A = nn.Embedding(n_attributes + 1, d_field)
        d_out = n_heads * d_head
        self.layers = nn.ModuleList(InteractingLayer(d_field if l == 0 else d_out, n_heads, d_head) for l in range(n_layers))
        self.out = nn.Linear(N_FIELDS * d_out, 1)
        self.attrs = ItemAttributes(n_items, attr_offsets, attr_values)
        for emb in (self.E_U, self.E_H, self.E_I, self.E_A):
            nn.init.normal_(emb.weight, std=0.01)
        for layer in self.layers:
            nn.init.xavier_uniform_(layer.W.weight)
        nn.init.xavier_normal_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def user_fields(self, histories: torch.Tensor, users: torch.Tensor | None) -> torch.Tensor:
        """(B, w, 2, d_field) [e_user, e_hist] for every history prefix histories[:, :t+1] (B, w)."""
        e_hist = prefix_mean(histories, self.E_H.weight)  # (B, w, d_field)
        e_user = torch.zeros_like(e_hist) if users is None else self.E_U(users).unsqueeze(1).expand_as(e_hist)
        return torch.stack([e_user, e_hist], dim=2)

    def item_fields(self) -> torch.Tensor:
        """(n_items + 2, 2, d_field) [e_item, e_attr] of every item id."""
        return torch.stack([self.E_I.weight, self.attrs.mean(self.E_A.weight)], dim=1)

    def logits(self, fields: torch.Tensor) -> torch.Tensor:
        """(N,) y for N field sets (N, M, d_field): every layer per set."""
        e = fields
        for layer in self.layers:
            e = layer(e)
        return self.out(e.flatten(1)).squeeze(-1)

    def chunked_logits(self, fields: torch.Tensor) -> torch.Tensor:
        """(N,) logits computed pairs_per_chunk field sets at a time (same values, faster on a CPU)."""
        step = pairs_per_chunk(fields.device)
        return torch.cat([self.logits(fields[lo : lo + step]) for lo in range(0, fields.size(0), step)])

    def final_user_fields(self, histories: torch.Tensor, users: torch.Tensor | None) -> torch.Tensor:
        """(B, 2, d_field) user-side fields of the whole (last max_len items of the) history."""
        return self.user_fields(histories[:, -self.max_len:], users)[:, -1]

    def score(self, histories: torch.Tensor, candidates: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        u = self.final_user_fields(histories, users)  # (B, 2, d_field)
        i = self.item_fields()[candidates]  # (B, C, 2, d_field)
        B, C = candidates.shape
        fields = torch.cat([u.unsqueeze(1).expand(B, C, -1, -1), i], dim=2)  # (B, C, 4, d_field)
        return self.chunked_logits(fields.flatten(0, 1)).view(B, C)

    def score_all(self, histories: torch.Tensor, users: torch.Tensor | None = None, chunk_size: int | None = None) -> torch.Tensor:
        chunk = chunk_size or self.chunk_size or max(1, pairs_per_chunk(histories.device) // histories.size(0))
        first, rest = self.layers[0], self.layers[1:]
        P_u = first.project(self.final_user_fields(histories, users))  # (B, 2, 4 H d')
        P_i = first.project(self.item_fields()[: self.n_items + 1])  # (N + 1, 2, 4 H d')
        B, N = P_u.size(0), P_i.size(0)
        out = P_u.new_empty(B, N)
        for lo in range(0, N, chunk):
            P_c = P_i[lo : lo + chunk]
            C = P_c.size(0)
            proj = torch.cat([P_u.unsqueeze(1).expand(B, C, -1, -1), P_c.unsqueeze(0).expand(B, C, -1, -1)], dim=2)
            e = first.interact(proj.flatten(0, 1))  # (B C, 4, H d')
            for layer in rest:
                e = layer(e)
            out[:, lo : lo + C] = self.out(e.flatten(1)).view(B, C)
        return out  # (B, N + 1)

    def training_batch(self, seqs: TrainingSequences, users: torch.Tensor, max_len: int,
                       gen: torch.Generator) -> dict[str, torch.Tensor]:
        return pair_batch(seqs, users, max_len, gen)

    def pair_scores(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """y(user, prefix up to t, target_t) and y(..., negative_t) at every real target position (P,) each."""
        real = batch["targets"] != 0
        u = self.user_fields(batch["inputs"], batch["users"])[real]  # (P, 2, d_field)
        items = self.item_fields()
        pos, neg = items[batch["targets"][real]], items[batch["negatives"][real]]  # (P, 2, d_field) each
        y = self.logits(torch.cat([torch.cat([u, pos], 1), torch.cat([u, neg], 1)]))  # (2P,)
        return y.chunk(2)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return pair_loss(self.loss_name, *self.pair_scores(batch))


def build(split: LeaveOneOut, d: int = 64, max_len: int = 50, loss: str = "bce", d_field: int = 16,
          n_layers: int = 3, n_heads: int = 2, chunk_size: int | None = None) -> AutoInt:
    """AutoInt whose interacting layers are d = H d' wide (paper: 2 heads x 32), fields d_field = 16."""
    if d % n_heads:
        raise ValueError(f"d = {d} must be divisible by n_heads = {n_heads}")
    return AutoInt(split.n_items, split.n_users, split.data.n_attributes, *attribute_csr(split), d_field=d_field,
                   n_layers=n_layers, n_heads=n_heads, d_head=d // n_heads, max_len=max_len, loss=loss,
                   chunk_size=chunk_size)
