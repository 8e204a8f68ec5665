"""GRU4Rec (Hidasi, Karatzoglou, Baltrunas & Tikk, ICLR 2016), in the sequential-recommendation form
of the S3-Rec paper's comparison (Zhou et al., CIKM 2020, §5.1.2).

    x_t = Dropout(E[i_t])                    item embedding of the t-th item (dropout 0.25)
    h_t = GRU(x_t, h_{t-1})                  1 layer, hidden size d, h_0 = 0
    r_t(j) = h_t . E[j]                      score of item j as the next item, shared embeddings

Defaults: d = 64, 1 GRU layer, embedding dropout 0.25. Embeddings N(0, 0.02); GRU weight matrices
Glorot-uniform and zero biases (the original code's initialisation). Trained on next-item targets
at every position with the losses of SASRec (see next_item_loss.py), softmax over all items (`ce`)
by default.

Run defaults (`DEFAULTS`, filled in by `s3rec run --model gru4rec` below the user's options):
encoder.dropout = 0.25, this module's embedding dropout, so that config.json records the value that
trains (the original paper tunes dropout per data set and loss), and finetune.loss = ce. Why ce:
the original ranks each target against the other targets of its mini-batch (BPR / TOP1 over in-batch
negatives), not against one sampled item; ce is that ranking against every item. With the S3-Rec
recipe's `bce` (one negative) the GRU learns slowly: Beauty seed 1 validation NDCG@10 reached 0.0218
after ~100 epochs (GRU4RecF: 0.0197), while with ce GRU4RecF passed 0.037 within 19 epochs
(`--loss bce` restores the recipe's loss). Everything else is the S3-Rec recipe (d = 64, Adam lr 1e-3,
batches of 256 users, no weight decay): the original's session-parallel mini-batches belong to
session-based training and are not reproduced.

Left padding: the GRU must never read padding (its biases would move the state). Each left-padded
row is rotated so its items start at column 0 (padding moves to the end), run through the GRU, and
rotated back; outputs at real positions therefore depend only on the real items up to them.
"""

from __future__ import annotations

import torch
from torch import nn

from s3rec.data.batching import trim_left_padding
from s3rec.data.splits import LeaveOneOut
from s3rec.models.base import SequentialRecommender
from s3rec.models.next_item_loss import check_loss_name, next_item_loss
from s3rec.training.batches import TrainingSequences, finetune_batch

DEFAULTS = {"encoder.dropout": 0.25, "finetune.loss": "ce"}


class GRU4Rec(SequentialRecommender):
    """Session-based RNN: item embedding -> GRU -> dot product with the item embeddings."""

    # rows are independent and `loss` is a mean over target positions, so length-sorted micro-batches
    # are exact; the GRU then runs each part only as far as its longest row (2x faster epochs on Beauty)
    splits_rows = True

    def __init__(self, n_items: int, d: int = 64, n_layers: int = 1, dropout: float = 0.25, loss: str = "bce",
                 n_negatives: int = 256, init_std: float = 0.02, label_smoothing: float = 0.0):
        super().__init__()
        self.n_items, self.d = n_items, d
        self.loss_name, self.n_negatives, self.label_smoothing = check_loss_name(loss), n_negatives, label_smoothing
        self.E = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.drop = nn.Dropout(dropout)
        self.gru = nn.GRU(d, d, num_layers=n_layers, batch_first=True)
        nn.init.normal_(self.E.weight, 0.0, init_std)
        with torch.no_grad():
            self.E.weight[0].zero_()
        for name, p in self.gru.named_parameters():
            if name.startswith("weight"):
                nn.init.xavier_uniform_(p)
            else:
                nn.init.zeros_(p)

    def embed(self, items: torch.Tensor) -> torch.Tensor:
        """(B, w, d) GRU inputs of item ids (B, w) (before dropout)."""
        return self.E(items)

    def forward(self, items: torch.Tensor, inputs: torch.Tensor | None = None) -> torch.Tensor:
        """(B, w, d) hidden states h_t of left-padded items (B, w); rows at padding positions are 0.

        `inputs` (B, w, d) replaces embed(items) (pre-training feeds a [mask] vector through it, s3rec.transfer).
        """
        B, w = items.shape
        n = (items != 0).sum(1, keepdim=True)  # (B, 1) real items per row
        cols = torch.arange(w, device=items.device).unsqueeze(0)  # (1, w)
        to_right = (cols + w - n) % w  # right-padded column c reads left-padded column c + w - n
        x = self.embed(items) if inputs is None else inputs
        x = self.drop(x.gather(1, to_right.unsqueeze(-1).expand_as(x)))  # (B, w, d), items first, padding last
        h, _ = self.gru(x)  # outputs at real positions never see the trailing padding
        h = h.gather(1, ((cols + n) % w).unsqueeze(-1).expand(B, w, h.size(-1)))  # back to left padding
        return h * (items != 0).unsqueeze(-1)

    def final_state(self, histories: torch.Tensor) -> torch.Tensor:
        """(B, d) h_t at the newest item of each left-padded history."""
        (histories,) = trim_left_padding(histories)
        return self(histories)[:, -1]

    def item_table(self) -> torch.Tensor:
        """(n_items + 1, d) output embeddings (row 0 = padding)."""
        return self.E.weight

    def score_all(self, histories: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        return self.final_state(histories) @ self.item_table().T  # (B, N + 1)

    def score(self, histories: torch.Tensor, candidates: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        h = self.final_state(histories)  # (B, d)
        return (self.E(candidates) * h.unsqueeze(1)).sum(-1)  # (B, C)

    def training_batch(self, seqs: TrainingSequences, users: torch.Tensor, max_len: int,
                       gen: torch.Generator) -> dict[str, torch.Tensor]:
        n_sampled = self.n_negatives if self.loss_name == "sampled-softmax" else 0
        return finetune_batch(seqs, users, max_len, gen, n_sampled)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean loss over target positions. batch: inputs, targets, negatives (B, w); sampled (N,)."""
        h = self(batch["inputs"])  # (B, w, d)
        real = batch["targets"] != 0
        return next_item_loss(h[real], batch["targets"][real], batch["negatives"][real], self.item_table(),
                              self.loss_name, batch.get("sampled"), self.label_smoothing)


def build(split: LeaveOneOut, d: int = 64, max_len: int = 50, **kw) -> GRU4Rec:
    """GRU4Rec for this split (max_len only limits the histories the trainer feeds it)."""
    return GRU4Rec(split.n_items, d=d, **kw)
