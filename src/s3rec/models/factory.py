"""Building models by CLI name, and loading the pre-trained S3-Rec weights into the fine-tuning model.

Each baseline module offers `build(split, d, max_len, **options)`; this table only maps CLI names
to modules (a user's own model needs no entry: the Python API takes any SequentialRecommender).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from s3rec.data.dataset import SequenceData
from s3rec.data.splits import LeaveOneOut
from s3rec.errors import S3RecError
from s3rec.models.base import SequentialRecommender
from s3rec.models.encoder import EncoderConfig
from s3rec.models.pop import PopRec
from s3rec.models.sasrec import SASRec
from s3rec.training.checkpoint import check_compatible, load_checkpoint

BASELINES = {  # name -> (module, takes --loss; the others train with their paper's own loss)
    "gru4rec": ("s3rec.models.gru4rec", True),
    "gru4recf": ("s3rec.models.gru4recf", True),
    "caser": ("s3rec.models.caser", True),
    "bert4rec": ("s3rec.models.bert4rec", False),
    "hgn": ("s3rec.models.hgn", False),
    "sasrecf": ("s3rec.models.sasrecf", True),
    "fdsa": ("s3rec.models.fdsa", True),
    "fm": ("s3rec.models.fm", False),
    "autoint": ("s3rec.models.autoint", False),
}
MODEL_NAMES = ("pop", "sasrec", "s3rec", *BASELINES)


def build_model(name: str, split: LeaveOneOut, encoder: EncoderConfig, loss: str = "bce",
                n_negatives: int = 256) -> SequentialRecommender:
    """A fresh model of the given CLI name for this data set."""
    name = name.lower()
    if name == "pop":
        return PopRec(split.n_items, split.train_counts())
    if name in ("sasrec", "s3rec"):
        return SASRec(split.n_items, encoder, loss=loss, n_negatives=n_negatives)
    if name in BASELINES:
        module, any_loss = BASELINES[name]
        options = {"loss": loss, "n_negatives": n_negatives} if any_loss else {}
        return importlib.import_module(module).build(split, d=encoder.d, max_len=encoder.max_len, **options)
    raise S3RecError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")


def load_pretrained(model: SASRec, path: str | Path, data: SequenceData) -> dict:
    """Copy the pre-trained encoder (embeddings, positions, blocks) into `model`; errors if incompatible."""
    ck = load_checkpoint(path, stage="pretrain")
    check_compatible(ck, path, data.n_items, data.n_attributes)
    enc_state = {k[len("encoder."):]: v for k, v in ck["state_dict"].items() if k.startswith("encoder.")}
    own = model.encoder.state_dict()
    if set(enc_state) != set(own) or any(enc_state[k].shape != own[k].shape for k in own):
        shapes = ck["config"].get("encoder", {})
        raise S3RecError(f"{path}: pre-trained encoder does not match the fine-tuning encoder "
                         f"(checkpoint encoder config {shapes}, fine-tuning {model.encoder.cfg})")
    model.encoder.load_state_dict(enc_state)
    return ck
