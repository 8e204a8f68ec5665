"""BERT4Rec (Sun, Liu, Wu, Pei, Lin, Ou, Jiang, CIKM 2019): a bidirectional Transformer trained by cloze.

Encoder: the S3-Rec encoder (encoder.py) in bidirectional mode, i.e. BERT's post-LayerNorm blocks
(§3.2-3.4): h^0 = item + position embedding (LayerNorm, dropout), then L blocks of multi-head
self-attention and a GELU feed-forward network, each with residual, dropout and LayerNorm. The item
table has a [mask] row, id n_items + 1 (encoder.mask_id).

Output layer (§3.5, Eq. 7), with the LayerNorm of the authors' code (BERT's masked-LM head):
    P(v) = softmax(LN(GELU(h_t W^P + b^P)) E^T + b^O)
E is the input item table (shared), b^O a per-item output bias.

Training (§3.6, cloze task): each user's last max_len training items; every real item is replaced by
[mask] with probability rho = mask_ratio (at least one per user: the last item when none was drawn,
which also matches the test-time task); loss = softmax cross-entropy over all items at the masked
positions (padding id 0 and [mask] are never in the softmax).

Inference: [mask] is appended after the history (the oldest item is dropped when the history already
fills max_len) and all items are scored from the output at that position.

Defaults (paper §4.3): d = 64, 2 layers, 2 heads, dropout 0.1 (hidden and attention), max_len = 50
for the short-sequence data sets (Beauty, Steam; 200 for MovieLens), truncated-normal init with
std 0.02 (authors' TF code: tf.truncated_normal_initializer(0.02), cut at 2 std). The paper tunes
the mask proportion rho per data set (0.6 Beauty, 0.4 Steam, 0.2 ML-1m/ML-20m); the default here
is 0.2, the same ratio as S3-Rec's own masked-item objectives, and `mask_ratio` overrides it. The
paper trains with Adam, lr 1e-4, l2 weight decay 0.01, batch 256.

Run defaults (`DEFAULTS`, filled in by `s3rec run --model bert4rec` below the user's options):
encoder.dropout = encoder.attn_dropout = 0.1, finetune.loss = ce (the cloze
softmax, built in, recorded), and BERT's optimizer: weight decay 0.01 applied decoupled, to the
weight matrices and embeddings but not to biases and LayerNorm gains (finetune.optimizer = adamw;
Adam's L2-in-the-gradient form would turn 0.01 into steps of size ~lr for rarely updated
embeddings). Batch 256, lr 1e-3, d = 64, 2 layers, 2 heads and max_len 50 are the
recipe's. Not taken by default: the paper's lr 1e-4 with linear decay over 400k steps (~4,500 epochs
on Beauty, far more than early stopping trains here: at 1e-4 Beauty seed 1 validation NDCG@10 crept
to 0.0195 in 56 epochs, at 1e-3 it was 0.0271 after 10; `--set finetune.lr=1e-4` and
finetune.lr_schedule = linear restore them) and gradient clipping at norm 5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from s3rec.data.batching import left_pad, trim_left_padding
from s3rec.models.base import SequentialRecommender
from s3rec.models.encoder import EncoderConfig, SequenceEncoder
from s3rec.training.batches import TrainingSequences

DEFAULTS = {"finetune.loss": "ce", "encoder.dropout": 0.1, "encoder.attn_dropout": 0.1,
            "finetune.optimizer": "adamw", "finetune.weight_decay": 0.01}


class BERT4Rec(SequentialRecommender):
    """Bidirectional self-attentive recommender trained with the cloze (masked item) task."""

    # rows are independent and `loss` is a mean over masked positions: length-sorted micro-batches are
    # exact (2.5x faster training batches on Beauty)
    splits_rows = True

    def __init__(self, n_items: int, encoder: EncoderConfig | None = None, mask_ratio: float = 0.2):
        super().__init__()
        if not 0 < mask_ratio <= 1:
            raise ValueError(f"mask_ratio must be in (0, 1], got {mask_ratio}")
        cfg = encoder or EncoderConfig(dropout=0.1, attn_dropout=0.1)
        self.n_items, self.mask_ratio = n_items, mask_ratio
        self.encoder = SequenceEncoder(n_items, cfg)
        self.W_P = nn.Linear(cfg.d, cfg.d)
        self.ln_out = nn.LayerNorm(cfg.d, eps=1e-12)
        self.b_O = nn.Parameter(torch.zeros(n_items + 1))
        truncated_normal_init(self, cfg.init_std)

    @property
    def max_len(self) -> int:
        return self.encoder.cfg.max_len

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """(..., n_items + 1) Eq. 7 before the softmax, for outputs h (..., d); the [mask] row is no candidate."""
        E = self.encoder.M_I.weight[: self.n_items + 1]
        return self.ln_out(F.gelu(self.W_P(h))) @ E.T + self.b_O

    def with_mask_appended(self, histories: torch.Tensor) -> torch.Tensor:
        """(B, w) inputs: the last max_len - 1 history items, then [mask]; trimmed to the longest row."""
        mask_col = torch.full_like(histories[:, :1], self.encoder.mask_id)
        inputs = torch.cat([histories, mask_col], 1)[:, -self.max_len :]  # (B, <= max_len)
        (inputs,) = trim_left_padding(inputs)
        return inputs

    def score_all(self, histories: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        h_mask = self.encoder.last_state(self.with_mask_appended(histories), causal=False)  # (B, d)
        return self.logits(h_mask)  # (B, N + 1)

    def training_batch(self, seqs: TrainingSequences, users: torch.Tensor, max_len: int,
                       gen: torch.Generator) -> dict[str, torch.Tensor]:
        """Cloze batch: `masked` inputs (B, w) and `targets` (B, w), the original item where masked, else 0."""
        items = left_pad(seqs.items, seqs.starts[users], seqs.ends[users], max_len)  # (B, max_len)
        (items,) = trim_left_padding(items)
        real = items != 0
        is_mask = (torch.rand(items.shape, generator=gen) < self.mask_ratio) & real
        is_mask[:, -1] |= ~is_mask.any(1) & real[:, -1]  # at least one masked item per user
        masked = torch.where(is_mask, seqs.n_items + 1, items)
        return {"masked": masked, "targets": torch.where(is_mask, items, 0)}

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean softmax cross-entropy over all items at the masked positions."""
        h = self.encoder(batch["masked"], causal=False)  # (B, w, d)
        at_mask = batch["targets"] != 0
        logits = self.logits(h[at_mask])  # (P, N + 1)
        logits[:, 0] = -torch.inf
        return F.cross_entropy(logits, batch["targets"][at_mask], reduction="sum") / max(len(logits), 1)


def truncated_normal_init(module: nn.Module, std: float) -> None:
    """Linear/embedding weights ~ N(0, std) truncated at 2 std, zero biases, unit LayerNorm."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build(split, d: int = 64, max_len: int = 50, n_layers: int = 2, n_heads: int = 2, dropout: float = 0.1,
          mask_ratio: float = 0.2, attn_dropout: float | None = None, **kw) -> BERT4Rec:
    """BERT4Rec for a LeaveOneOut split (paper defaults; attn_dropout defaults to dropout; other keywords are ignored)."""
    attn_dropout = dropout if attn_dropout is None else attn_dropout
    cfg = EncoderConfig(d=d, n_layers=n_layers, n_heads=n_heads, max_len=max_len, dropout=dropout, attn_dropout=attn_dropout)
    return BERT4Rec(split.n_items, cfg, mask_ratio=mask_ratio)
