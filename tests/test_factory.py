"""Every CLI model name builds, trains one step through the shared loop, and evaluates."""

import pytest
import torch

from s3rec.config import EvalConfig
from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.errors import S3RecError
from s3rec.models.encoder import EncoderConfig
from s3rec.models.factory import MODEL_NAMES, build_model
from s3rec.pipeline import evaluate
from s3rec.training.finetune import FinetuneConfig, finetune

ENC = EncoderConfig(d=16, n_layers=1, n_heads=2, max_len=10)


@pytest.fixture(scope="module")
def split():
    return LeaveOneOut.from_data(make_synthetic(n_users=60, n_items=120, avg_len=8, n_attributes=12, n_topics=6, seed=5))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_builds_trains_and_evaluates(name, split, tmp_path):
    torch.manual_seed(0)
    model = build_model(name, split, ENC)
    if model.trainable:
        finetune(model, split, FinetuneConfig(epochs=1, batch_size=32), ENC.max_len, seed=0,
                 validate=lambda m: {"NDCG@10": 0.0}, out_dir=tmp_path, progress=False, log=lambda *a: None)
    res = evaluate(model, split, "test", EvalConfig(protocol="both", n_negatives=20), ENC.max_len,
                   torch.randint(1, split.n_items + 1, (split.n_users, 20)))
    assert set(res) == {"full", "sampled"} and 0.0 <= res["full"].metrics["NDCG@10"] <= 1.0


def test_unknown_model_name(split):
    with pytest.raises(S3RecError, match="unknown model"):
        build_model("nosuch", split, ENC)
