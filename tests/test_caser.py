"""Caser: the contract's shapes, the last-L window, unseen users, training windows, learning."""

import io

import numpy as np

import pytest
import torch

from s3rec.config import EvalConfig
from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.models import caser
from s3rec.models.caser import Caser
from s3rec.models.next_item_loss import FINETUNE_LOSSES
from s3rec.models.pop import PopRec
from s3rec.pipeline import evaluate
from s3rec.training.batches import TrainingSequences
from s3rec.training.finetune import FinetuneConfig, finetune

N_ITEMS, N_USERS = 30, 10
HIST = torch.tensor([[0, 0, 0, 3, 7, 9, 4, 5], [1, 2, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 0, 0, 0, 11]])
USERS = torch.tensor([0, 4, 9])
CANDS = torch.tensor([[1, 2, 30], [9, 9, 4], [5, 6, 7]])


def make(loss="bce", seed=0, **kw):
    torch.manual_seed(seed)
    return Caser(N_ITEMS, N_USERS, d=8, n_h=3, n_v=2, loss=loss, n_negatives=5, **kw).eval()


@pytest.fixture(scope="module")
def tiny():
    split = LeaveOneOut.from_data(make_synthetic(n_users=N_USERS, n_items=N_ITEMS, avg_len=12, n_attributes=5,
                                                 n_topics=3, seed=1))
    return split, TrainingSequences(*split.train_sequences(), split.n_items)


@pytest.mark.parametrize("loss", FINETUNE_LOSSES)
def test_shapes_and_every_loss(loss, tiny):
    _, seqs = tiny
    m = make(loss)
    assert m.score_all(HIST, USERS).shape == (3, N_ITEMS + 1)
    assert m.score(HIST, CANDS, USERS).shape == (3, 3)
    assert m.score_all(HIST[:, -2:], USERS).shape == (3, N_ITEMS + 1)  # histories shorter than L are padded
    batch = m.training_batch(seqs, torch.arange(N_USERS), 20, torch.Generator().manual_seed(0))
    assert ("sampled" in batch) == (loss == "sampled-softmax")
    value = m.train().loss(batch)
    assert value.dim() == 0 and torch.isfinite(value)


def test_score_equals_score_all_gathered():
    m = make()
    torch.testing.assert_close(m.score(HIST, CANDS, USERS), m.score_all(HIST, USERS).gather(1, CANDS))
    torch.testing.assert_close(m.score(HIST, CANDS), m.score_all(HIST).gather(1, CANDS))


def test_state_dict_round_trip_gives_identical_scores():
    m = make(seed=0)
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    other = make(seed=1)
    assert not torch.equal(other.score_all(HIST, USERS), m.score_all(HIST, USERS))
    other.load_state_dict(torch.load(io.BytesIO(buf.getvalue())))
    assert torch.equal(other.score_all(HIST, USERS), m.score_all(HIST, USERS))


def test_only_the_last_L_items_matter():
    m = make()  # L = 5
    older = HIST.clone()
    older[:, :3] = torch.tensor([20, 21, 22])  # items older than the last 5 (or padding) change
    torch.testing.assert_close(m.score_all(older, USERS), m.score_all(HIST, USERS))
    newer = HIST.clone()
    newer[:, 3] = 29  # the oldest of the last 5 changes
    assert not torch.allclose(m.score_all(newer, USERS), m.score_all(HIST, USERS))
    # width does not matter: left padding up to L is the same input
    torch.testing.assert_close(m.score_all(HIST[:, -3:], USERS), m.score_all(torch.nn.functional.pad(HIST[:, -3:], (4, 0)), USERS))


def test_users_matter_and_unseen_users_get_a_zero_embedding():
    m = make()
    with torch.no_grad():
        m.b2.weight.normal_()
    assert not torch.allclose(m.score_all(HIST, USERS), m.score_all(HIST, torch.tensor([1, 2, 3])))
    unseen = m.score_all(HIST, torch.tensor([N_USERS, N_USERS + 5, 10**6]))
    torch.testing.assert_close(unseen, m.score_all(HIST, None))
    z = m(HIST, None)
    assert (z[:, 8:] == 0).all()
    torch.testing.assert_close(unseen, z @ m.W2.weight.T + m.b2.weight.T)


@pytest.mark.parametrize("max_len", [4, 50])
def test_training_windows_are_the_L_items_before_T_targets(tiny, max_len):
    split, seqs = tiny
    m = make()  # L = 5, T = 3
    users = torch.tensor([3, 0, 7])
    b = m.training_batch(seqs, users, max_len, torch.Generator().manual_seed(0))
    expected = []
    for u in users.tolist():
        x = split.data.sequence(u)[:-2].tolist()  # training items only
        n = len(x)
        for j in range(max(1, n - max_len), max(n - 3, max(1, n - max_len)) + 1):
            inputs = ([0] * 5 + x[:j])[-5:]
            targets = (x[j : j + 3] + [0, 0, 0])[:3]
            expected.append((u, inputs, targets))
    got = list(zip(b["users"].tolist(), b["inputs"].tolist(), b["targets"].tolist()))
    assert got == expected
    real = b["targets"] != 0
    neg = b["negatives"]
    assert (neg[~real] == 0).all() and (neg[real] >= 1).all() and (neg[real] <= N_ITEMS).all()
    assert not seqs.seen.contains(b["users"], neg)[real].any()  # negatives are items the user never trained on


def test_a_training_step_changes_the_parameters(tiny):
    _, seqs = tiny
    m = make().train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    m.loss(m.training_batch(seqs, torch.arange(N_USERS), 20, torch.Generator().manual_seed(0))).backward()
    opt.step()
    changed = {k for k, v in m.state_dict().items() if not torch.equal(v, before[k])}
    assert {"E.weight", "P.weight", "conv_v.weight", "conv_h.0.weight", "conv_h.4.weight", "fc1.weight",
            "W2.weight", "b2.weight"} <= changed


def test_unknown_loss():
    with pytest.raises(ValueError):
        Caser(5, 3, loss="hinge")


def test_learns_the_planted_pattern_far_better_than_popularity(tmp_path):
    split = LeaveOneOut.from_data(make_synthetic(n_users=400, n_items=120, avg_len=12, n_attributes=24, n_topics=8, seed=0))

    def valid_ndcg(model):
        return evaluate(model, split, "valid", EvalConfig(protocol="full"), 15, None)["full"].metrics["NDCG@10"]

    torch.manual_seed(0)
    model = caser.build(split, d=32, max_len=15)
    cfg = FinetuneConfig(epochs=10, batch_size=128, lr=1e-2, patience=100)
    finetune(model, split, cfg, 15, seed=0, validate=lambda m: {"NDCG@10": valid_ndcg(m)}, out_dir=tmp_path,
             progress=False, log=lambda *a: None)
    pop = valid_ndcg(PopRec(split.n_items, split.train_counts()))
    ndcg = valid_ndcg(model)
    assert ndcg > 1.5 * pop and ndcg > 0.08, (ndcg, pop)


def test_a_short_user_s_window_targets_stop_at_its_last_training_item():
    # user 0 has 2 training items (fewer than T + 1 = 4): its window's targets must not run into user 1's items
    seqs = TrainingSequences(np.array([0, 2, 6]), np.array([1, 2, 3, 4, 5, 6]), 6)
    m = Caser(6, 2, d=8, L=2, T=3, n_h=2, n_v=1).eval()
    b = m.training_batch(seqs, torch.tensor([0, 1]), 50, torch.Generator().manual_seed(0))
    assert b["targets"].tolist() == [[2, 0, 0], [4, 5, 6]]
    assert b["inputs"].tolist() == [[0, 1], [0, 3]]
