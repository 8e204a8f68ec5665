"""Next-item model: the S3-Rec encoder in causal mode (SASRec, Kang & McAuley, ICDM 2018; S3-Rec §4.4).

Prediction is the dot product of the last position's output F_t with the item embeddings M_I
(Eq. 16). `--model sasrec` trains it from random initialisation; `--model s3rec` loads the
pre-trained encoder and embeddings first. Losses (per target position t, target i+, negative i-):

    bce              -log sigmoid(F_t . e_i+) - log(1 - sigmoid(F_t . e_i-))   authors' code, default
    bpr              -log sigmoid(F_t . e_i+ - F_t . e_i-)                      the paper's Eq. 17
    ce               softmax cross-entropy over all items
    sampled-softmax  softmax over the target and N uniform negatives shared by the batch
"""

from __future__ import annotations

import torch

from s3rec.data.batching import trim_left_padding
from s3rec.training.batches import TrainingSequences, finetune_batch
from s3rec.models.base import SequentialRecommender
from s3rec.models.encoder import EncoderConfig, SequenceEncoder, init_weights
from s3rec.models.next_item_loss import check_loss_name, next_item_loss

class SASRec(SequentialRecommender):
    """Causal self-attentive next-item recommender sharing S3-Rec's encoder."""

    splits_rows = True  # rows are independent and `loss` is a mean over target positions

    def __init__(self, n_items: int, encoder: EncoderConfig | None = None, loss: str = "bce", n_negatives: int = 256,
                 label_smoothing: float = 0.0):
        super().__init__()
        self.n_items, self.loss_name, self.n_negatives = n_items, check_loss_name(loss), n_negatives
        self.label_smoothing = label_smoothing
        self.encoder = SequenceEncoder(n_items, encoder or EncoderConfig())
        init_weights(self, self.encoder.cfg.init_std)

    def item_table(self) -> torch.Tensor:
        """(n_items + 1, d) embeddings of the rankable ids (the [mask] row is never a candidate)."""
        return self.encoder.M_I.weight[: self.n_items + 1]

    def final_state(self, histories: torch.Tensor) -> torch.Tensor:
        """(B, d) F_t at the newest position of each left-padded history."""
        (histories,) = trim_left_padding(histories)
        if isinstance(self.encoder, SequenceEncoder):  # FDSA's two-stream encoder has no last-only pass
            return self.encoder.last_state(histories, causal=True)
        return self.encoder(histories, causal=True)[:, -1]

    def score_all(self, histories: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        return self.final_state(histories) @ self.item_table().T  # (B, N + 1)

    def score(self, histories: torch.Tensor, candidates: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        F_t = self.final_state(histories)  # (B, d)
        return (self.encoder.M_I(candidates) * F_t.unsqueeze(1)).sum(-1)  # (B, C)

    def training_batch(self, seqs: TrainingSequences, users: torch.Tensor, max_len: int,
                       gen: torch.Generator, ends: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        n_sampled = self.n_negatives if self.loss_name == "sampled-softmax" else 0
        return finetune_batch(seqs, users, max_len, gen, n_sampled, ends)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean loss over target positions. batch: inputs, targets, negatives (B, w); sampled (N,)."""
        F_all = self.encoder(batch["inputs"], causal=True)  # (B, w, d)
        real = batch["targets"] != 0
        return next_item_loss(F_all[real], batch["targets"][real], batch["negatives"][real], self.item_table(),
                              self.loss_name, batch.get("sampled"), self.label_smoothing)
