"""FM: Factorization Machines (Rendle, ICDM 2010), a baseline of S3-Rec.

Sparse features of a (user, history, candidate item) triple, each field with its own weights:

    user      one-hot u                                  x = 1
    history   normalised bag of the last max_len items   x_h = c_h / |H| (c_h = count of h in H)
    item      one-hot i                                  x = 1
    attribute normalised bag of i's attributes           x_a = 1 / |A_i|

    y(x) = w0 + sum_j w_j x_j + sum_{j<l} <v_j, v_l> x_j x_l                                     (Eq. 1)
         = w0 + sum_j w_j x_j + 1/2 sum_f [(sum_j v_jf x_j)^2 - sum_j v_jf^2 x_j^2]               (Eq. 5, O(kn))

The history bag lets FM see the sequence, as Rendle (§V-B) mimics FPMC with the last basket as a
normalised bag (`use_history=False` gives the plain user/item/attribute FM). Since the features split into a user side U (user,
history) and an item side I (item, attributes), with s = sum_j v_j x_j and q = sum_j ||v_j||^2 x_j^2:

    y = w0 + c_U + c_I + s_U . s_I,    c = sum_j w_j x_j + 1/2 (||s||^2 - q)   per side

so full ranking is one matmul (B, k) x (k, n_items + 1) plus per-item and per-user constants; the
item side costs O(k * #attribute entries) once per call. Training: every next-item target of the
training window with its history prefix (bags by cumulative sums, so position t sees items up to t
only) against one unseen negative, with BPR (`loss="bpr"`, default: ranking on implicit feedback)
or BCE. Init: w0 = w = 0, v ~ N(0, 0.02) (Rendle: v ~ N(0, sigma)). Unknown users (users=None)
have no user feature.

Run defaults (`DEFAULTS`): finetune.loss = bpr, the loss `s3rec run --model fm` trains with, recorded
in config.json (`build(loss="bce")` gives BCE from Python); k = d = 64 and the optimiser settings are
the S3-Rec recipe's (the FM paper fixes none for this task).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from s3rec.data.splits import LeaveOneOut
from s3rec.models.base import SequentialRecommender
from s3rec.models.attributes import ItemAttributes, attribute_csr
from s3rec.training.batches import TrainingSequences, finetune_batch

PAIR_LOSSES = ("bpr", "bce")
DEFAULTS = {"finetune.loss": "bpr"}


def prefix_mean(items: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(B, w, k) mean of table rows over the real items of items[:, :t+1] for every t; 0 before the first."""
    real = (items != 0).unsqueeze(-1)  # (B, w, 1)
    total = torch.where(real, table[items], 0.0).cumsum(1)  # (B, w, k)
    return total / real.cumsum(1).clamp(min=1)


def pair_loss(name: str, s_pos: torch.Tensor, s_neg: torch.Tensor) -> torch.Tensor:
    """Mean BPR (-log sigmoid(s+ - s-)) or BCE (-log sigmoid(s+) - log(1 - sigmoid(s-)))."""
    if s_pos.numel() == 0:  # no target in the batch (users with one training item): a zero, not a mean's NaN
        return s_pos.sum() * 0.0
    if name == "bpr":
        return -F.logsigmoid(s_pos - s_neg).mean()
    return -(F.logsigmoid(s_pos) + F.logsigmoid(-s_neg)).mean()


def pair_batch(seqs: TrainingSequences, users: torch.Tensor, max_len: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """finetune_batch (inputs, targets, negatives (B, w)) plus the users (B,): one (user, prefix, +, -) per target."""
    return {**finetune_batch(seqs, users, max_len, gen), "users": users}


class FM(SequentialRecommender):
    """Second-order FM over user, history-bag, item and attribute-bag features.

    Args:
        n_items, n_users, n_attributes: vocabulary sizes (items/attributes 1..n, users 0..n-1).
        attr_offsets, attr_values: item -> attributes CSR (see SequenceData).
        k: factor dimension; max_len: history items read (the newest); use_history: add the history bag;
        loss: "bpr" or "bce"; init_std: std of the factors.
    """

    def __init__(self, n_items: int, n_users: int, n_attributes: int, attr_offsets: torch.Tensor,
                 attr_values: torch.Tensor, k: int = 64, max_len: int = 50, use_history: bool = True,
                 loss: str = "bpr", init_std: float = 0.02):
        super().__init__()
        if loss not in PAIR_LOSSES:
            raise ValueError(f"unknown loss {loss!r} for FM; choose from {', '.join(PAIR_LOSSES)}")
        self.n_items, self.max_len, self.use_history, self.loss_name = n_items, max_len, use_history, loss
        self.w0 = nn.Parameter(torch.zeros(()))
        sizes = {"user": n_users, "hist": n_items + 2, "item": n_items + 2, "attr": n_attributes + 1}
        self.w = nn.ParameterDict({f: nn.Parameter(torch.zeros(n)) for f, n in sizes.items()})
        self.V = nn.ParameterDict({f: nn.Parameter(torch.randn(n, k) * init_std) for f, n in sizes.items()})
        self.attrs = ItemAttributes(n_items, attr_offsets, attr_values)

    def item_side(self, items: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """s_I (n, k) and c_I (n,) of the ids `items` (n,) with their attribute bags; default every id 0..N + 1.

        A training batch pools the attributes of its own items only (the catalogue's took ~40% of a Beauty step).
        """
        V_a, w_a = self.V["attr"], self.w["attr"]
        if items is None:
            rows, mean = slice(None), self.attrs.mean
        else:
            rows, mean = items, lambda table: self.attrs.mean_of(table, items)
        n = self.attrs.count[rows].clamp(min=1)
        V_i = self.V["item"][rows]
        s_I = V_i + mean(V_a)  # (n, k)
        q_I = V_i.square().sum(1) + mean(V_a.square().sum(1, keepdim=True)).squeeze(1) / n
        lin = self.w["item"][rows] + mean(w_a.unsqueeze(1)).squeeze(1)
        return s_I, lin + 0.5 * (s_I.square().sum(1) - q_I)

    def user_side(self, histories: torch.Tensor, users: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """s_U (B, w, k) and c_U (B, w) for every history prefix histories[:, :t+1] (B, w)."""
        B, w = histories.shape
        k = self.V["item"].size(1)
        s_U = histories.new_zeros((B, w, k), dtype=self.w0.dtype)
        q_U = histories.new_zeros((B, w), dtype=self.w0.dtype)
        lin = histories.new_zeros((B, w), dtype=self.w0.dtype)
        if self.use_history:
            real = histories != 0
            n = real.cumsum(1).clamp(min=1)  # (B, w) |H| of each prefix
            s_U = s_U + prefix_mean(histories, self.V["hist"])
            lin = lin + prefix_mean(histories, self.w["hist"].unsqueeze(1)).squeeze(-1)
            # sum_h c_h^2 ||v_h||^2 over a prefix = sum over its positions of (2 e_p + 1) ||v_p||^2,
            # e_p = earlier positions holding the same item (exact for repeated items)
            earlier = torch.ones(w, w, dtype=torch.bool, device=histories.device).tril(-1)
            same = (histories.unsqueeze(2) == histories.unsqueeze(1)) & earlier & real.unsqueeze(1)  # (B, w, w)
            e = same.sum(2)
            per_pos = torch.where(real, (2 * e + 1) * self.V["hist"][histories].square().sum(-1), 0.0)
            q_U = q_U + per_pos.cumsum(1) / n.square()
        if users is not None:
            v_u = self.V["user"][users]  # (B, k)
            s_U = s_U + v_u.unsqueeze(1)
            q_U = q_U + v_u.square().sum(1, keepdim=True)
            lin = lin + self.w["user"][users].unsqueeze(1)
        return s_U, lin + 0.5 * (s_U.square().sum(-1) - q_U)

    def final_user_side(self, histories: torch.Tensor, users: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """s_U (B, k) and w0 + c_U (B,) of the whole (last max_len items of the) history."""
        s_U, c_U = self.user_side(histories[:, -self.max_len:], users)
        return s_U[:, -1], self.w0 + c_U[:, -1]

    def score_all(self, histories: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        s_U, c_U = self.final_user_side(histories, users)
        s_I, c_I = self.item_side()
        return s_U @ s_I[: self.n_items + 1].T + c_I[: self.n_items + 1] + c_U.unsqueeze(1)  # (B, N + 1)

    def score(self, histories: torch.Tensor, candidates: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        s_U, c_U = self.final_user_side(histories, users)
        s_I, c_I = self.item_side()
        return (s_I[candidates] * s_U.unsqueeze(1)).sum(-1) + c_I[candidates] + c_U.unsqueeze(1)  # (B, C)

    def training_batch(self, seqs: TrainingSequences, users: torch.Tensor, max_len: int,
                       gen: torch.Generator) -> dict[str, torch.Tensor]:
        return pair_batch(seqs, users, max_len, gen)

    def pair_scores(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """y(user, prefix up to t, target_t) and y(..., negative_t) at every real target position (P,) each."""
        s_U, c_U = self.user_side(batch["inputs"], batch["users"])  # (B, w, k), (B, w)
        real = batch["targets"] != 0
        s_U, c_U = s_U[real], self.w0 + c_U[real]  # (P, k), (P,)
        pos, neg = batch["targets"][real], batch["negatives"][real]
        s_I, c_I = self.item_side(torch.cat([pos, neg]))  # (2P, k), (2P,)
        P = len(pos)
        return (s_U * s_I[:P]).sum(-1) + c_I[:P] + c_U, (s_U * s_I[P:]).sum(-1) + c_I[P:] + c_U

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return pair_loss(self.loss_name, *self.pair_scores(batch))


def build(split: LeaveOneOut, d: int = 64, max_len: int = 50, loss: str = "bpr", use_history: bool = True,
          init_std: float = 0.02) -> FM:
    """FM with k = d factors reading the last max_len history items."""
    return FM(split.n_items, split.n_users, split.data.n_attributes, *attribute_csr(split), k=d, max_len=max_len,
              use_history=use_history, loss=loss, init_std=init_std)
