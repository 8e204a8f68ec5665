"""The optimiser: AdamW decays matrices only, as BERT's optimiser does; Adam's L2 reaches every parameter."""

import torch
from torch import nn

from s3rec.training.optim import adam


def _steps_with_zero_gradient(decoupled: bool, n: int = 100) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 4), nn.LayerNorm(4))
    opt = adam(model.parameters(), lr=1e-2, weight_decay=0.1, decoupled=decoupled)
    for _ in range(n):
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
    return model


def test_adamw_decays_matrices_but_not_biases_or_layernorm_gains():
    torch.manual_seed(0)
    fresh = nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 4), nn.LayerNorm(4))
    model = _steps_with_zero_gradient(decoupled=True)
    # decoupled decay alone: w <- w (1 - lr * wd) per step
    shrink = (1 - 1e-2 * 0.1) ** 100
    torch.testing.assert_close(model[0].weight, fresh[0].weight * shrink)
    torch.testing.assert_close(model[1].weight, fresh[1].weight * shrink)
    torch.testing.assert_close(model[1].bias, fresh[1].bias)
    torch.testing.assert_close(model[2].weight, torch.ones(4))
    torch.testing.assert_close(model[2].bias, torch.zeros(4))


def test_adam_l2_reaches_every_parameter():
    model = _steps_with_zero_gradient(decoupled=False)
    assert (model[2].weight < 1).all()  # coupled L2 (Caser's, HGN's form) is the authors' code: unchanged


def test_adamw_without_decay_is_one_group():
    opt = adam(nn.Linear(2, 2).parameters(), lr=1e-3, decoupled=True)
    assert len(opt.param_groups) == 1
