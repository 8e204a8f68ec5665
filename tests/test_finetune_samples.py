"""Prefix (sliding-window) fine-tuning samples: every training position is one sample's single target."""

import pytest
import torch

from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.errors import S3RecError
from s3rec.models.caser import Caser
from s3rec.models.encoder import EncoderConfig
from s3rec.models.sasrec import SASRec
from s3rec.training.batches import TrainingSequences, finetune_batch
from s3rec.training.finetune import FinetuneConfig, finetune


@pytest.fixture(scope="module")
def split():
    return LeaveOneOut.from_data(make_synthetic(n_users=120, n_items=60, avg_len=12, n_attributes=8, n_topics=4, seed=3))


def test_next_item_samples_enumerate_every_target_once(split):
    seqs = TrainingSequences(*split.train_sequences(), split.n_items)
    user, end = seqs.next_item_samples()
    for u in (0, 11, 57):
        train = split.data.sequence(u)[:-2].tolist()
        ends = end[user == u] - seqs.starts[u]
        assert ends.tolist() == list(range(2, len(train) + 1))  # targets train[1:], each with >= 1 input
    assert len(user) == int((seqs.ends - seqs.starts - 1).clamp(min=0).sum())


def test_prefix_batch_has_one_target_the_next_item_within_the_window(split):
    seqs = TrainingSequences(*split.train_sequences(), split.n_items)
    user, end = seqs.next_item_samples()
    pick = torch.tensor([0, 5, len(user) - 1])
    b = finetune_batch(seqs, user[pick], max_len=4, gen=torch.Generator().manual_seed(0), ends=end[pick])
    for row, (u, e) in enumerate(zip(user[pick].tolist(), end[pick].tolist())):
        history = seqs.items[seqs.starts[u]: e].tolist()
        inputs = b["inputs"][row][b["inputs"][row] != 0].tolist()
        assert inputs == history[:-1][-4:]  # the last max_len items before the target
        assert b["targets"][row, -1] == history[-1] and (b["targets"][row, :-1] == 0).all()
        assert b["negatives"][row, -1] != 0 and (b["negatives"][row, :-1] == 0).all()


def test_sasrec_learns_with_prefix_samples_and_ce(split, tmp_path):
    model = SASRec(split.n_items, EncoderConfig(d=16, n_heads=2, n_layers=1, max_len=10), loss="ce")
    cfg = FinetuneConfig(epochs=2, samples="prefixes", patience=5, loss="ce")
    seen = []
    result = finetune(model, split, cfg, 10, seed=0, validate=lambda m: {"NDCG@10": 0.0}, out_dir=tmp_path,
                      progress=False, log=seen.append)
    assert len(result.history) == 2 and result.history[1]["loss"] < result.history[0]["loss"]


def test_models_without_prefix_batches_fail_clearly(split, tmp_path):
    model = Caser(split.n_items, split.data.n_users, d=16)
    with pytest.raises(S3RecError, match="prefix samples"):
        finetune(model, split, FinetuneConfig(epochs=1, samples="prefixes"), 10, seed=0,
                 validate=lambda m: {"NDCG@10": 0.0}, out_dir=tmp_path, progress=False)


def test_linear_schedule_and_adamw(split, tmp_path):
    model = SASRec(split.n_items, EncoderConfig(d=16, n_heads=2, n_layers=1, max_len=10))
    lrs = []
    orig = torch.optim.AdamW.step

    def spy(self, *a, **k):
        lrs.append(self.param_groups[0]["lr"])
        return orig(self, *a, **k)

    torch.optim.AdamW.step = spy
    try:
        cfg = FinetuneConfig(epochs=4, optimizer="adamw", weight_decay=0.01, lr_schedule="linear", lr=1e-3, patience=9)
        finetune(model, split, cfg, 10, seed=0, validate=lambda m: {"NDCG@10": 0.0}, out_dir=tmp_path, progress=False)
    finally:
        torch.optim.AdamW.step = orig
    assert sorted(set(lrs), reverse=True) == pytest.approx([1e-3, 7.5e-4, 5e-4, 2.5e-4])
    with pytest.raises(S3RecError, match="optimizer"):
        finetune(model, split, FinetuneConfig(optimizer="sgd"), 10, seed=0, validate=lambda m: {"NDCG@10": 0.0},
                 out_dir=tmp_path, progress=False)
