"""S3-Rec's pre-training applied to other models (Zhou et al., CIKM 2020, §5.3, Fig. 3).

Two ways, by what a model is made of:
- Sequence encoders (SASRec, SASRecF, GRU4Rec, GRU4RecF): the four objectives (AAP, MIP, MAP, SP)
  train the model's own encoder and embedding tables (`S3RecPretrainer(sequence_encoder=...)`), and
  fine-tuning starts from those weights. Self-attention is bidirectional in pre-training, as in
  S3-Rec; a GRU reads left to right in both stages (its output at t sees only items up to t).
- Models that are no sequence encoder (Caser, AutoInt): their item (and attribute) embedding tables
  start from an S3-Rec pre-training whose width d equals their embedding size.

A sequence encoder, as the pretrainer uses it: `forward(items, causal) -> (B, w, d)` over left-padded
ids in which `mask_id` (n_items + 1) marks masked positions, `M_I` (item ids -> d vectors, the
table items are scored against) and, if the model has one, its attribute table `M_A`. The encoder
shares the model's parameters, so loading a checkpoint into a fresh model's encoder loads the model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from s3rec.config import RunConfig
from s3rec.data.dataset import SequenceData
from s3rec.data.splits import LeaveOneOut
from s3rec.errors import S3RecError
from s3rec.models.autoint import AutoInt
from s3rec.models.caser import Caser
from s3rec.models.factory import build_model
from s3rec.models.gru4rec import GRU4Rec
from s3rec.models.sasrec import SASRec
from s3rec.training.checkpoint import check_compatible, load_checkpoint

ENCODER_MODELS = ("sasrec", "sasrecf", "gru4rec", "gru4recf")  # pre-trained with the four objectives
EMBEDDING_MODELS = ("caser", "autoint")  # item/attribute embeddings from an S3-Rec pre-training


class GRUEncoder(nn.Module):
    """GRU4Rec / GRU4RecF as a pre-training encoder: a learned [mask] vector replaces masked inputs.

    The [mask] vector exists only in pre-training; fine-tuning reads the GRU and the tables.
    """

    def __init__(self, model: GRU4Rec):
        super().__init__()
        self.model = model
        self.mask_id = model.n_items + 1
        self.mask = nn.Parameter(torch.empty(model.d).normal_(0.0, 0.02))
        self.M_I = model.E
        if hasattr(model, "M_A"):
            self.M_A = model.M_A

    def forward(self, items: torch.Tensor, causal: bool = True) -> torch.Tensor:
        """(B, w, d) hidden states; left to right whatever `causal` says (a GRU is unidirectional)."""
        is_mask = (items == self.mask_id).unsqueeze(-1)  # (B, w, 1)
        x = self.model.embed(items.masked_fill(is_mask.squeeze(-1), 0))  # (B, w, d), [mask] as padding's 0 ...
        return self.model(items, inputs=x + is_mask * self.mask)  # ... plus the [mask] vector


def pretraining_encoder(model: nn.Module) -> nn.Module | None:
    """The part of `model` the four objectives can pre-train (sharing its parameters), or None."""
    if isinstance(model, SASRec):  # also SASRecF, whose encoder fuses the attributes
        return model.encoder
    if isinstance(model, GRU4Rec):  # also GRU4RecF
        return GRUEncoder(model)
    return None


def build_pretraining_encoder(cfg: RunConfig, split: LeaveOneOut) -> nn.Module:
    """A fresh cfg.model for this split, as the encoder the four objectives pre-train."""
    net = pretraining_encoder(build_model(cfg.model, split, cfg.encoder, cfg.finetune.loss, cfg.finetune.n_negatives,
                                               cfg.finetune.label_smoothing))
    if net is None:
        raise S3RecError(f"{cfg.model} has no sequence encoder to pre-train (encoders: {', '.join(ENCODER_MODELS)}; "
                         f"{', '.join(EMBEDDING_MODELS)} start from S3-Rec's embeddings)")
    return net


def embedding_width(model: nn.Module) -> int | None:
    """Width of the item embeddings an S3-Rec pre-training can initialise in `model`, or None."""
    if isinstance(model, Caser):
        return model.E.embedding_dim
    if isinstance(model, AutoInt):
        return model.E_I.embedding_dim
    return None


def load_transferred(model: nn.Module, path: str | Path, data: SequenceData) -> dict:
    """Initialise `model` from a pre-training checkpoint (its own encoder's, or S3-Rec's embeddings); errors if unfit."""
    ck = load_checkpoint(path, stage="pretrain")
    check_compatible(ck, path, data)
    state = {k[len("encoder."):]: v for k, v in ck["state_dict"].items() if k.startswith("encoder.")}
    made_for = ck["config"].get("model", "s3rec")
    net = pretraining_encoder(model)
    if net is not None:
        own = net.state_dict()
        if set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
            theirs, ours = ck["config"].get("encoder", {}), getattr(net, "cfg", None)
            raise S3RecError(f"{path}: the pre-trained encoder (made for {made_for}, encoder {theirs}) does not fit "
                             f"this {type(model).__name__}'s encoder" + (f" ({ours})" if ours is not None else "")
                             + "; fine-tune with the checkpoint's encoder settings, or pre-train this model "
                             "(s3rec experiment transfer for models other than s3rec)")
        net.load_state_dict(state)
        return ck
    width = embedding_width(model)
    if width is None:
        raise S3RecError(f"{type(model).__name__} cannot start from a pre-training (supported: "
                         f"{', '.join(ENCODER_MODELS + EMBEDDING_MODELS)}, s3rec)")
    if "M_I.weight" not in state or "M_A.weight" not in ck["state_dict"]:
        raise S3RecError(f"{path}: not an S3-Rec pre-training (no item and attribute embeddings)")
    M_I, M_A = state["M_I.weight"], ck["state_dict"]["M_A.weight"]  # (n_items + 2, d), (A + 1, d)
    if M_I.size(1) != width:
        raise S3RecError(f"{path}: embeddings of width {M_I.size(1)}, but {type(model).__name__} needs {width} "
                         f"(pre-train S3-Rec with --set encoder.d={width})")
    init_embeddings(model, M_I, M_A)
    return ck


@torch.no_grad()
def init_embeddings(model: nn.Module, M_I: torch.Tensor, M_A: torch.Tensor) -> None:
    """Copy pre-trained item (n_items + 2, d) and attribute (A + 1, d) embeddings into Caser or AutoInt."""
    if isinstance(model, Caser):
        model.E.weight.copy_(M_I[: model.E.num_embeddings])  # input item embeddings (W2, the output table, stays)
        model.E.weight[0].zero_()  # Caser pads short windows with a zero embedding
    elif isinstance(model, AutoInt):
        model.E_I.weight.copy_(M_I)  # the candidate item field
        model.E_H.weight.copy_(M_I)  # the history field averages the same items
        model.E_A.weight.copy_(M_A)
    else:
        raise S3RecError(f"{type(model).__name__} has no embeddings to initialise")
