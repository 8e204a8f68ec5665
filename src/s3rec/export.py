"""Export a finished run's next-item scorer as TorchScript or ONNX (`s3rec export`).

Exportable: runs of `--model sasrec` and `--model s3rec` (the fine-tuned causal encoder, paper Eq. 16:
scores = F_t M_I^T). Other models are refused with an error: their scoring paths have not been
checked for tracing.

The exported module maps histories (B, L) int64 — internal item ids (id_maps/items.csv), oldest first,
left-padded with 0, L <= the run's encoder.max_len (pass L = max_len, as `Recommender` does) — to
scores (B, n_items + 1) float32; column 0 is padding (ignore it). Seen items are not excluded: do that
yourself, as `Recommender` does. The file carries metadata `s3rec.json` (TorchScript extra file, or an
ONNX metadata property): {"format", "model", "dataset", "n_items", "max_len", "item_ids"}, where
item_ids[i] is the raw id of internal item i (entry 0 is null), so the file alone maps scores to raw ids.

    s3rec export --run runs/shop-sasrec --format torchscript --out scorer.pt
    scorer = torch.jit.load("scorer.pt"); scores = scorer(histories)

TorchScript is made with torch.jit.trace (deprecated in favour of torch.export in recent torch, but
still the most widely loadable format, e.g. from C++). ONNX (dynamic batch size, fixed L = max_len)
needs the `onnx` extra: pip install 's3rec[onnx]' (onnx, onnxscript; onnxruntime to run it).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from s3rec.errors import S3RecError
from s3rec.io import atomic_path
from s3rec.models.sasrec import SASRec
from s3rec.recommend import Recommender

EXPORTABLE = ("sasrec", "s3rec")
FORMATS = ("torchscript", "onnx")
METADATA = "s3rec.json"


class NextItemScorer(nn.Module):
    """SASRec.score_all without its data-dependent trim of left padding (trimming changes no number)."""

    def __init__(self, model: SASRec):
        super().__init__()
        self.encoder, self.n_items = model.encoder, model.n_items

    def forward(self, histories: torch.Tensor) -> torch.Tensor:
        F_t = self.encoder(histories, causal=True)[:, -1]  # (B, d), the newest position
        return F_t @ self.encoder.M_I.weight[: self.n_items + 1].T  # (B, n_items + 1)


def scorer_module(rec: Recommender) -> NextItemScorer:
    """The exportable scorer of a loaded run (eval mode); an error for models other than sasrec/s3rec."""
    name = rec.config.model if rec.config is not None else type(rec.model).__name__.lower()
    if name not in EXPORTABLE or type(rec.model) is not SASRec:  # subclasses (sasrecf) score differently
        raise S3RecError(f"cannot export a {name} run: only {', '.join(EXPORTABLE)} runs are exportable")
    return NextItemScorer(rec.model).eval()


def metadata(rec: Recommender) -> dict:
    """What the exported file carries besides the weights."""
    return {"format": "s3rec-scorer", "model": rec.config.model if rec.config is not None else None,
            "dataset": rec.dataset, "n_items": rec.n_items, "max_len": rec.max_len,
            "item_ids": rec.item_ids.tolist()}


def export_run(run_dir: str | Path, fmt: str, out: str | Path) -> Path:
    """Write the run's scorer to `out` (atomically) as `fmt` (torchscript or onnx); returns `out`."""
    if fmt not in FORMATS:
        raise S3RecError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    rec = Recommender.load(run_dir)
    module = scorer_module(rec)
    example = _example_histories(rec)
    meta = json.dumps(metadata(rec), ensure_ascii=False)
    with atomic_path(out) as tmp:
        if fmt == "torchscript":
            _save_torchscript(module, example, meta, tmp)
        else:
            _save_onnx(module, example, meta, tmp)
    return Path(out)


def _example_histories(rec: Recommender) -> torch.Tensor:
    """(2, max_len) example input: one full row and one mostly padding, so the trace sees both."""
    x = torch.zeros(2, rec.max_len, dtype=torch.long)
    x[0] = torch.arange(rec.max_len) % rec.n_items + 1
    x[1, -1] = 1
    return x


def _save_torchscript(module: nn.Module, example: torch.Tensor, meta: str, path: Path) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        # jit's deprecation notices and its warning about unpacking q, k, v (a fixed-size unbind) are noise here.
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, example)
        torch.jit.save(traced, str(path), _extra_files={METADATA: meta})


def _save_onnx(module: nn.Module, example: torch.Tensor, meta: str, path: Path) -> None:
    try:
        import onnx  # noqa: F401  (torch.onnx needs onnx and onnxscript)
        import onnxscript  # noqa: F401
    except ImportError:
        raise S3RecError("--format onnx needs the onnx and onnxscript packages: pip install 's3rec[onnx]'") from None
    onnx_log = logging.getLogger("torch.onnx")  # it logs a line per absent torchvision operator
    level = onnx_log.level
    try:
        onnx_log.setLevel(logging.ERROR)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, (example,), input_names=["histories"], output_names=["scores"],
                                        dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, verbose=False)
    finally:
        onnx_log.setLevel(level)
    program.model.metadata_props[METADATA] = meta
    program.save(str(path))
