"""Fine-tuning losses on a tiny batch against hand-computed values (encoder replaced by a lookup)."""

import math

import pytest
import torch

from s3rec.models.encoder import EncoderConfig
from s3rec.models.sasrec import SASRec

# items 1..3, d = 2; e1 = (1, 0), e2 = (0, 1), e3 = (1, 1); "encoder output" at an input item = T[item]
E = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [5.0, 5.0]])  # row 4 = [mask], never a candidate
T = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, -1.0], [0.5, 0.5]])
BATCH = {"inputs": torch.tensor([[0, 1, 2]]), "targets": torch.tensor([[0, 2, 3]]), "negatives": torch.tensor([[0, 3, 1]]),
         "sampled": torch.tensor([1, 3])}
# position 1: F = (2, 0), target 2 -> s+ = 0, negative 3 -> s- = 2; all items: (2, 0, 2)
# position 2: F = (0, -1), target 3 -> s+ = -1, negative 1 -> s- = 0; all items: (0, -1, -1)


def sp(x):
    return math.log1p(math.exp(x))


def model(loss, label_smoothing=0.0):
    m = SASRec(3, EncoderConfig(d=2, n_heads=1, n_layers=1, max_len=3), loss=loss, label_smoothing=label_smoothing)
    with torch.no_grad():
        m.encoder.M_I.weight.copy_(E)
    m.encoder.forward = lambda items, causal: T[items]
    return m


def test_bce():
    expected = ((sp(-0) + sp(2)) + (sp(1) + sp(0))) / 2  # -log s(s+) - log(1 - s(s-)) per position, mean
    assert model("bce").loss(BATCH).item() == pytest.approx(expected, rel=1e-6)


def test_bpr():
    expected = (sp(-(0 - 2)) + sp(-(-1 - 0))) / 2
    assert model("bpr").loss(BATCH).item() == pytest.approx(expected, rel=1e-6)


def test_full_softmax_cross_entropy():
    lse1 = math.log(math.exp(2) + math.exp(0) + math.exp(2))
    lse2 = math.log(math.exp(0) + math.exp(-1) + math.exp(-1))
    expected = ((lse1 - 0) + (lse2 - (-1))) / 2  # padding and [mask] are not in the softmax
    assert model("ce").loss(BATCH).item() == pytest.approx(expected, rel=1e-6)


def test_sampled_softmax_drops_a_sampled_target():
    # sampled negatives 1 and 3: position 1 (target 2): logits (0 | 2, 2); position 2 (target 3): (-1 | 0, [3 is the target])
    lse1 = math.log(math.exp(0) + 2 * math.exp(2))
    lse2 = math.log(math.exp(-1) + math.exp(0))
    expected = ((lse1 - 0) + (lse2 + 1)) / 2
    assert model("sampled-softmax").loss(BATCH).item() == pytest.approx(expected, rel=1e-6)


def test_label_smoothing_mixes_in_the_cross_entropy_to_uniform_over_real_candidates():
    eps = 0.1
    lse1 = math.log(math.exp(2) + math.exp(0) + math.exp(2))  # full softmax, as above
    lse2 = math.log(math.exp(0) + math.exp(-1) + math.exp(-1))
    nll, uniform = ((lse1 - 0), (lse2 + 1)), (lse1 - 4 / 3, lse2 + 2 / 3)  # uniform: lse - mean logit
    expected = sum((1 - eps) * n + eps * u for n, u in zip(nll, uniform)) / 2
    assert model("ce", eps).loss(BATCH).item() == pytest.approx(expected, rel=1e-6)
    # sampled: position 1 has 3 candidates (0 | 2, 2), position 2 only 2 (-1 | 0): the sampled target is dropped
    lse1 = math.log(math.exp(0) + 2 * math.exp(2))
    lse2 = math.log(math.exp(-1) + math.exp(0))
    nll, uniform = ((lse1 - 0), (lse2 + 1)), (lse1 - 4 / 3, lse2 + 1 / 2)
    expected = sum((1 - eps) * n + eps * u for n, u in zip(nll, uniform)) / 2
    assert model("sampled-softmax", eps).loss(BATCH).item() == pytest.approx(expected, rel=1e-6)
    assert model("ce", 0.0).loss(BATCH).item() == pytest.approx(model("ce", 1e-9).loss(BATCH).item(), rel=1e-6)


@pytest.mark.parametrize("model_name,loss", [("sasrec", "bce"), ("sasrec", "bpr"), ("bert4rec", "ce")])
def test_label_smoothing_is_refused_where_it_cannot_apply(model_name, loss):
    from s3rec.config import RunConfig
    from s3rec.models.factory import check_model_options

    cfg = RunConfig(model=model_name)
    cfg.finetune.loss, cfg.finetune.label_smoothing = loss, 0.1
    with pytest.raises(ValueError, match="label_smoothing"):
        check_model_options(cfg.validate())


def test_unknown_loss():
    with pytest.raises(ValueError):
        SASRec(3, loss="hinge")
