"""Tests of `s3rec export` (s3rec.export): the exported TorchScript / ONNX scorer gives the model's scores and
top-k, carries the raw id map, and models that cannot be exported are refused with a clear error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from s3rec import Recommender, RunConfig, S3RecError, run
from s3rec.cli import main
from s3rec.data.synthetic import make_synthetic
from s3rec.export import METADATA, export_run

QUIET = {"progress": False, "log": lambda *a, **k: None, "echo": lambda *a, **k: None}
MAX_LEN = 8
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Tiny finished runs of sasrec, s3rec (1 pre-training epoch) and pop on synthetic data."""
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("export")
    data = make_synthetic(n_users=60, n_items=40, avg_len=8, n_attributes=10, n_topics=5, seed=0)
    data.item_ids = np.array([None] + [f"sku{7 * i}" for i in range(1, data.n_items + 1)], dtype=object)
    out = {}
    for model in ("sasrec", "s3rec", "pop"):
        cfg = RunConfig(model=model, seed=1)
        cfg.encoder.d, cfg.encoder.n_layers, cfg.encoder.max_len = 16, 1, MAX_LEN
        cfg.finetune.epochs, cfg.pretrain.epochs = 2, 1
        out[model] = base / model
        run(cfg, out=out[model], data=data, **QUIET)
    return out


def histories(n_items: int) -> torch.Tensor:
    """(5, MAX_LEN) left-padded histories: full, short, a single item, and random lengths."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, n_items + 1, (5, MAX_LEN), generator=g)
    for row, length in enumerate([MAX_LEN, 3, 1, 5, 7]):
        x[row, : MAX_LEN - length] = 0
    return x


@pytest.mark.parametrize("model", ["sasrec", "s3rec"])
def test_torchscript_scorer_gives_the_models_scores_and_top_k(runs, tmp_path, model):
    out = export_run(runs[model], "torchscript", tmp_path / "scorer.pt")
    extra = {METADATA: ""}
    scorer = torch.jit.load(str(out), _extra_files=extra)
    rec = Recommender.load(runs[model])
    x = histories(rec.n_items)
    with torch.inference_mode():
        got, expected = scorer(x), rec.model.score_all(x)
    assert got.shape == (5, rec.n_items + 1) and got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(got[:, 1:].topk(10).indices, expected[:, 1:].topk(10).indices)
    meta = json.loads(extra[METADATA])
    assert meta["model"] == model and meta["n_items"] == rec.n_items and meta["max_len"] == MAX_LEN
    assert meta["item_ids"][0] is None and meta["item_ids"][3] == "sku21"


def test_exported_file_alone_reproduces_recommender_output(runs, tmp_path):
    """Raw ids -> internal ids with the embedded map, score, exclude seen, top-k -> raw ids: as Recommender."""
    extra = {METADATA: ""}
    scorer = torch.jit.load(str(export_run(runs["sasrec"], "torchscript", tmp_path / "s.pt")), _extra_files=extra)
    item_ids = json.loads(extra[METADATA])["item_ids"]
    internal = {raw: i for i, raw in enumerate(item_ids) if i}
    history = ["sku7", "sku70", "sku140", "sku21"]
    x = torch.zeros(1, MAX_LEN, dtype=torch.long)
    x[0, -len(history):] = torch.tensor([internal[h] for h in history])
    scores = scorer(x)[0]
    scores[0] = -torch.inf
    scores[x[0][x[0] > 0]] = -torch.inf
    top = [item_ids[i] for i in scores.topk(5).indices.tolist()]
    assert top == Recommender.load(runs["sasrec"]).recommend(histories=[history], k=5)[0]["items"]


def test_onnx_scorer_matches_with_any_batch_size(runs, tmp_path):
    ort = pytest.importorskip("onnxruntime")  # installed by scripts/setup (extra s3rec[onnx])
    import onnx

    out = export_run(runs["s3rec"], "onnx", tmp_path / "scorer.onnx")
    rec = Recommender.load(runs["s3rec"])
    session = ort.InferenceSession(str(out))
    for x in (histories(rec.n_items), histories(rec.n_items)[:2]):
        (got,) = session.run(None, {"histories": x.numpy()})
        with torch.inference_mode():
            expected = rec.model.score_all(x).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
        assert np.array_equal(np.argsort(-got[:, 1:], 1)[:, :10], np.argsort(-expected[:, 1:], 1)[:, :10])
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(props[METADATA])["model"] == "s3rec"


def test_cli_export_and_its_errors(runs, tmp_path, capsys):
    out = tmp_path / "cli" / "scorer.pt"
    assert main(["export", "--run", str(runs["sasrec"]), "--format", "torchscript", "--out", str(out)]) == 0
    assert out.is_file() and f"exported torchscript scorer: {out}" in capsys.readouterr().out
    pop = tmp_path / "pop.pt"
    assert main(["export", "--run", str(runs["pop"]), "--format", "torchscript", "--out", str(pop)]) == 2
    err = capsys.readouterr().err
    assert err == "s3rec: error: cannot export a pop run: only sasrec, s3rec runs are exportable\n"
    assert not pop.exists() and not list(tmp_path.glob(".*.tmp"))
    assert main(["export", "--run", str(tmp_path / "nope"), "--format", "torchscript", "--out", str(pop)]) == 2
    assert "run directory not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", "--run", str(runs["sasrec"]), "--format", "tflite", "--out", str(pop)])


def test_onnx_without_its_packages_is_a_clear_error(runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # an import of it now fails
    with pytest.raises(S3RecError, match=r"pip install 's3rec\[onnx\]'"):
        export_run(runs["sasrec"], "onnx", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
