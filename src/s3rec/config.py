"""Typed run configuration: dataclass defaults, overridden by a recipe, a YAML/JSON file and CLI flags."""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from s3rec.data.loading import DataConfig, column_list
from s3rec.errors import ConfigError, S3RecError, one_line
from s3rec.models.encoder import EncoderConfig
from s3rec.models.s3rec import ObjectiveConfig
from s3rec.training.finetune import FINETUNE_SAMPLES, LR_SCHEDULES, NEGATIVES_EXCLUDE, OPTIMIZERS, FinetuneConfig
from s3rec.training.pretrain import PRETRAIN_SAMPLES, PretrainConfig


@dataclass(slots=True)
class EvalConfig:
    """The evaluation protocol (see docs/protocol.md)."""

    protocol: str = "full"  # full | sampled | both
    negatives: str = "auto"  # auto (the data set's fixed file if any, else uniform) | uniform | popularity | file
    n_negatives: int = 99
    negative_seed: int = 12345
    exclude_history: bool = True
    batch_size: int = 1024
    selection: str = "auto"  # protocol of the validation that picks the best epoch: auto (full if run) | full | sampled

    def protocols(self) -> list[str]:
        """The protocols evaluated, in order."""
        return ["full", "sampled"] if self.protocol == "both" else [self.protocol]

    def file_stem(self) -> str:
        """evaluation-<protocol>[-<negatives>-negatives][-keep-history]: where `s3rec evaluate` writes this protocol."""
        stem = f"evaluation-{self.protocol}"
        if self.negatives != "auto":
            stem += f"-{self.negatives}-negatives"
        return stem if self.exclude_history else stem + "-keep-history"

    def selection_protocol(self) -> str:
        """The protocol validation uses for early stopping and the best epoch."""
        if self.selection != "auto":
            return self.selection
        return "full" if "full" in self.protocols() else "sampled"


def check_eval_flags(protocol: str, flags: dict) -> None:
    """An option the protocol would ignore is an error, not a run or file named after it with the same numbers.

    `flags`: {"negatives": ...} and/or {"exclude_history": False} as --negatives / --keep-history set them.
    """
    if "negatives" in flags and protocol == "full":
        raise S3RecError("--negatives picks the sampled protocol's negatives; this evaluation ranks all items "
                         "(add --protocol sampled or both)")
    if flags.get("exclude_history") is False and protocol == "sampled":
        raise S3RecError("--keep-history applies to full ranking; sampled negatives are never history items "
                         "(add --protocol full or both)")


@dataclass(slots=True)
class RunConfig:
    """Everything one run needs; saved as config.json beside its results."""

    model: str = "s3rec"
    recipe: str = "paper"
    seed: int = 42
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    init: str | None = None  # a pre-trained checkpoint to fine-tune from (s3rec); skips pre-training

    @property
    def pretrains(self) -> bool:
        """Whether this run pre-trains (S3-Rec without --init); other runs have no use for the pretrain options."""
        return self.model == "s3rec" and self.init is None

    def to_dict(self) -> dict[str, Any]:
        """The options as plain data (what config.json holds; path objects as text)."""
        return dataclasses.asdict(self, dict_factory=lambda pairs: {
            k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in pairs})

    def validate(self) -> "RunConfig":
        """Raise ConfigError (a ValueError) naming the first invalid option; returns self."""
        from s3rec.evaluation.metrics import METRIC_NAMES
        from s3rec.models.next_item_loss import FINETUNE_LOSSES
        from s3rec.recipes import RECIPES
        from s3rec.training.prefetch import check_prefetch

        check_types(self)
        choices = {
            "finetune.metric": (self.finetune.metric, METRIC_NAMES),
            "eval.protocol": (self.eval.protocol, ("full", "sampled", "both")),
            "eval.negatives": (self.eval.negatives, ("auto", "uniform", "popularity", "file")),
            "finetune.loss": (self.finetune.loss, FINETUNE_LOSSES),
            "pretrain.samples": (self.pretrain.samples, PRETRAIN_SAMPLES),
            "finetune.samples": (self.finetune.samples, FINETUNE_SAMPLES),
            "finetune.negatives_exclude": (self.finetune.negatives_exclude, NEGATIVES_EXCLUDE),
            "finetune.optimizer": (self.finetune.optimizer, OPTIMIZERS),
            "finetune.lr_schedule": (self.finetune.lr_schedule, LR_SCHEDULES),
            "recipe": (self.recipe, tuple(RECIPES)),
            "eval.selection": (self.eval.selection, ("auto", "full", "sampled")),
        }
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        positive = {"encoder.d": self.encoder.d, "encoder.n_layers": self.encoder.n_layers,
                    "encoder.n_heads": self.encoder.n_heads, "encoder.max_len": self.encoder.max_len,
                    "pretrain.batch_size": self.pretrain.batch_size, "finetune.batch_size": self.finetune.batch_size,
                    "pretrain.save_every": self.pretrain.save_every, "eval.n_negatives": self.eval.n_negatives,
                    "eval.batch_size": self.eval.batch_size}
        for name, value in positive.items():
            if value < 1:  # an integer: check_types
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.encoder.d % self.encoder.n_heads:
            raise ConfigError(f"encoder.d ({self.encoder.d}) must be divisible by encoder.n_heads ({self.encoder.n_heads})")
        for name, value in (("pretrain.epochs", self.pretrain.epochs), ("finetune.epochs", self.finetune.epochs),
                            ("pretrain.micro_batches", self.pretrain.micro_batches)):
            if value < 0:  # an integer: check_types
                raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
        if self.pretrains and self.pretrain.epochs < 1:
            raise ConfigError("S3-Rec pre-trains first: pretrain.epochs must be >= 1 (without pre-training: --model sasrec)")
        at_least = {"finetune.patience": (self.finetune.patience, 1), "finetune.n_negatives": (self.finetune.n_negatives, 1),
                    "finetune.valid_every": (self.finetune.valid_every, 0), "data.min_count": (self.data.min_count, 0),
                    "pretrain.lr": (self.pretrain.lr, 0), "finetune.lr": (self.finetune.lr, 0),
                    "pretrain.weight_decay": (self.pretrain.weight_decay, 0),
                    "finetune.weight_decay": (self.finetune.weight_decay, 0), "encoder.init_std": (self.encoder.init_std, 0),
                    "finetune.ema_epochs": (self.finetune.ema_epochs, 0)}
        for name, (value, low) in at_least.items():
            if value < low:
                raise ConfigError(f"{name} must be >= {low}, got {value!r}")
        for name, value in (("encoder.dropout", self.encoder.dropout), ("encoder.attn_dropout", self.encoder.attn_dropout)):
            if not 0 <= value < 1:
                raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
        if not 0 < self.data.train_fraction <= 1:
            raise ConfigError(f"data.train_fraction (--train-fraction) must be in (0, 1], got {self.data.train_fraction}")
        if not 0 <= self.finetune.label_smoothing < 1:
            raise ConfigError(f"finetune.label_smoothing must be in [0, 1), got {self.finetune.label_smoothing}")
        if self.finetune.label_smoothing and self.finetune.loss not in ("ce", "sampled-softmax"):
            raise ConfigError(f"finetune.label_smoothing needs a softmax loss (ce or sampled-softmax), "
                              f"not finetune.loss={self.finetune.loss!r}")
        check_prefetch(self.pretrain.prefetch, "pretrain.prefetch")
        if not 0 <= self.pretrain.mask_ratio < 1:
            raise ConfigError(f"pretrain.mask_ratio must be in [0, 1), got {self.pretrain.mask_ratio}")
        self.pretrain.objectives.__post_init__()
        return self

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        """A RunConfig from plain data; unknown keys are an error."""
        return _build(cls, d)


def _build(cls, d: dict[str, Any], prefix: str = ""):
    """Recursively build dataclass `cls` from a plain dict; unknown keys are an error."""
    if not isinstance(d, dict):
        raise ConfigError(f"expected a mapping for {cls.__name__}, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} option(s): {', '.join(sorted(unknown))}")
    kwargs = {}
    for name, value in d.items():
        sub = _dataclass_of(fields[name])
        if sub is not None and isinstance(value, dict):
            kwargs[name] = _build(sub, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _typed(cls, name, value, prefix + name)
    return cls(**kwargs)


def _typed(cls, name: str, value: Any, dotted: str) -> Any:
    """`value` for a number field read as the number it means; a value that is not one is a ValueError.

    YAML 1.1 (PyYAML: config files and --set) reads `1e-4` as the text '1e-4', not a float.
    """
    hint = typing.get_type_hints(cls).get(name)
    allowed = typing.get_args(hint) or (hint,)
    if float not in allowed or value is None:
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            if str in allowed:
                return value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ConfigError(f"{dotted} must be a number, got {value!r}")


_SUBCONFIGS = {"data": DataConfig, "encoder": EncoderConfig, "pretrain": PretrainConfig, "finetune": FinetuneConfig,
               "eval": EvalConfig, "objectives": ObjectiveConfig}


def check_types(cfg: Any, prefix: str = "") -> None:
    """ConfigError naming the first option whose value is not of its declared type (e.g. patience 'abc').

    A path object where text goes (init, data.path, ...) is stored as its text, as config.json holds it,
    and comma-separated text where a list of names goes as that list.
    """
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value, hint, name = getattr(cfg, f.name), hints[f.name], prefix + f.name
        if isinstance(value, os.PathLike) and _is_a("", hint):
            value = os.fspath(value)
            setattr(cfg, f.name, value)
        elif isinstance(value, str) and hint == list[str]:  # --set data.attribute_cols=brand,categories
            value = column_list(value)
            setattr(cfg, f.name, value)
        if dataclasses.is_dataclass(value):
            check_types(value, name + ".")
        elif not _is_a(value, hint):
            raise ConfigError(f"{name} must be {_describe(hint)}, got {value!r}")


def _is_a(value: Any, hint: Any) -> bool:
    if typing.get_origin(hint) is list:
        return isinstance(value, list) and all(_is_a(v, typing.get_args(hint)[0]) for v in value)
    if typing.get_args(hint):  # a union such as str | None
        return any(_is_a(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint in (int, float):  # bool is an int in Python, never a number here; nan and inf are no settings
        return (isinstance(value, int if hint is int else (int, float)) and not isinstance(value, bool)
                and math.isfinite(value))
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) is list:
        return f"a list of {_describe(typing.get_args(hint)[0]).removeprefix('a ')}"
    if typing.get_args(hint):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    return {int: "an integer", float: "a finite number", str: "text", bool: "true or false", type(None): "null"}.get(
        hint, getattr(hint, "__name__", str(hint)))


def _dataclass_of(f: dataclasses.Field):
    return _SUBCONFIGS.get(f.name)


def get_path(cfg: Any, dotted: str) -> Any:
    """The value of e.g. 'pretrain.objectives.sp' in nested dataclasses."""
    for name in dotted.split("."):
        cfg = getattr(cfg, name)
    return cfg


def set_path(cfg: Any, dotted: str, value: Any) -> None:
    """Set e.g. 'pretrain.objectives.sp' on nested dataclasses."""
    *parents, last = dotted.split(".")
    obj = cfg
    for p in parents:
        if not dataclasses.is_dataclass(obj) or not hasattr(obj, p):
            raise ConfigError(f"unknown option {dotted}")
        obj = getattr(obj, p)
    if not dataclasses.is_dataclass(obj) or not hasattr(obj, last):
        raise ConfigError(f"unknown option {dotted}")
    group = getattr(obj, last)
    if dataclasses.is_dataclass(group):
        example = dataclasses.fields(group)[0].name
        raise ConfigError(f"{dotted} is a group of options, not one: set one of them, e.g. {dotted}.{example}=...")
    setattr(obj, last, _typed(type(obj), last, value, dotted))


RECORDED = ("protocol", "environment")  # what a run's config.json holds beside its options


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error (not last-wins)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` may be overridden by explicit keys
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"option {key!r} given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_options_file(path: str | Path) -> dict:
    """The options of a YAML/JSON config file (a run's config.json repeats that run); S3RecError naming the line."""
    p = Path(path)
    if not p.is_file():
        raise S3RecError(f"{p}: config file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise S3RecError(f"{p}: not valid UTF-8 text ({e.reason})") from None
    try:
        d = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        what = getattr(e, "problem", None) or (str(e).splitlines() or [type(e).__name__])[0]
        raise S3RecError(f"{where}: not valid YAML/JSON ({what})") from None
    except (ValueError, TypeError, LookupError, AttributeError, RecursionError) as e:
        # PyYAML's constructors fail with plain exceptions on bad values (a date 2020-13-45, `!!int x`, deep nesting).
        raise S3RecError(f"{p}: not valid YAML/JSON ({type(e).__name__}: {one_line(e)})") from None
    if not isinstance(d, dict):
        raise S3RecError(f"{p}: config must be a mapping of options")
    return {k: v for k, v in d.items() if k not in RECORDED}


def config_from_options(options: dict, model: str, recipe: str | None = None) -> RunConfig:
    """The layers below the command line's flags: dataclass defaults < the model's paper defaults < the
    recipe (`recipe`, else the options', else paper) < `options` (nested, as a config file holds them)."""
    from s3rec.models.factory import check_model_options, with_model_defaults
    from s3rec.recipes import with_recipe

    cfg = RunConfig.from_dict(with_model_defaults(with_recipe(options, recipe, model), model))
    check_model_options(cfg)
    return cfg


def load_config(path: str | Path, model: str | None = None) -> RunConfig:
    """The RunConfig of a YAML/JSON config file or a run's config.json, layered as `--config FILE` is.

    `model` overrides the file's (as --model does); errors are one-line S3RecErrors naming the file
    (ConfigError for an option).
    """
    options = read_options_file(path)
    options["model"] = str(model or options.get("model") or "s3rec")
    try:
        return config_from_options(options, options["model"]).validate()
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{path}: bad option: {one_line(e)}") from None
