"""finetune.valid_every: validation within an epoch, best weights from any validation, patience in validations."""

import copy

import pytest
import torch

from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.models.encoder import EncoderConfig
from s3rec.models.sasrec import SASRec
from s3rec.training.finetune import FinetuneConfig, finetune


@pytest.fixture(scope="module")
def split():
    return LeaveOneOut.from_data(make_synthetic(n_users=120, n_items=60, avg_len=10, n_attributes=8, n_topics=4, seed=5))


def scripted(values, snapshots):
    """A validate function that returns the next value and keeps a copy of the weights it saw."""
    it = iter(values)

    def validate(model):
        snapshots.append(copy.deepcopy(model.state_dict()))
        return {"NDCG@10": next(it)}

    return validate


def small_model(split):
    torch.manual_seed(0)
    return SASRec(split.n_items, EncoderConfig(d=16, n_heads=2, n_layers=1, max_len=10))


def test_validates_every_n_steps_and_at_each_epoch_end(split, tmp_path):
    snaps = []
    cfg = FinetuneConfig(epochs=2, batch_size=16, valid_every=3, patience=100)  # 120 users: 8 steps per epoch
    result = finetune(small_model(split), split, cfg, 10, seed=0, validate=scripted([0.1] * 10, snaps),
                      out_dir=tmp_path, progress=False, log=lambda *a: None)
    assert [(r["epoch"], r["step"], r.get("partial", False)) for r in result.history] == [
        (1, 3, True), (1, 6, True), (1, 8, False), (2, 11, True), (2, 14, True), (2, 16, False)]
    lines = (tmp_path / "finetune_log.jsonl").read_text().splitlines()
    assert len(lines) == 6


def test_best_weights_can_come_from_inside_an_epoch(split, tmp_path):
    snaps = []
    cfg = FinetuneConfig(epochs=2, batch_size=16, valid_every=3, patience=100)
    model = small_model(split)
    result = finetune(model, split, cfg, 10, seed=0, validate=scripted([0.1, 0.5, 0.2, 0.3, 0.4, 0.1], snaps),
                      out_dir=tmp_path, progress=False, log=lambda *a: None)
    assert (result.best_epoch, result.best_step, result.best_metric) == (1, 6, 0.5)
    for name, tensor in model.state_dict().items():  # the weights of the second validation are restored
        assert torch.equal(tensor, snaps[1][name]), name
    assert not torch.equal(snaps[1]["encoder.M_I.weight"], snaps[-1]["encoder.M_I.weight"])


def test_patience_counts_validations_and_stops_inside_an_epoch(split, tmp_path):
    cfg = FinetuneConfig(epochs=5, batch_size=16, valid_every=2, patience=2)
    result = finetune(small_model(split), split, cfg, 10, seed=0, validate=scripted([0.9] + [0.1] * 20, []),
                      out_dir=tmp_path, progress=False, log=lambda *a: None)
    # best at step 2; two worse validations (steps 4 and 6) and the run stops there, mid-epoch
    assert [(r["step"], r.get("partial", False)) for r in result.history] == [(2, True), (4, True), (6, True)]
    assert result.best_step == 2
    cfg = FinetuneConfig(epochs=5, batch_size=16, valid_every=2, patience=3)  # the third is the epoch's end
    result = finetune(small_model(split), split, cfg, 10, seed=0, validate=scripted([0.9] + [0.1] * 20, []),
                      out_dir=tmp_path / "b", progress=False, log=lambda *a: None)
    assert [r["step"] for r in result.history] == [2, 4, 6, 8]


def test_without_valid_every_one_validation_per_epoch(split, tmp_path):
    cfg = FinetuneConfig(epochs=2, batch_size=16, patience=100)
    result = finetune(small_model(split), split, cfg, 10, seed=0, validate=scripted([0.1, 0.2], []),
                      out_dir=tmp_path, progress=False, log=lambda *a: None)
    assert [(r["epoch"], r["step"], "partial" in r) for r in result.history] == [(1, 8, False), (2, 16, False)]
    assert (result.best_epoch, result.best_step) == (2, 16)
