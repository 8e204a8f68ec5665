"""S3-Rec pre-training: four mutual-information objectives (Zhou et al., CIKM 2020, §4.3).

Every objective scores a pair of views with the bilinear f(x, y) = sigmoid(x^T W y), one W per
objective, applied as a d x d linear map on the context side (as in the authors' code):

    AAP  item <-> its attributes        Eq. 5-6   BCE over all attributes
    MIP  masked item <-> its context    Eq. 7-8   pairwise against a sampled item
    MAP  masked item's attributes       Eq. 9-10  BCE over all attributes
    SP   masked segment <-> its context Eq. 11-12 pairwise against another user's segment

Loss = w_AAP L_AAP + w_MIP L_MIP + w_MAP L_MAP + w_SP L_SP (Eq. 13); a weight of 0 skips the
objective's computation entirely. Losses are sums over positions (as in the authors' code) divided
by the number of samples in the batch, so the weights keep their meaning at any batch size (the
training loop rescales each step to sum / pretrain.batch_size: s3rec.training.pretrain).

Two choices of the authors' code are the defaults, with the paper's form as an option:
- aap_form="code": AAP on the encoder output at every non-masked position; "paper": on the item
  embedding e_i itself (Eq. 5 as written).
- pair_loss="faithful": -log sigmoid(sigmoid(s+) - sigmoid(s-)) for MIP and SP (two squashed scores
  compared through another sigmoid); "bpr": -log sigmoid(s+ - s-).

Beyond the paper, mip_form="softmax" scores the masked item against every item (cross-entropy of
softmax(x^T W_MIP M_I)), the pre-training counterpart of cross-entropy fine-tuning.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from s3rec.errors import ConfigError
from s3rec.models.attributes import ItemAttributes
from s3rec.models.encoder import EncoderConfig, SequenceEncoder, encode_views, init_weights

OBJECTIVES = ("aap", "mip", "map", "sp")  # the four objectives, in the paper's order


@dataclass(slots=True)
class ObjectiveConfig:
    """Weights and forms of the four pre-training objectives (paper defaults)."""

    aap: float = 0.2
    mip: float = 1.0
    map: float = 1.0
    sp: float = 0.5
    aap_form: str = "code"  # code | paper
    pair_loss: str = "faithful"  # faithful | bpr
    mip_form: str = "pair"  # pair (one sampled negative, the paper) | softmax (all items)

    def __post_init__(self) -> None:
        choices = {"aap_form": ("code", "paper"), "pair_loss": ("faithful", "bpr"), "mip_form": ("pair", "softmax")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"pretrain.objectives.{name} must be {' or '.join(map(repr, allowed))}, "
                                  f"got {getattr(self, name)!r}")
        negative = [name for name in OBJECTIVES if getattr(self, name) < 0]
        if negative:
            raise ConfigError(f"pretrain.objectives.{negative[0]} (an objective's weight) must be >= 0, "
                              f"got {getattr(self, negative[0])}")


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Flat indices of the True entries of `mask`, for index_select on its flattened tensors.

    t.flatten(...).index_select(0, positions(mask)) is t[mask]; on CPU advanced indexing was ~10x
    slower than index_select for these gathers, forward and backward (docs/speed.md).
    """
    return mask.flatten().nonzero().squeeze(1)


class S3RecPretrainer(nn.Module):
    """The encoder plus attribute embeddings M_A and the four bilinear maps W_AAP..W_SP.

    Args:
        n_items, n_attributes: vocabulary sizes (ids 1..n).
        attr_offsets, attr_values: item -> attributes CSR (see SequenceData).
        sequence_encoder: another model's encoder to pre-train instead of S3-Rec's own (s3rec.transfer):
            `forward(items, causal) -> (B, w, d)` over ids where `mask_id` marks masked positions, `M_I`
            (item embeddings) and, if it has one, its attribute table `M_A`, shared with the objectives.
            Its own initialisation is kept; only the objectives' parts are initialised here.
    """

    def __init__(self, n_items: int, n_attributes: int, attr_offsets: torch.Tensor, attr_values: torch.Tensor,
                 encoder: EncoderConfig | None = None, objectives: ObjectiveConfig | None = None,
                 sequence_encoder: nn.Module | None = None):
        super().__init__()
        self.enc_cfg = encoder or EncoderConfig()
        self.obj = objectives or ObjectiveConfig()
        self.n_items, self.n_attributes = n_items, n_attributes
        self.encoder = SequenceEncoder(n_items, self.enc_cfg) if sequence_encoder is None else sequence_encoder
        d = self.encoder.M_I.embedding_dim
        shared_M_A = getattr(self.encoder, "M_A", None)
        self.M_A = nn.Embedding(n_attributes + 1, d, padding_idx=0) if shared_M_A is None else shared_M_A
        self.W_AAP, self.W_MIP, self.W_MAP, self.W_SP = (nn.Linear(d, d) for _ in range(4))
        if sequence_encoder is None:
            init_weights(self, self.enc_cfg.init_std)
        else:
            for head in (self.W_AAP, self.W_MIP, self.W_MAP, self.W_SP, *([self.M_A] if shared_M_A is None else [])):
                init_weights(head, self.enc_cfg.init_std)
        self.attributes = ItemAttributes(n_items, attr_offsets, attr_values)  # 0 and [mask] have none

    def attribute_targets(self, items: torch.Tensor) -> torch.Tensor:
        """(n, A) multi-hot attributes of items (n,)."""
        return self.attributes.multi_hot(items, self.n_attributes)

    def attribute_bce(self, x: torch.Tensor, W: nn.Linear, items: torch.Tensor) -> torch.Tensor:
        """sum of BCE(sigmoid(x^T W a_j), [a_j in A_item]) over positions and attributes 1..A."""
        logits = W(x) @ self.M_A.weight[1:].T  # (n, A)
        return F.binary_cross_entropy_with_logits(logits, self.attribute_targets(items), reduction="sum")

    def pair_loss(self, s_pos: torch.Tensor, s_neg: torch.Tensor) -> torch.Tensor:
        """Summed pairwise loss of a positive over a negative score."""
        if self.obj.pair_loss == "faithful":
            return -F.logsigmoid(torch.sigmoid(s_pos) - torch.sigmoid(s_neg)).sum()
        return -F.logsigmoid(s_pos - s_neg).sum()

    @torch.no_grad()
    def accuracies(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """How often each objective ranks its positive first (for monitoring; chance is far below 1).

        AAP/MAP: the top-scored attribute is one of the item's; MIP/SP: s+ > s-.
        """
        enc = self.encoder
        items, masked = batch["items"], batch["masked"]
        B, S = items.size(0), batch["sp_context"].size(0)
        F_seq, F_sp = encode_views(enc, torch.cat([masked, batch["sp_context"], batch["sp_pos"], batch["sp_neg"]]), B)
        is_mask = masked == enc.mask_id
        keep = (items != 0) & ~is_mask

        def top_attr_hit(x: torch.Tensor, W: nn.Linear, its: torch.Tensor) -> float:
            top = (W(x) @ self.M_A.weight[1:].T).argmax(1)
            return float(self.attribute_targets(its)[torch.arange(len(its)), top].mean())

        x = self.W_MIP(F_seq[is_mask])
        s_pos = (x * enc.M_I(items[is_mask])).sum(-1)
        s_neg = (x * enc.M_I(batch["neg_items"][is_mask])).sum(-1)
        ctx, pos, neg = F_sp.split(S)
        y = self.W_SP(ctx)
        return {"aap": top_attr_hit(F_seq[keep], self.W_AAP, items[keep]),
                "mip": float((s_pos > s_neg).float().mean()),
                "map": top_attr_hit(F_seq[is_mask], self.W_MAP, items[is_mask]),
                "sp": float(((y * pos).sum(-1) > (y * neg).sum(-1)).float().mean())}

    def aap_loss(self, items: torch.Tensor, is_mask: torch.Tensor, F_seq: torch.Tensor | None) -> torch.Tensor:
        """Eq. 5-6: each item (code form: its encoder output at a non-masked position; paper form: its
        embedding e_i) against all attributes, BCE with the item's own as positives."""
        code_form = self.obj.aap_form == "code"
        keep = positions((items != 0) & ~is_mask if code_form else items != 0)
        kept = items.flatten().index_select(0, keep)  # (n,)
        e = F_seq.flatten(0, 1).index_select(0, keep) if code_form else self.encoder.M_I(kept)  # (n, d)
        return self.attribute_bce(e, self.W_AAP, kept)

    def mip_loss(self, F_masked: torch.Tensor, target: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        """Eq. 7-8: the context F_t of each masked position scores its item i_t above a sampled item
        (mip_form=softmax: above every item)."""
        x = self.W_MIP(F_masked)  # (m, d)
        M_I = self.encoder.M_I
        if self.obj.mip_form == "softmax":
            logits = x @ M_I.weight[1 : self.n_items + 1].T  # (m, n) every real item
            return F.cross_entropy(logits, target - 1, reduction="sum")
        e_pos, e_neg = M_I(torch.stack([target, negative]))  # one lookup: each backward zero-fills a table-sized gradient
        return self.pair_loss((x * e_pos).sum(-1), (x * e_neg).sum(-1))

    def map_loss(self, F_masked: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Eq. 9-10: the context of each masked position against all attributes, its item's as positives."""
        return self.attribute_bce(F_masked, self.W_MAP, target)

    def sp_loss(self, F_sp: torch.Tensor) -> torch.Tensor:
        """Eq. 11-12: the context with a segment masked scores the segment above another user's segment."""
        s_tilde, s_pos, s_neg = F_sp.chunk(3)  # last-position outputs (S, d) of the three views
        x = self.W_SP(s_tilde)
        return self.pair_loss((x * s_pos).sum(-1), (x * s_neg).sum(-1))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eq. 13: the weighted objectives of a pre-training batch (built by training/batches.py: pretrain_batch).

        batch: items (B, w) original left-padded sequences; masked (B, w) with [mask] tokens;
        neg_items (B, w) a sampled item at masked positions; sp_context / sp_pos / sp_neg (S, w)
        for the S samples long enough for SP (may be empty).
        """
        o, enc = self.obj, self.encoder
        items, masked = batch["items"], batch["masked"]
        B = items.size(0)
        use_sp = o.sp > 0 and batch["sp_context"].size(0) > 0
        need_masked_pass = o.mip > 0 or o.map > 0 or (o.aap > 0 and o.aap_form == "code")

        # One bidirectional encoder pass over every sequence of the batch (masked + 3 SP views);
        # SP needs only the last position of its views.
        views = ([masked] if need_masked_pass else []) + ([batch["sp_context"], batch["sp_pos"], batch["sp_neg"]] if use_sp else [])
        n_seq = B if need_masked_pass else 0
        F_seq, F_sp = encode_views(enc, torch.cat(views), n_seq) if views else (None, None)  # (B, w, d), (3S, d)

        losses: dict[str, torch.Tensor] = {}
        zero = items.new_zeros((), dtype=torch.float)
        is_mask = masked == enc.mask_id  # (B, w)
        if o.aap > 0:
            losses["aap"] = self.aap_loss(items, is_mask, F_seq)
        if o.mip > 0 or o.map > 0:
            at_mask = positions(is_mask)
            F_masked = F_seq.flatten(0, 1).index_select(0, at_mask)  # (m, d) context of each masked item
            target = items.flatten().index_select(0, at_mask)  # (m,)
            if o.mip > 0:
                losses["mip"] = self.mip_loss(F_masked, target, batch["neg_items"].flatten().index_select(0, at_mask))
            if o.map > 0:
                losses["map"] = self.map_loss(F_masked, target)
        if o.sp > 0:
            losses["sp"] = self.sp_loss(F_sp) if use_sp else zero
        losses = {k: v / B for k, v in losses.items()}
        weights = {"aap": o.aap, "mip": o.mip, "map": o.map, "sp": o.sp}
        losses["loss"] = sum((weights[k] * v for k, v in losses.items()), zero)
        return losses
