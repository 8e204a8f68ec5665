"""Models learn planted structure: pre-training objectives rise far above chance, fine-tuning from
pre-training starts far ahead of random initialisation, and SASRec beats popularity."""

import pytest
import torch

from s3rec.config import EvalConfig
from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.models.encoder import EncoderConfig
from s3rec.transfer import load_transferred
from s3rec.models.pop import PopRec
from s3rec.models.s3rec import S3RecPretrainer
from s3rec.models.sasrec import SASRec
from s3rec.pipeline import evaluate
from s3rec.training.batches import TrainingSequences, pretrain_batch
from s3rec.training.checkpoint import load_checkpoint
from s3rec.training.finetune import FinetuneConfig, finetune
from s3rec.training.pretrain import PretrainConfig, pretrain

ENC = EncoderConfig(d=32, n_layers=2, n_heads=2, max_len=20, dropout=0.2, attn_dropout=0.2)
FULL = EvalConfig(protocol="full")


@pytest.fixture(scope="module")
def split():
    return LeaveOneOut.from_data(make_synthetic(n_users=500, n_items=150, avg_len=14, n_attributes=30, n_topics=10, seed=0))


@pytest.fixture(scope="module")
def pretrained(split, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain")
    return pretrain(split, PretrainConfig(epochs=8, batch_size=64, lr=5e-3, save_every=8), ENC, out, seed=0,
                    progress=False, log=lambda *a: None)


def valid_ndcg(model, split):
    return evaluate(model, split, "valid", FULL, ENC.max_len, None)["full"].metrics["NDCG@10"]


def fine_tuned(split, tmp_path, init=None, epochs=3):
    model = SASRec(split.n_items, ENC)
    if init is not None:
        load_transferred(model, init, split.data)
    cfg = FinetuneConfig(epochs=epochs, patience=100)
    finetune(model, split, cfg, ENC.max_len, seed=0, validate=lambda m: {"NDCG@10": valid_ndcg(m, split)},
             out_dir=tmp_path, progress=False, log=lambda *a: None)
    return model


def test_pretraining_raises_every_objective_far_above_chance(split, pretrained):
    data = split.data
    seqs = TrainingSequences(*split.train_sequences(), data.n_items)
    user, start, end = seqs.prefix_samples(ENC.max_len)
    idx = torch.randperm(len(user), generator=torch.Generator().manual_seed(1))[:400]
    batch = pretrain_batch(seqs, user[idx], start[idx], end[idx], 0.2, torch.Generator().manual_seed(2))

    def accuracies(state):
        m = S3RecPretrainer(data.n_items, data.n_attributes, torch.from_numpy(data.attr_offsets),
                            torch.from_numpy(data.attr_values), ENC)
        if state is not None:
            m.load_state_dict(state)
        m.eval()
        return m.accuracies(batch)

    before = accuracies(None)
    after = accuracies(load_checkpoint(pretrained)["state_dict"])
    # chance: a random attribute is one of an item's ~1.5 of 30 (5%); a random pair is ordered right half the time
    assert after["aap"] > 0.5 and after["map"] > 0.5, after
    assert after["mip"] > 0.75 and after["sp"] > 0.6, after
    for k in before:
        assert after[k] > before[k] + 0.1, (k, before, after)


def test_finetuning_from_pretraining_starts_far_ahead_of_random_init(split, pretrained, tmp_path):
    """After one fine-tuning epoch the pre-trained encoder is far ahead (the paper's convergence claim)."""
    scratch = valid_ndcg(fine_tuned(split, tmp_path / "a", epochs=1), split)
    warm = valid_ndcg(fine_tuned(split, tmp_path / "b", init=pretrained, epochs=1), split)
    assert warm > scratch + 0.03, (warm, scratch)


@pytest.mark.xfail(strict=True, reason="open problem, docs/s3rec.md 'When pre-training hurts': on this "
                   "planted-successor set, fine-tuning from the pre-trained encoder plateaus below random init "
                   "(NDCG@10 after 10 epochs 0.10-0.16 vs ~0.39; after 120 epochs 0.29 vs 0.44): the pre-trained "
                   "item table collapses onto the data's 10 topics")
def test_finetuning_from_pretraining_beats_random_init_after_ten_epochs(split, pretrained, tmp_path):
    scratch = valid_ndcg(fine_tuned(split, tmp_path / "a", epochs=10), split)
    warm = valid_ndcg(fine_tuned(split, tmp_path / "b", init=pretrained, epochs=10), split)
    assert warm > scratch


def test_sasrec_beats_popularity(split, tmp_path):
    pop = valid_ndcg(PopRec(split.n_items, split.train_counts()), split)
    sas = valid_ndcg(fine_tuned(split, tmp_path, epochs=15), split)
    assert sas > 2 * pop, (sas, pop)
