"""finetune.ema_epochs: validation also scores a moving average of the weights; patience watches both curves."""

import copy
import json

import pytest
import torch

from s3rec.config import RunConfig
from s3rec.errors import S3RecError
from s3rec.training.finetune import FinetuneConfig, finetune
from test_valid_every import scripted, small_model, split  # noqa: F401 (split: the same module-scoped fixture)

QUIET = {"progress": False, "log": lambda *a: None}


def test_validation_scores_the_trained_weights_and_their_moving_average(split, tmp_path):
    # 120 users in batches of 16: 7.5 steps an epoch; a time constant of 2 steps is decay 1/2
    live = []
    cfg = FinetuneConfig(epochs=2, batch_size=16, valid_every=1, patience=100)
    finetune(small_model(split), split, cfg, 10, seed=0, validate=scripted([0.1] * 16, live), out_dir=tmp_path / "a", **QUIET)
    seen = []  # with the average: trained, average, trained, average, ...
    scores = [0.1, 0.2, 0.3, 0.1, 0.2, 0.5, 0.4, 0.1] * 4  # the best (0.5) is an average's
    model = small_model(split)
    cfg.ema_epochs = 2 / 7.5
    result = finetune(model, split, cfg, 10, seed=0, validate=scripted(scores, seen), out_dir=tmp_path / "b", **QUIET)
    assert result.best_weights == "average"
    trained, averaged = seen[0::2], seen[1::2]
    assert len(live) == len(trained) == len(averaged) == 16
    expected = copy.deepcopy(live[0])  # the first update copies the weights
    for step, (w, mine, avg) in enumerate(zip(live, trained, averaged)):
        if step:
            expected = {k: 0.5 * expected[k] + 0.5 * w[k] for k in w}
        for k in w:
            torch.testing.assert_close(mine[k], w[k], rtol=0, atol=0)  # averaging leaves training alone
            torch.testing.assert_close(avg[k], expected[k], rtol=1e-6, atol=1e-7)
    assert not torch.equal(averaged[5]["encoder.M_I.weight"], live[5]["encoder.M_I.weight"])
    for k, v in model.state_dict().items():  # the run keeps the best-scoring weights, here an average
        torch.testing.assert_close(v, seen[scores.index(max(scores))][k], rtol=0, atol=0)
    log = [json.loads(line) for line in (tmp_path / "b" / "finetune_log.jsonl").read_text().splitlines()]
    assert [r["valid_NDCG@10"] for r in log] == [max(scores[i], scores[i + 1]) for i in range(0, 32, 2)]
    assert [r["valid_NDCG@10_average"] for r in log] == scores[1::2]


LOW = [0.5, 0.1, 0.1, 0.1, 0.1, 0.1]  # an early peak, then flat


@pytest.mark.parametrize("trained, average, validations, best_epoch", [
    ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.05, 0.04, 0.03, 0.02, 0.01, 0.0], 6, 6),  # the trained weights keep improving
    ([0.05, 0.04, 0.03, 0.02, 0.01, 0.0], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 6, 6),  # the average keeps improving
    (LOW, [0.1, 0.15, 0.2, 0.25, 0.3, 0.35], 6, 1),  # the average rises below the trained weights' peak: go on
    (LOW, [0.3, 0.2, 0.1, 0.1, 0.1, 0.1], 3, 1),  # neither improves on its own best: stop after patience 2
])
def test_patience_counts_validations_in_which_neither_kind_improved(split, tmp_path, trained, average, validations,
                                                                     best_epoch):
    scores = [v for pair in zip(trained, average) for v in pair]
    result = finetune(small_model(split), split, FinetuneConfig(epochs=6, batch_size=32, patience=2, ema_epochs=1.0), 10,
                      seed=0, validate=scripted(scores, []), out_dir=tmp_path, **QUIET)
    assert len(result.history) == validations and result.best_epoch == best_epoch
    assert result.best_metric == max(scores[:2 * validations])
    assert result.best_weights == ("trained" if max(trained[:validations]) >= max(average[:validations]) else "average")


def test_resuming_a_run_saved_without_the_average_fails(split, tmp_path):
    finetune(small_model(split), split, FinetuneConfig(epochs=1, batch_size=32), 10, seed=0,
             validate=lambda m: {"NDCG@10": 0.1}, out_dir=tmp_path, **QUIET)
    with pytest.raises(S3RecError, match="finetune_last.pt: saved without finetune.ema_epochs"):
        finetune(small_model(split), split, FinetuneConfig(epochs=2, batch_size=32, ema_epochs=1.0), 10, seed=0,
                 validate=lambda m: {"NDCG@10": 0.1}, out_dir=tmp_path, resume=True, **QUIET)


def test_a_negative_time_constant_is_rejected():
    cfg = RunConfig()
    cfg.finetune.ema_epochs = -1.0
    with pytest.raises(ValueError, match="finetune.ema_epochs"):
        cfg.validate()
