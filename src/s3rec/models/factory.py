"""Building models by CLI name, their original papers' training defaults, and loading the pre-trained
S3-Rec weights into the fine-tuning model.

Each baseline module offers `build(split, d, max_len, **options)` and `DEFAULTS`: the run options
(dotted config keys, e.g. "finetune.lr") in which its original paper's setting differs from the
S3-Rec recipe of the dataclass defaults; its header says where each comes from. The CLI fills them
in below the config file, --set and flags (`with_model_defaults`), so a user's option always wins
and config.json records what ran. A bare `RunConfig(model=...)` is the S3-Rec recipe for any model;
`default_config(name)` gives the Python API the paper settings. The table below only maps CLI names
to modules (a user's own model needs no entry: the Python API takes any SequentialRecommender).
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass
from typing import Any

from s3rec.data.splits import LeaveOneOut
from s3rec.errors import ConfigError, S3RecError
from s3rec.models.base import SequentialRecommender
from s3rec.models.encoder import EncoderConfig
from s3rec.models.next_item_loss import FINETUNE_LOSSES
from s3rec.models.pop import PopRec
from s3rec.models.sasrec import SASRec

TRANSFORMER = ("n_layers", "n_heads", "dropout", "attn_dropout", "init_std")


@dataclass(frozen=True)
class Baseline:
    """How the CLI builds one baseline."""

    module: str
    losses: tuple[str, ...]  # finetune.loss values it trains with; a single one is its paper's, built in
    encoder_fields: tuple[str, ...] = ()  # EncoderConfig fields passed to build() besides d and max_len


BASELINES = {
    "gru4rec": Baseline("s3rec.models.gru4rec", FINETUNE_LOSSES, ("dropout",)),
    "gru4recf": Baseline("s3rec.models.gru4recf", FINETUNE_LOSSES, ("dropout",)),
    "caser": Baseline("s3rec.models.caser", FINETUNE_LOSSES, ("dropout",)),
    "bert4rec": Baseline("s3rec.models.bert4rec", ("ce",), ("n_layers", "n_heads", "dropout", "attn_dropout")),
    "hgn": Baseline("s3rec.models.hgn", ("bpr",)),
    "sasrecf": Baseline("s3rec.models.sasrecf", FINETUNE_LOSSES, TRANSFORMER),
    "fdsa": Baseline("s3rec.models.fdsa", FINETUNE_LOSSES, TRANSFORMER),
    "fm": Baseline("s3rec.models.fm", ("bpr",)),
    "autoint": Baseline("s3rec.models.autoint", ("bce",)),
}
MODEL_NAMES = ("pop", "sasrec", "s3rec", *BASELINES)


def _unknown(name: str) -> S3RecError:
    return S3RecError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")


def model_defaults(name: str) -> dict[str, Any]:
    """Dotted run options of `name`'s original paper that differ from the S3-Rec recipe ({} for pop, sasrec, s3rec)."""
    name = name.lower()
    if name in BASELINES:
        return dict(importlib.import_module(BASELINES[name].module).DEFAULTS)
    if name in ("pop", "sasrec", "s3rec"):
        return {}
    raise _unknown(name)


def with_model_defaults(options: dict[str, Any], name: str) -> dict[str, Any]:
    """Nested options (as in config.json) with `name`'s defaults filled in wherever `options` sets nothing."""
    merged = copy.deepcopy(options)
    for dotted, value in model_defaults(name).items():
        *parents, last = dotted.split(".")
        node = merged
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                break  # a malformed section: RunConfig.from_dict reports it
        else:
            node.setdefault(last, value)
    return merged


def default_config(name: str, **options: Any):
    """RunConfig of model `name` with its paper's defaults; `options` (nested config.json keys) override them."""
    from s3rec.config import RunConfig  # s3rec.config imports the model modules: import it when called

    return RunConfig.from_dict(with_model_defaults({**options, "model": name}, name))


def check_model_options(cfg) -> None:
    """ValueError when an option of RunConfig `cfg` cannot apply to its model (a loss its training does not have)."""
    spec = BASELINES.get(cfg.model.lower())
    if spec is not None and cfg.finetune.loss not in spec.losses:
        raise ConfigError(f"finetune.loss (--loss) {cfg.finetune.loss!r} is not available for {cfg.model}: "
                          f"it trains with its paper's {' or '.join(spec.losses)}")
    if spec is not None and len(spec.losses) == 1 and cfg.finetune.label_smoothing:
        raise ConfigError(f"finetune.label_smoothing is not available for {cfg.model}: its loss is built in")


def build_model(name: str, split: LeaveOneOut, encoder: EncoderConfig, loss: str = "bce",
                n_negatives: int = 256, label_smoothing: float = 0.0) -> SequentialRecommender:
    """A fresh model of the given CLI name for this data set."""
    name = name.lower()
    if name == "pop":
        return PopRec(split.n_items, split.train_counts())
    if name in ("sasrec", "s3rec"):
        return SASRec(split.n_items, encoder, loss=loss, n_negatives=n_negatives, label_smoothing=label_smoothing)
    if name in BASELINES:
        spec = BASELINES[name]
        options = {f: getattr(encoder, f) for f in spec.encoder_fields}
        if len(spec.losses) > 1:  # a single loss is built into the model: finetune.loss only records it
            options.update(loss=loss, n_negatives=n_negatives, label_smoothing=label_smoothing)
        return importlib.import_module(spec.module).build(split, d=encoder.d, max_len=encoder.max_len, **options)
    raise _unknown(name)
