"""Checkpoints: identical scores after a round trip, hard errors on bad files, exact resume."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.errors import S3RecError
from s3rec.models.encoder import EncoderConfig
from s3rec.transfer import load_transferred
from s3rec.models.sasrec import SASRec
from s3rec.training.checkpoint import load_checkpoint, save_checkpoint, vocabulary_sha1
from s3rec.training.finetune import FinetuneConfig, finetune
from s3rec.training.pretrain import PretrainConfig, pretrain

ENC = EncoderConfig(d=16, n_layers=1, n_heads=2, max_len=10)
QUIET = {"progress": False, "log": lambda *a: None}


@pytest.fixture(scope="module")
def split():
    return LeaveOneOut.from_data(make_synthetic(n_users=120, n_items=60, avg_len=9, n_attributes=12, n_topics=6, seed=1))


def test_round_trip_gives_identical_scores(split, tmp_path):
    torch.manual_seed(0)
    model = SASRec(split.n_items, ENC).eval()
    save_checkpoint(tmp_path / "m.pt", stage="model", config={}, data={"n_items": split.n_items}, model=model)
    other = SASRec(split.n_items, ENC).eval()
    other.load_state_dict(load_checkpoint(tmp_path / "m.pt", stage="model")["state_dict"])
    hist = split.histories("test", ENC.max_len)
    torch.testing.assert_close(model.score_all(hist), other.score_all(hist), rtol=0, atol=0)


def test_missing_corrupt_foreign_and_incompatible_checkpoints_fail(split, tmp_path):
    model = SASRec(split.n_items, ENC)
    with pytest.raises(S3RecError, match="not found"):
        load_transferred(model, tmp_path / "missing.pt", split.data)
    good = pretrain(split, PretrainConfig(epochs=1), ENC, tmp_path / "pt", seed=0, **QUIET)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(S3RecError, match="not a readable checkpoint"):
        load_transferred(model, truncated, split.data)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": 1}, foreign)
    with pytest.raises(S3RecError, match="not an s3rec checkpoint"):
        load_transferred(model, foreign, split.data)
    with pytest.raises(S3RecError, match="items"):
        load_transferred(SASRec(split.n_items + 1, ENC), good, make_synthetic(n_users=120, n_items=61, n_topics=6, n_attributes=12))
    with pytest.raises(S3RecError, match=r"does not fit this SASRec's encoder \(EncoderConfig\(d=32.*fine-tune with the checkpoint's encoder settings"):
        load_transferred(SASRec(split.n_items, EncoderConfig(d=32, n_layers=1, max_len=10)), good, split.data)
    load_transferred(model, good, split.data)  # and the good one loads: every encoder tensor as pre-trained
    saved = torch.load(good, weights_only=False)["state_dict"]
    for name, value in model.encoder.state_dict().items():
        assert torch.equal(value, saved[f"encoder.{name}"]), name


def test_checkpoint_of_another_catalogue_of_the_same_size_fails(split, tmp_path):
    good = pretrain(split, PretrainConfig(epochs=1), ENC, tmp_path / "pt", seed=0, **QUIET)
    model = SASRec(split.n_items, ENC)
    ids = split.data.item_ids
    shuffled = dataclasses.replace(split.data, item_ids=np.concatenate([ids[:1], ids[1:][::-1]]))
    with pytest.raises(S3RecError, match="other item ids"):
        load_transferred(model, good, shuffled)
    renamed = dataclasses.replace(split.data, attribute_names=np.array([None] + [f"a{j}" for j in range(12)], dtype=object))
    ck = load_checkpoint(good, stage="pretrain")
    ck["data"]["attributes_sha1"] = vocabulary_sha1(np.array([None] + [f"b{j}" for j in range(12)], dtype=object))
    torch.save(ck, tmp_path / "named.pt")
    with pytest.raises(S3RecError, match="other attribute ids"):
        load_transferred(model, tmp_path / "named.pt", renamed)
    del ck["data"]["items_sha1"], ck["data"]["attributes_sha1"]  # saved before fingerprints: sizes decide
    torch.save(ck, tmp_path / "old.pt")
    load_transferred(model, tmp_path / "old.pt", shuffled)


def test_pretraining_resumes_exactly(split, tmp_path):
    straight = pretrain(split, PretrainConfig(epochs=2), ENC, tmp_path / "a", seed=3, **QUIET)
    pretrain(split, PretrainConfig(epochs=1), ENC, tmp_path / "b", seed=3, **QUIET)
    resumed = pretrain(split, PretrainConfig(epochs=2), ENC, tmp_path / "b", seed=3, resume=True, **QUIET)
    a, b = load_checkpoint(straight)["state_dict"], load_checkpoint(resumed)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


@pytest.mark.parametrize("ema_epochs", [0.0, 1.5])  # 1.5: the moving average of the weights resumes too
def test_finetuning_resumes_exactly(split, tmp_path, ema_epochs):
    def run(out, epochs, resume):
        torch.manual_seed(0)
        model = SASRec(split.n_items, ENC)
        finetune(model, split, FinetuneConfig(epochs=epochs, patience=50, ema_epochs=ema_epochs), ENC.max_len, seed=5,
                 validate=lambda m: {"NDCG@10": float(m.encoder.M_I.weight.detach().sum())}, out_dir=out, resume=resume, **QUIET)
        last = load_checkpoint(out / "finetune_last.pt")
        return model.state_dict(), {**last["state_dict"], **{f"average.{k}": v for k, v in last.get("average", {}).items()}}

    kept_a, a = run(tmp_path / "a", 3, False)
    run(tmp_path / "b", 2, False)
    kept_b, b = run(tmp_path / "b", 3, True)
    assert a.keys() == b.keys() and any(k.startswith("average.") for k in a) == (ema_epochs > 0)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    for k in kept_a:
        torch.testing.assert_close(kept_a[k], kept_b[k], rtol=0, atol=0)


def test_finetuning_resume_with_other_optimiser_groups_is_a_one_line_error(split, tmp_path):
    # a run saved before AdamW left 1-D parameters undecayed had one parameter group, now two
    def run(resume):
        finetune(SASRec(split.n_items, ENC), split, FinetuneConfig(epochs=2, patience=50, optimizer="adamw", weight_decay=0.01),
                 ENC.max_len, seed=5, validate=lambda m: {"NDCG@10": 0.0}, out_dir=tmp_path, resume=resume, **QUIET)

    run(False)
    last = load_checkpoint(tmp_path / "finetune_last.pt")
    last["optimizer"]["param_groups"] = last["optimizer"]["param_groups"][:1]
    torch.save(last, tmp_path / "finetune_last.pt")
    with pytest.raises(S3RecError, match=r"finetune_last.pt: its optimiser state does not fit this version .*without --resume"):
        run(True)


def test_pretraining_with_the_batch_thread_is_the_same_run(split, tmp_path):
    plain = pretrain(split, PretrainConfig(epochs=2, prefetch=False), ENC, tmp_path / "a", seed=5, **QUIET)
    threaded = pretrain(split, PretrainConfig(epochs=2, prefetch=True), ENC, tmp_path / "b", seed=5, **QUIET)
    a, b = load_checkpoint(plain)["state_dict"], load_checkpoint(threaded)["state_dict"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_a_run_stopped_early_resumed_with_more_patience_is_the_longer_run(split, tmp_path):
    """Patience only ends the loop: continuing a stopped run with a larger one retraces the same trajectory."""
    scores = [0.1, 0.3, 0.2, 0.25, 0.4, 0.1, 0.2, 0.3, 0.35]  # validation NDCG@10 of epochs 1..9

    def run(out, patience, first_epoch, resume):
        torch.manual_seed(0)
        model = SASRec(split.n_items, ENC)
        given = iter(scores[first_epoch:])
        finetune(model, split, FinetuneConfig(epochs=len(scores), patience=patience), ENC.max_len, seed=5,
                 validate=lambda m: {"NDCG@10": next(given)}, out_dir=out, resume=resume, **QUIET)
        records = map(json.loads, (out / "finetune_log.jsonl").read_text().splitlines())
        log = [(r["epoch"], r["loss"], r["valid_NDCG@10"]) for r in records]
        return model.state_dict(), log

    kept_long, log_long = run(tmp_path / "a", 3, 0, False)
    _, log_short = run(tmp_path / "b", 1, 0, False)
    assert [e for e, *_ in log_short] == [1, 2, 3] and [e for e, *_ in log_long] == list(range(1, 9))
    kept_resumed, log_resumed = run(tmp_path / "b", 3, len(log_short), True)
    assert log_resumed == log_long  # the same losses, epoch by epoch, and the stop after epoch 8
    for k in kept_long:  # the best epoch (5) of the longer run is kept
        torch.testing.assert_close(kept_long[k], kept_resumed[k], rtol=0, atol=0)
