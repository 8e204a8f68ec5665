"""HGN: contract shapes, the paper's equations, only the last L items matter, training windows, learning."""

import pytest
import torch
import torch.nn.functional as F

from s3rec.config import EvalConfig
from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.models.hgn import HGN, build
from s3rec.models.pop import PopRec
from s3rec.pipeline import evaluate
from s3rec.training.batches import TrainingSequences
from s3rec.training.finetune import FinetuneConfig, finetune

N_ITEMS, N_USERS, D = 30, 4, 8
HIST = torch.tensor([[0, 0, 0, 0, 3, 4, 5], [1, 2, 3, 4, 5, 6, 7], [0, 0, 0, 0, 0, 0, 9]])
USERS = torch.tensor([0, 3, 1])


def tiny(seed=0):
    torch.manual_seed(seed)
    m = HGN(N_ITEMS, N_USERS, d=D)
    with torch.no_grad():  # a non-zero item bias, so that it is exercised
        m.b.weight[1:].normal_()
    return m.eval()


@pytest.fixture(scope="module")
def split():
    return LeaveOneOut.from_data(make_synthetic(n_users=500, n_items=150, avg_len=14, n_attributes=30, n_topics=10, seed=0))


@pytest.fixture(scope="module")
def seqs(split):
    return TrainingSequences(*split.train_sequences(), split.n_items)


def test_shapes_and_score_is_gathered_score_all():
    m = tiny()
    cand = torch.tensor([[1, 2, 3], [30, 7, 7], [5, 9, 1]])
    all_scores = m.score_all(HIST, USERS)
    assert all_scores.shape == (3, N_ITEMS + 1)
    torch.testing.assert_close(m.score(HIST, cand, USERS), all_scores.gather(1, cand))
    torch.testing.assert_close(m.score(HIST, cand), m.score_all(HIST).gather(1, cand))
    batch = {"users": USERS, "inputs": HIST[:, -5:], "targets": torch.tensor([[6, 7, 0], [8, 9, 10], [1, 0, 0]]),
             "negatives": torch.tensor([[11, 12, 0], [13, 14, 15], [16, 0, 0]])}
    loss = m.loss(batch)
    assert loss.dim() == 0 and torch.isfinite(loss)


def test_scores_follow_the_paper_equations():
    m = tiny()
    u = m.U.weight[USERS]  # (B, d)
    S = m.E.weight[HIST[:, -5:]]  # (B, L, d)
    S_F = S * torch.sigmoid(S @ m.W_g1.weight.T + m.W_g1.bias + (u @ m.W_g2.weight.T).unsqueeze(1))
    g = torch.sigmoid((S_F @ m.w_g3).squeeze(-1) + u @ m.W_g4) * (HIST[:, -5:] != 0)
    s = (S_F * g.unsqueeze(-1)).sum(1) / g.sum(1, keepdim=True)
    Q, b = m.Q.weight, m.b.weight[:, 0]
    expected = u @ Q.T + s @ Q.T + S.sum(1) @ Q.T + b
    torch.testing.assert_close(m.score_all(HIST, USERS), expected)


def test_loss_is_bpr_over_real_targets():
    m = tiny()
    batch = {"users": USERS[:2], "inputs": HIST[:2, -5:], "targets": torch.tensor([[6, 7, 0], [8, 9, 10]]),
             "negatives": torch.tensor([[11, 12, 0], [13, 14, 15]])}
    pos = m.score(batch["inputs"], batch["targets"], batch["users"])
    neg = m.score(batch["inputs"], batch["negatives"], batch["users"])
    real = batch["targets"] != 0
    torch.testing.assert_close(m.loss(batch), -F.logsigmoid(pos - neg)[real].mean())


def test_build_and_defaults(split):
    m = build(split)
    assert (m.d, m.L, m.T, m.n_items, m.n_users) == (64, 5, 3, split.n_items, split.n_users)
    assert HGN(10, 2).d == 50  # the paper's d


def test_state_dict_round_trip():
    a, b = tiny(0), tiny(1)
    assert not torch.allclose(a.score_all(HIST, USERS), b.score_all(HIST, USERS))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a.score_all(HIST, USERS), b.score_all(HIST, USERS))


def test_only_the_last_L_items_matter():
    m = tiny()
    base = m.score_all(HIST, USERS)
    older = HIST.clone()
    older[:, :2] = torch.tensor([17, 18])  # items older than the last L = 5
    torch.testing.assert_close(m.score_all(older, USERS), base)
    newest = HIST.clone()
    newest[:, -1] = 17
    assert not torch.allclose(m.score_all(newest, USERS), base)
    oldest_kept = HIST.clone()
    oldest_kept[1, -5] = 17
    assert not torch.allclose(m.score_all(oldest_kept, USERS)[1], base[1])
    # width and left padding do not matter: a 3-wide history equals the same items padded to 7
    torch.testing.assert_close(m.score_all(HIST[:, -3:], USERS)[[0, 2]], base[[0, 2]])


def test_unseen_users_get_a_zero_user_embedding():
    m = tiny()
    none = m.score_all(HIST)
    torch.testing.assert_close(m.score_all(HIST, torch.tensor([N_USERS, N_USERS + 5, 99])), none)
    with torch.no_grad():
        m.U.weight.zero_()
    torch.testing.assert_close(m.score_all(HIST, USERS), none)


def test_training_windows_never_see_the_future(split, seqs):
    m = HGN(split.n_items, split.n_users, d=8)
    users = torch.tensor([3, 0, 7])
    max_len = 9
    batch = m.training_batch(seqs, users, max_len, torch.Generator().manual_seed(0))
    expected_inputs, expected_targets, expected_users = [], [], []
    for u in users.tolist():  # reference: every window of the user's last max_len training items
        s = seqs.items[seqs.starts[u]:seqs.ends[u]].tolist()[-max_len:]
        for t in range(1, len(s)):
            inp = s[max(0, t - 5):t]
            tgt = s[t:t + 3]
            expected_inputs.append([0] * (5 - len(inp)) + inp)
            expected_targets.append(tgt + [0] * (3 - len(tgt)))
            expected_users.append(u)
    assert batch["inputs"].tolist() == expected_inputs
    assert batch["targets"].tolist() == expected_targets
    assert batch["users"].tolist() == expected_users
    neg, real = batch["negatives"], batch["targets"] != 0
    assert torch.equal(neg == 0, ~real)
    assert not seqs.seen.contains(batch["users"], neg)[real].any()  # negatives are never the user's items


def test_training_step_changes_parameters(split, seqs):
    torch.manual_seed(0)
    m = HGN(split.n_items, split.n_users, d=8)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    m.loss(m.training_batch(seqs, torch.arange(32), 20, torch.Generator().manual_seed(0))).backward()
    opt.step()
    for k, v in m.state_dict().items():
        assert not torch.equal(before[k], v), k


def test_learns_planted_pattern(split, tmp_path):
    full = EvalConfig(protocol="full")

    def ndcg(model):
        return evaluate(model, split, "valid", full, 20, None)["full"].metrics["NDCG@10"]

    pop = ndcg(PopRec(split.n_items, split.train_counts()))
    torch.manual_seed(0)
    m = HGN(split.n_items, split.n_users, d=32)
    cfg = FinetuneConfig(epochs=5, batch_size=64, lr=5e-3, patience=100)
    finetune(m, split, cfg, 20, seed=0, validate=lambda mm: {"NDCG@10": ndcg(mm)}, out_dir=tmp_path,
             progress=False, log=lambda *a: None)
    assert ndcg(m) > 3 * pop, (ndcg(m), pop)
