"""PopRec: rank items by their number of interactions in the training part (items[:-2]) only.

Counting validation or test interactions would leak the targets into the scores; the paper's
PopRec figures are reproduced only with that leak (see docs/protocol.md), so it is not offered.
"""

from __future__ import annotations

import numpy as np
import torch

from s3rec.models.base import SequentialRecommender


class PopRec(SequentialRecommender):
    """Popularity baseline: the same score vector for every user."""

    def __init__(self, n_items: int, counts: np.ndarray | None = None):
        super().__init__()
        self.n_items = n_items
        counts = np.zeros(n_items + 1) if counts is None else counts
        self.register_buffer("counts", torch.as_tensor(counts, dtype=torch.float32))

    def score_all(self, histories: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        return self.counts.unsqueeze(0).expand(histories.size(0), -1).clone()
