"""FM and AutoInt: shapes, score/score_all agreement, chunking, the FM identity against Eq. 1, save/load,
training uses history prefixes only, training steps, attributes, learning a planted pattern."""

import io

import pytest
import torch

from s3rec.config import EvalConfig
from s3rec.data.dataset import csr_from_lists
from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.models import autoint, fm
from s3rec.models.autoint import AutoInt
from s3rec.models.fm import FM
from s3rec.models.pop import PopRec
from s3rec.pipeline import evaluate
from s3rec.training.batches import TrainingSequences
from s3rec.training.finetune import FinetuneConfig, finetune

N_ITEMS, N_USERS, N_ATTRS, MAX_LEN = 12, 4, 5, 6
# item i (1..12) has attributes ATTRS[i - 1]; item 4 has none
ATTRS = [[1], [2, 3], [1, 4, 5], [], [5], [2], [3, 4], [1, 2], [4], [5, 1], [3], [2, 5]]
HIST = torch.tensor([[0, 0, 1, 2, 3, 4], [5, 3, 7, 3, 3, 10], [0, 0, 0, 0, 0, 11]])  # row 1 repeats item 3
USERS = torch.tensor([2, 0, 3])
CANDS = torch.tensor([[1, 5, 12], [3, 3, 9], [2, 7, 4]])


def csr(lists=ATTRS):
    offsets, values = csr_from_lists(lists)
    return torch.from_numpy(offsets), torch.from_numpy(values)


def make(name, lists=ATTRS, seed=0, **kw):
    torch.manual_seed(seed)
    if name == "fm":
        model = FM(N_ITEMS, N_USERS, N_ATTRS, *csr(lists), k=4, max_len=MAX_LEN, **kw)
        with torch.no_grad():  # the FM's linear weights start at 0; make every term count
            for p in model.parameters():
                p.normal_(0, 0.3)
    else:
        model = AutoInt(N_ITEMS, N_USERS, N_ATTRS, *csr(lists), d_field=4, n_layers=3, n_heads=2, d_head=3,
                        max_len=MAX_LEN, **kw)
    return model.eval()


MODELS = ["fm", "autoint"]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("users", [USERS, None])
def test_shapes(name, users):
    model = make(name)
    assert model.score_all(HIST, users).shape == (3, N_ITEMS + 1)
    assert model.score(HIST, CANDS, users).shape == (3, 3)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("users", [USERS, None])
def test_score_equals_score_all_for_the_same_pairs(name, users):
    model = make(name)
    torch.testing.assert_close(model.score(HIST, CANDS, users), model.score_all(HIST, users).gather(1, CANDS))
    every = torch.arange(N_ITEMS + 1).expand(3, -1)
    torch.testing.assert_close(model.score(HIST, every, users), model.score_all(HIST, users))


def naive_fm(model: FM, history: list[int], user: int | None, item: int) -> torch.Tensor:
    """Eq. 1 written out: an explicit feature vector x and a double sum over feature pairs."""
    fields = ["user", "hist", "item", "attr"]
    sizes = [model.V[f].size(0) for f in fields]
    base = dict(zip(fields, [sum(sizes[:i]) for i in range(4)]))
    V = torch.cat([model.V[f] for f in fields])
    w = torch.cat([model.w[f] for f in fields])
    x = torch.zeros(sum(sizes), dtype=V.dtype)
    if user is not None:
        x[base["user"] + user] = 1
    h = [i for i in history[-model.max_len:] if i]
    for i in h:
        x[base["hist"] + i] += 1 / len(h)
    x[base["item"] + item] = 1
    for a in ATTRS[item - 1]:
        x[base["attr"] + a] += 1 / len(ATTRS[item - 1])
    y = model.w0 + w @ x
    nz = torch.nonzero(x).squeeze(1).tolist()
    for a, j in enumerate(nz):
        for l in nz[a + 1:]:
            y = y + (V[j] @ V[l]) * x[j] * x[l]
    return y


@pytest.mark.parametrize("with_users", [True, False])
def test_fm_score_all_equals_equation_1(with_users):
    model = make("fm").double()
    users = USERS if with_users else None
    scores = model.score_all(HIST, users)
    for b in range(3):
        for item in range(1, N_ITEMS + 1):
            u = int(USERS[b]) if with_users else None
            expected = naive_fm(model, HIST[b].tolist(), u, item)
            torch.testing.assert_close(scores[b, item], expected, rtol=1e-10, atol=1e-10)


def test_fm_without_history_ignores_it():
    model = make("fm", use_history=False)
    other = HIST.flip(1)
    torch.testing.assert_close(model.score_all(HIST, USERS), model.score_all(other, USERS))


def test_autoint_chunked_full_ranking_equals_unchunked():
    model = make("autoint")
    whole = model.score_all(HIST, USERS, chunk_size=N_ITEMS + 1)
    for chunk in (1, 4, 5, 100):  # equal up to float summation order (matmul blocking depends on the size)
        torch.testing.assert_close(model.score_all(HIST, USERS, chunk_size=chunk), whole)
    model.chunk_size = 3
    torch.testing.assert_close(model.score_all(HIST, USERS), whole)


def test_autoint_default_chunks_follow_the_device_and_change_no_score(monkeypatch):
    from s3rec.models import autoint

    assert autoint.pairs_per_chunk(torch.device("cpu")) < autoint.pairs_per_chunk(torch.device("cuda"))
    model = make("autoint")
    candidates = torch.arange(1, N_ITEMS + 1).repeat(HIST.size(0), 1)
    whole, sampled = model.score_all(HIST, USERS, chunk_size=N_ITEMS + 1), model.score(HIST, candidates, USERS)
    monkeypatch.setitem(autoint.PAIRS_PER_CHUNK, "cpu", 5)  # several chunks per batch, a ragged last one
    assert candidates.numel() % 5
    torch.testing.assert_close(model.score_all(HIST, USERS), whole)
    torch.testing.assert_close(model.score(HIST, candidates, USERS), sampled)
    torch.testing.assert_close(sampled, whole[:, 1:])


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_round_trip(name):
    model = make(name, seed=0)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    assert not any(k.startswith("attrs") for k in model.state_dict())  # attributes come from the data
    other = make(name, seed=1)
    assert not torch.allclose(other.score_all(HIST, USERS), model.score_all(HIST, USERS))
    buf.seek(0)
    other.load_state_dict(torch.load(buf))
    torch.testing.assert_close(other.score_all(HIST, USERS), model.score_all(HIST, USERS), rtol=0, atol=0)


@pytest.mark.parametrize("name", MODELS)
def test_only_the_last_max_len_items_matter(name):
    model = make(name)
    long = torch.cat([torch.tensor([[1, 2], [3, 4], [0, 0]]), HIST], dim=1)  # (3, MAX_LEN + 2)
    older = long.clone()
    older[:, :2] = torch.tensor([[9, 9], [8, 1], [5, 6]])
    torch.testing.assert_close(model.score_all(long, USERS), model.score_all(older, USERS), rtol=0, atol=0)
    torch.testing.assert_close(model.score_all(long, USERS), model.score_all(HIST, USERS), rtol=0, atol=0)
    newer = long.clone()
    newer[:, -1] = 9
    assert not torch.allclose(model.score_all(newer, USERS), model.score_all(long, USERS))


@pytest.mark.parametrize("name", MODELS)
def test_scores_change_when_only_attributes_change(name):
    model = make(name)
    same = make(name, seed=5)
    same.load_state_dict(model.state_dict())
    torch.testing.assert_close(same.score_all(HIST, USERS), model.score_all(HIST, USERS), rtol=0, atol=0)
    changed = make(name, lists=[[(a % N_ATTRS) + 1 for a in attrs] for attrs in ATTRS], seed=5)
    changed.load_state_dict(model.state_dict())
    diff = changed.score_all(HIST, USERS) != model.score_all(HIST, USERS)
    assert diff[:, 1:].any(1).all()  # every user's ranking changes
    assert not diff[:, 4].any()  # item 4 has no attributes either way


@pytest.mark.parametrize("name", MODELS)
def test_an_items_attributes_change_only_its_own_scores(name):
    model = make(name)
    lists = [list(a) for a in ATTRS]
    lists[0] = [2, 3, 4]  # item 1
    other = make(name, lists=lists, seed=5)
    other.load_state_dict(model.state_dict())
    a, b = model.score_all(HIST, USERS), other.score_all(HIST, USERS)
    torch.testing.assert_close(a[:, 2:], b[:, 2:], rtol=0, atol=0)
    assert (a[:, 1] != b[:, 1]).all()


@pytest.fixture(scope="module")
def tiny_split():
    return LeaveOneOut.from_data(make_synthetic(n_users=40, n_items=30, avg_len=8, n_attributes=12, n_topics=5, seed=3))


def build(name, split, **kw):
    torch.manual_seed(0)
    return (fm.build if name == "fm" else autoint.build)(split, d=8, max_len=MAX_LEN, **kw)


@pytest.mark.parametrize("name", MODELS)
def test_training_scores_each_target_from_its_history_prefix(name, tiny_split):
    model = build(name, tiny_split).eval()
    seqs = TrainingSequences(*tiny_split.train_sequences(), tiny_split.n_items)
    users = torch.arange(12)
    batch = model.training_batch(seqs, users, MAX_LEN, torch.Generator().manual_seed(0))
    assert torch.equal(batch["users"], users)
    s_pos, s_neg = model.pair_scores(batch)
    w = batch["inputs"].size(1)
    expected_pos, expected_neg = [], []
    for b, t in torch.nonzero(batch["targets"] != 0).tolist():  # row-major, the order of boolean indexing
        prefix = torch.cat([torch.zeros(w - 1 - t, dtype=torch.long), batch["inputs"][b, : t + 1]]).unsqueeze(0)
        cands = torch.tensor([[batch["targets"][b, t], batch["negatives"][b, t]]])
        s = model.score(prefix, cands, users[b : b + 1])[0]
        expected_pos.append(s[0])
        expected_neg.append(s[1])
    torch.testing.assert_close(s_pos, torch.stack(expected_pos), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(s_neg, torch.stack(expected_neg), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,loss,frozen", [
    ("fm", "bce", set()),
    ("fm", "bpr", {"w0", "w.user", "w.hist"}),  # user-side constants cancel in s+ - s-
    ("autoint", "bce", set()),
    ("autoint", "bpr", {"out.bias"}),  # cancels too, up to float noise (which Adam may turn into a step)
])
def test_training_step_changes_the_parameters_it_should(name, loss, frozen, tiny_split):
    model = build(name, tiny_split, loss=loss)
    if name == "fm":
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.1)
    model.train()
    seqs = TrainingSequences(*tiny_split.train_sequences(), tiny_split.n_items)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.loss(model.training_batch(seqs, torch.arange(40), MAX_LEN, torch.Generator().manual_seed(0))).backward()
    opt.step()
    after = dict(model.named_parameters())
    unchanged = {k for k in before if torch.equal(before[k], after[k])}
    assert unchanged <= frozen and (name == "autoint" or unchanged == frozen), (unchanged, frozen)
    hist_key, item_key = ("V.hist", "V.item") if name == "fm" else ("E_H.weight", "E_I.weight")
    assert torch.equal(after[hist_key][0], before[hist_key][0])  # history padding
    assert torch.equal(after[item_key][0], before[item_key][0])  # item 0 is never a target or negative


@pytest.mark.parametrize("name", MODELS)
def test_unknown_loss(name):
    with pytest.raises(ValueError):
        make(name, loss="ce")


@pytest.fixture(scope="module")
def synthetic_split():
    return LeaveOneOut.from_data(make_synthetic(n_users=300, n_items=100, avg_len=12, n_attributes=30, n_topics=10, seed=0))


@pytest.mark.parametrize("name,epochs,lr", [("fm", 3, 5e-3), ("autoint", 4, 1e-2)])
def test_learns_planted_pattern(name, epochs, lr, synthetic_split, tmp_path):
    split, max_len = synthetic_split, 20
    full = EvalConfig(protocol="full")

    def ndcg(m):
        return evaluate(m, split, "valid", full, max_len, None)["full"].metrics["NDCG@10"]

    torch.manual_seed(0)
    model = (fm.build if name == "fm" else autoint.build)(split, d=32, max_len=max_len)
    cfg = FinetuneConfig(epochs=epochs, batch_size=128, lr=lr, patience=100)
    finetune(model, split, cfg, max_len, seed=0, validate=lambda m: {"NDCG@10": ndcg(m)}, out_dir=tmp_path,
             progress=False, log=lambda *a: None)
    pop = ndcg(PopRec(split.n_items, split.train_counts()))
    assert ndcg(model) > 2 * pop, (ndcg(model), pop)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("loss", ["bpr", "bce"])
def test_a_batch_without_targets_has_zero_loss_not_nan(name, loss):
    """Users with one training item give a batch with no target: the loss is 0 (a mean of nothing is NaN)."""
    model = make(name, loss=loss).train()
    empty = torch.zeros(2, 1, dtype=torch.long)
    batch = {"inputs": empty, "targets": empty, "negatives": empty, "users": torch.tensor([0, 1])}
    value = model.loss(batch)
    assert value.item() == 0.0
    value.backward()  # still a graph: a training step on it runs
    one = {**batch, "targets": torch.tensor([[3], [0]]), "negatives": torch.tensor([[5], [0]])}
    assert model.loss(one).item() > 0  # one real target is counted
