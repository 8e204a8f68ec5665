"""Named presets of run settings (`--recipe`), applied on top of the dataclass defaults.

paper  the paper's and the authors' settings: exactly the dataclass defaults (nothing changed).
best   beyond the paper (issue 5): softmax cross-entropy over all items in fine-tuning and the
       pre-training counterpart of that loss (MIP as a softmax over all items), and early stopping
       with patience 20 (CE validation curves pause on plateaus that patience 10 stops on). Each setting is an
       ordinary option, so any one can be turned back with --set; docs/recipe.md gives the
       validation runs behind each choice and the options measured and left out (prefix samples).
fast   best with a short pre-training: 10 epochs in length buckets (issue 7's time-to-quality schedule:
       past the paper's S3-Rec on Beauty in well under an hour on 2 CPU cores; docs/recipe.md).
"""

from __future__ import annotations

from typing import Any

from s3rec.config import RunConfig, get_path, set_path
from s3rec.errors import ConfigError

_BEST = {
    "finetune.loss": "ce",
    "pretrain.objectives.mip_form": "softmax",
    "finetune.patience": 20,
}
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {},
    "best": _BEST,
    "fast": {**_BEST, "pretrain.epochs": 10, "pretrain.bucket": True},
}
RECIPE_MODELS = {"best": ("s3rec", "sasrec"), "fast": ("s3rec", "sasrec")}  # absent: every model


def apply_recipe(cfg: RunConfig, name: str) -> RunConfig:
    """Set `cfg.recipe` and the recipe's options on `cfg` (in place); unknown names are a ConfigError."""
    if name not in RECIPES:
        raise ConfigError(f"recipe must be one of {', '.join(RECIPES)}, got {name!r}")
    models = RECIPE_MODELS.get(name)
    if models is not None and cfg.model not in models:
        raise ConfigError(f"recipe {name!r} is defined for {', '.join(models)}, not {cfg.model!r}")
    cfg.recipe = name
    for key, value in RECIPES[name].items():
        set_path(cfg, key, value)
    return cfg


def check_applied(cfg: RunConfig) -> None:
    """ConfigError when `cfg.recipe` names a recipe none of whose settings `cfg` holds.

    `RunConfig(recipe="best")` alone sets the name, not the settings: config.json would then claim a
    recipe that did not run. Some settings changed after apply_recipe (--set) are fine. Checked when a
    run starts (pipeline.checked_device), not when a finished run's config is read.
    """
    settings = RECIPES.get(cfg.recipe, {})
    if settings and not any(get_path(cfg, key) == value for key, value in settings.items()):
        raise ConfigError(f"recipe={cfg.recipe!r} names settings none of which is in effect "
                          f"({', '.join(f'{k}={v}' for k, v in settings.items())}): apply them with "
                          f"s3rec.recipes.apply_recipe(cfg, {cfg.recipe!r}) (as --recipe does), or, having "
                          "changed them all, name no recipe")


def with_recipe(options: dict[str, Any], name: str | None, model: str) -> dict[str, Any]:
    """Nested `options` (a config file's content) with the recipe's settings beneath them (the file wins)."""
    name = name or options.get("recipe") or "paper"
    apply_recipe(RunConfig(model=model), name)  # validates the name and the model
    merged: dict[str, Any] = {}
    for key, value in RECIPES[name].items():
        *parents, last = key.split(".")
        node = merged
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return _deep_merge(merged, {**options, "recipe": name})


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
