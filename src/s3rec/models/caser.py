"""Caser: convolutional sequence embedding (Tang & Wang, WSDM 2018), a baseline of the S3-Rec paper.

The last L items of user u form the "image" E (L x d) (left-padded with the zero padding embedding).

    horizontal  o_h = max_t ReLU(E[t:t+h] * F_h^k)    n_h filters of each height h = 1..L   (§3.2)
    vertical    o_v = sum_l F~^k_l E[l]                n_v filters of size L x 1, no activation
    z = ReLU(W [o_h; o_v] + b)                         dropout 0.5 on [o_h; o_v]             (§3.3)
    y_i = W2_i . [z; P_u] + b2_i                       user embedding P_u, second item table

Training (§3.4): sliding windows of L inputs and the T = 3 next items as targets, one sampled
negative per target, binary cross-entropy; the other next-item losses of next_item_loss.py
are offered too. Defaults: L = 5, T = 3, n_h = 16, n_v = 4, dropout 0.5 (paper; d = 64 here, 50
there). Initialisation of the authors' code: E, P ~ N(0, std 1/d), W2 ~ N(0, std 1/(2d)), b2 = 0, PyTorch's
default for the convolutions and W. Users unseen at training (users=None, or a row >= n_users) get a
zero user embedding.

Run defaults (`DEFAULTS`, filled in by `s3rec run --model caser` below the user's options), the
settings of the authors' code (caser_pytorch) that differ from the S3-Rec recipe: encoder.d = 50,
finetune.weight_decay = 1e-6 (Adam with L2 as PyTorch's weight_decay, as there). Same as the
recipe: Adam lr 1e-3, dropout 0.5. Not taken: the batch of 512 windows (a batch here is 256 users
with all their windows) and 3 negatives per target (one here).

Training windows of a user with training items x_0..x_{n-1} (n >= 2): one per target start j from
j_lo = max(1, n - max_len) to max(n - T, j_lo), inputs x_{j-L}..x_{j-1} (left-padded when j < L), targets
x_j..x_{j+T-1} (0 = none beyond the sequence, masked in the loss). Windows with a padded input are
kept for every user (the authors' code pads only sequences shorter than L + T), so short histories
at evaluation look like training inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from s3rec.data.batching import left_pad, sample_unseen
from s3rec.data.splits import LeaveOneOut
from s3rec.models.base import SequentialRecommender
from s3rec.models.next_item_loss import check_loss_name, next_item_loss
from s3rec.training.batches import TrainingSequences

DEFAULTS = {"encoder.d": 50, "finetune.weight_decay": 1e-6}


class Caser(SequentialRecommender):
    """Convolutional sequence embedding over the last L items plus a user embedding."""

    def __init__(self, n_items: int, n_users: int, d: int = 64, L: int = 5, T: int = 3, n_h: int = 16, n_v: int = 4,
                 dropout: float = 0.5, loss: str = "bce", n_negatives: int = 256, label_smoothing: float = 0.0):
        super().__init__()
        self.n_items, self.n_users, self.d, self.L, self.T = n_items, n_users, d, L, T
        self.loss_name, self.n_negatives, self.label_smoothing = check_loss_name(loss), n_negatives, label_smoothing
        self.E = nn.Embedding(n_items + 1, d, padding_idx=0)  # input item embeddings
        self.P = nn.Embedding(max(n_users, 1), d)  # user embeddings
        self.conv_v = nn.Conv2d(1, n_v, (L, 1))
        self.conv_h = nn.ModuleList(nn.Conv2d(1, n_h, (h, d)) for h in range(1, L + 1))
        self.drop = nn.Dropout(dropout)
        self.fc1 = nn.Linear(n_v * d + n_h * L, d)
        self.W2 = nn.Embedding(n_items + 1, 2 * d)  # output item embeddings (row 0 unused)
        self.b2 = nn.Embedding(n_items + 1, 1)
        with torch.no_grad():
            self.E.weight.normal_(0.0, 1.0 / d)
            self.E.weight[0].zero_()
            self.P.weight.normal_(0.0, 1.0 / d)
            self.W2.weight.normal_(0.0, 1.0 / (2 * d))
            self.b2.weight.zero_()

    def user_embedding(self, users: torch.Tensor | None, B: int, device: torch.device) -> torch.Tensor:
        """(B, d) P_u; zeros for users=None or rows the model was not trained on."""
        if users is None:
            return torch.zeros(B, self.d, device=device)
        known = (users >= 0) & (users < self.n_users)
        return self.P(users.clamp(0, max(self.n_users - 1, 0))) * known.unsqueeze(1)

    def forward(self, histories: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 2d) [z; P_u] from the last L items of left-padded histories (B, w)."""
        B, w = histories.shape
        x = histories[:, -self.L :] if w >= self.L else F.pad(histories, (self.L - w, 0))  # (B, L)
        E = self.E(x).unsqueeze(1)  # (B, 1, L, d)
        o_v = self.conv_v(E).flatten(1)  # (B, n_v * d)
        o_h = [F.relu(conv(E).squeeze(3)).amax(2) for conv in self.conv_h]  # L x (B, n_h), max over time
        z = F.relu(self.fc1(self.drop(torch.cat([o_v, *o_h], 1))))  # (B, d)
        return torch.cat([z, self.user_embedding(users, B, histories.device)], 1)  # (B, 2d)

    def score_all(self, histories: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        return self(histories, users) @ self.W2.weight.T + self.b2.weight.T  # (B, N + 1)

    def score(self, histories: torch.Tensor, candidates: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        x = self(histories, users)  # (B, 2d)
        return (self.W2(candidates) * x.unsqueeze(1)).sum(-1) + self.b2(candidates).squeeze(-1)  # (B, C)

    def training_batch(self, seqs: TrainingSequences, users: torch.Tensor, max_len: int,
                       gen: torch.Generator) -> dict[str, torch.Tensor]:
        """Sliding windows of the users' training items (see the module header), built by tensor ops.

        Returns inputs (W, L), users (W,), targets and negatives (W, T) (0 = no target), sampled (N,)
        for sampled-softmax.
        """
        start, n = seqs.starts[users], seqs.ends[users] - seqs.starts[users]  # (B,)
        j_lo = (n - max_len).clamp(min=1)
        j_hi = torch.maximum(n - self.T, j_lo)
        count = torch.where(n >= 2, j_hi - j_lo + 1, 0)  # windows per user
        row = torch.repeat_interleave(torch.arange(len(users)), count)  # (W,)
        j = j_lo[row] + torch.arange(len(row)) - (torch.cumsum(count, 0) - count)[row]  # target start of each window
        s = start[row]
        inputs = left_pad(seqs.items, s, s + j, self.L)  # (W, L) the L items before x_j
        k = j.unsqueeze(1) + torch.arange(self.T)  # (W, T) positions of the targets
        targets = torch.where(k < n[row].unsqueeze(1), seqs.items[(s.unsqueeze(1) + k).clamp(max=len(seqs.items) - 1)], 0)
        w_users = users[row]
        negatives = torch.where(targets != 0, sample_unseen(w_users, targets.shape, seqs.n_items, seqs.seen, gen), 0)
        batch = {"inputs": inputs, "users": w_users, "targets": targets, "negatives": negatives}
        if self.loss_name == "sampled-softmax":
            batch["sampled"] = torch.randint(1, seqs.n_items + 1, (self.n_negatives,), generator=gen)
        return batch

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean loss over the window targets; the bias b2 rides along as a last column of [W2 | b2]."""
        x = self(batch["inputs"], batch["users"])  # (W, 2d)
        x1 = torch.cat([x, x.new_ones(len(x), 1)], 1)  # (W, 2d + 1)
        real = batch["targets"] != 0  # (W, T)
        F_t = x1.unsqueeze(1).expand(-1, self.T, -1)[real]  # (P, 2d + 1)
        table = torch.cat([self.W2.weight, self.b2.weight], 1)  # (N + 1, 2d + 1)
        return next_item_loss(F_t, batch["targets"][real], batch["negatives"][real], table, self.loss_name,
                              batch.get("sampled"), self.label_smoothing)


def build(split: LeaveOneOut, d: int = 64, max_len: int = 50, **kw) -> Caser:
    """Caser for this split (one user embedding per user row; max_len bounds the training windows)."""
    return Caser(split.n_items, split.n_users, d=d, **kw)
