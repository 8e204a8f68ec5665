"""Next-item training losses shared by the sequential models (SASRec's losses as one function).

Per target position t with model output F_t, target i+ and one sampled negative i- (scores are dot
products with the rows of `item_table`):

    bce              -log sigmoid(F_t . e_i+) - log(1 - sigmoid(F_t . e_i-))   S3-Rec authors' code, default
    bpr              -log sigmoid(F_t . e_i+ - F_t . e_i-)                      S3-Rec paper, Eq. 17
    ce               softmax cross-entropy over all items 1..n (row 0 = padding excluded)
    sampled-softmax  softmax over the target and N uniform negatives shared by the batch (a sampled
                     item equal to the target is dropped from that position's softmax)

A model with per-item biases (Caser's b2) passes `item_table = [W2 | b2]` and `F_t = [z | 1]`.
`label_smoothing` eps (ce, sampled-softmax) mixes the target's one-hot with the uniform distribution
over the position's candidates: (1 - eps) NLL(target) + eps mean_j -log p_j, the padding item and
dropped samples excluded (torch's own label_smoothing would count their -inf logits).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FINETUNE_LOSSES = ("bce", "bpr", "ce", "sampled-softmax")


def check_loss_name(loss_name: str) -> str:
    """`loss_name`, or a ValueError naming the choices."""
    if loss_name not in FINETUNE_LOSSES:
        raise ValueError(f"unknown loss {loss_name!r}; choose from {', '.join(FINETUNE_LOSSES)}")
    return loss_name


def softmax_loss(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of logits (P, C) against target classes (P,); -inf logits are no candidates."""
    if label_smoothing == 0.0:
        return F.cross_entropy(logits, target)
    log_p = F.log_softmax(logits, -1)  # (P, C)
    nll = -log_p.gather(1, target.unsqueeze(1)).squeeze(1)  # (P,)
    candidate = torch.isfinite(logits)
    uniform = -log_p.masked_fill(~candidate, 0.0).sum(1) / candidate.sum(1)  # (P,) cross-entropy to uniform
    return ((1.0 - label_smoothing) * nll + label_smoothing * uniform).mean()


def next_item_loss(F_t: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor | None, item_table: torch.Tensor,
                   loss_name: str, sampled: torch.Tensor | None = None, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean loss over P target positions.

    Args:
        F_t: (P, d) model outputs at the target positions.
        pos: (P,) target item ids in 1..n.
        neg: (P,) one sampled negative per target (bce, bpr).
        item_table: (n + 1, d) output embeddings of item ids 0..n (row 0 = padding, never a candidate).
        loss_name: one of FINETUNE_LOSSES.
        sampled: (N,) shared uniform negatives (sampled-softmax).
        label_smoothing: eps of the softmax losses (0: none).
    """
    if F_t.size(0) == 0:  # no target in the batch: a zero that still reaches the parameters
        return F_t.sum() * 0.0
    if loss_name in ("bce", "bpr"):
        e_pos, e_neg = item_table[torch.stack([pos, neg])]  # one gather: its backward zero-fills a table-sized gradient
        s_pos = (F_t * e_pos).sum(-1)  # (P,)
        s_neg = (F_t * e_neg).sum(-1)
        if loss_name == "bce":
            return -(F.logsigmoid(s_pos) + F.logsigmoid(-s_neg)).mean()
        return -F.logsigmoid(s_pos - s_neg).mean()
    if loss_name == "ce":
        logits = F_t @ item_table.T  # (P, n + 1)
        logits[:, 0] = -torch.inf
        return softmax_loss(logits, pos, label_smoothing)
    if loss_name == "sampled-softmax":
        if sampled is None:
            raise ValueError("sampled-softmax needs the batch's shared negatives `sampled`")
        s_pos = (F_t * item_table[pos]).sum(-1, keepdim=True)  # (P, 1)
        s_neg = F_t @ item_table[sampled].T  # (P, N)
        s_neg = s_neg.masked_fill(sampled.unsqueeze(0) == pos.unsqueeze(1), -torch.inf)  # a sampled target is no negative
        return softmax_loss(torch.cat([s_pos, s_neg], 1), torch.zeros(len(pos), dtype=torch.long, device=F_t.device),
                            label_smoothing)
    check_loss_name(loss_name)
    raise AssertionError("unreachable")
