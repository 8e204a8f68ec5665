"""The contract every recommender offers; the trainer, evaluator and service talk only to it."""

from __future__ import annotations

import torch
from torch import nn

from s3rec.training.batches import TrainingSequences, finetune_batch


class SequentialRecommender(nn.Module):
    """Scores items for users given their left-padded histories (B, L) of item ids (0 = padding).

    Subclasses implement `score_all`; trainable ones also `loss`. `score` defaults to a gather from
    `score_all`; models with a cheaper candidate path override it.
    """

    n_items: int
    # True when `loss` is a mean over independent target positions of finetune_batch rows (inputs, targets,
    # negatives, optional shared `sampled`): the trainer may then split a batch into length-sorted parts.
    splits_rows: bool = False

    def training_batch(self, seqs: TrainingSequences, users: torch.Tensor, max_len: int,
                       gen: torch.Generator, ends: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The batch `loss` consumes for these users; default: next-item targets, one negative each.

        `ends` (optional) makes each row the prefix items[start:end] of its user with one target, the
        last item (fine-tuning with prefix samples); models whose batches cannot do that omit the argument.
        """
        return finetune_batch(seqs, users, max_len, gen, ends=ends)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scalar training loss of a batch (see the training module that builds it)."""
        raise NotImplementedError(f"{type(self).__name__} has no training loss")

    def score_all(self, histories: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        """(B, n_items + 1) scores of every item id (column 0 is padding and is ignored)."""
        raise NotImplementedError

    def score(self, histories: torch.Tensor, candidates: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C) scores of the candidate item ids."""
        return self.score_all(histories, users).gather(1, candidates)

    @property
    def trainable(self) -> bool:
        """Whether the model has parameters to train (PopRec has none)."""
        return any(p.requires_grad for p in self.parameters())
