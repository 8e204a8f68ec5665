"""GRU4Rec and GRU4RecF: the contract's shapes, padding and causality, attributes, shared losses, learning."""

import io

import pytest
import torch

from s3rec.config import EvalConfig
from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.models import gru4rec, gru4recf
from s3rec.models.encoder import EncoderConfig
from s3rec.models.gru4rec import GRU4Rec
from s3rec.models.gru4recf import GRU4RecF
from s3rec.models.next_item_loss import FINETUNE_LOSSES, next_item_loss
from s3rec.models.pop import PopRec
from s3rec.models.sasrec import SASRec
from s3rec.pipeline import evaluate
from s3rec.training.batches import TrainingSequences
from s3rec.training.finetune import FinetuneConfig, finetune

N_ITEMS, N_ATTR = 20, 6
# item i has attributes {i % 3 + 1} and, for even i, also {4 + i % 3}
ATTRS = [[i % 3 + 1] + ([4 + i % 3] if i % 2 == 0 else []) for i in range(1, N_ITEMS + 1)]
HIST = torch.tensor([[0, 0, 0, 3, 7, 9], [1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 11]])
CANDS = torch.tensor([[1, 2, 20], [9, 9, 4], [5, 6, 7]])


def csr(lists):
    offsets = torch.tensor([0] + [len(x) for x in lists]).cumsum(0)
    return offsets, torch.tensor([a for x in lists for a in x])


def make(kind, loss="bce", seed=0, attrs=ATTRS):
    torch.manual_seed(seed)
    if kind == "gru4rec":
        m = GRU4Rec(N_ITEMS, d=8, loss=loss, n_negatives=5)
    else:
        m = GRU4RecF(N_ITEMS, N_ATTR, *csr(attrs), d=8, loss=loss, n_negatives=5)
    with torch.no_grad():  # non-zero biases: a GRU that read padding would change its state
        for name, p in m.gru.named_parameters():
            if name.startswith("bias"):
                p.normal_(0, 0.5)
    return m.eval()


def tiny_batch(loss):
    split = LeaveOneOut.from_data(make_synthetic(n_users=30, n_items=N_ITEMS, avg_len=8, n_attributes=N_ATTR,
                                                 n_topics=3, seed=1))
    seqs = TrainingSequences(*split.train_sequences(), split.n_items)
    m = make("gru4rec", loss)
    return m.training_batch(seqs, torch.arange(8), 6, torch.Generator().manual_seed(0))


KINDS = ("gru4rec", "gru4recf")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("loss", FINETUNE_LOSSES)
def test_shapes_and_every_loss(kind, loss):
    m = make(kind, loss)
    assert m.score_all(HIST).shape == (3, N_ITEMS + 1)
    assert m.score(HIST, CANDS).shape == (3, 3)
    value = m.train().loss(tiny_batch(loss))
    assert value.dim() == 0 and torch.isfinite(value)


@pytest.mark.parametrize("kind", KINDS)
def test_score_equals_score_all_gathered_and_users_are_ignored(kind):
    m = make(kind)
    torch.testing.assert_close(m.score(HIST, CANDS), m.score_all(HIST).gather(1, CANDS))
    torch.testing.assert_close(m.score_all(HIST, torch.tensor([0, 1, 2])), m.score_all(HIST))


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_round_trip_gives_identical_scores(kind):
    m = make(kind, seed=0)
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    other = make(kind, seed=1)
    assert not torch.equal(other.score_all(HIST), m.score_all(HIST))
    other.load_state_dict(torch.load(io.BytesIO(buf.getvalue())))
    assert torch.equal(other.score_all(HIST), m.score_all(HIST))


@pytest.mark.parametrize("kind", KINDS)
def test_padding_is_never_read(kind):
    m = make(kind)
    items = [3, 7, 9, 2]
    # reference: the GRU run on the real items alone
    ref, _ = m.gru(m.embed(torch.tensor([items])))
    for pad in (0, 1, 5):
        h = m(torch.tensor([[0] * pad + items]))
        torch.testing.assert_close(h[:, pad:], ref)
        assert (h[:, :pad] == 0).all()
    # rows with different padding in one batch match their own runs; trimming changes nothing
    both = m(torch.tensor([[0, 0, 3, 7, 9, 2], [5, 6, 1, 3, 7, 9]]))
    torch.testing.assert_close(both[0, 2:], ref[0])
    torch.testing.assert_close(both[1], m(torch.tensor([[5, 6, 1, 3, 7, 9]]))[0])
    torch.testing.assert_close(m.score_all(torch.tensor([[0, 0, 0, 3, 7, 9, 2]])), ref[:, -1] @ m.E.weight.T)


@pytest.mark.parametrize("kind", KINDS)
def test_outputs_never_see_later_items(kind):
    m = make(kind)
    a = torch.tensor([[0, 0, 1, 2, 3, 4, 5, 6]])
    b = a.clone()
    b[0, 5:] = torch.tensor([11, 12, 13])
    ha, hb = m(a), m(b)
    torch.testing.assert_close(ha[:, :5], hb[:, :5])
    assert not torch.allclose(ha[:, 5:], hb[:, 5:])
    # the score from the prefix up to t equals the output at t of the longer sequence
    torch.testing.assert_close(m.score_all(a[:, :5]), ha[:, 4] @ m.E.weight.T)


@pytest.mark.parametrize("kind", KINDS)
def test_a_training_step_changes_the_parameters(kind):
    m = make(kind).train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    m.loss(tiny_batch("bce")).backward()
    opt.step()
    changed = {k for k, v in m.state_dict().items() if not torch.equal(v, before[k])}
    assert {"E.weight", "gru.weight_ih_l0", "gru.weight_hh_l0"} <= changed
    if kind == "gru4recf":
        assert "M_A.weight" in changed


def test_gru_input_adds_the_mean_attribute_embedding():
    m = make("gru4recf")
    items = torch.tensor([[0, 1, 2, 7], [20, 7, 1, 0]])
    a = m.embed(items) - m.E(items)  # (2, 4, 8) the attribute part of each input
    assert (a[0, 0] == 0).all() and (a[1, 3] == 0).all()  # padding
    for (r, c), i in zip(((0, 1), (0, 2), (0, 3), (1, 0), (1, 1)), (1, 2, 7, 20, 7)):
        torch.testing.assert_close(a[r, c], m.M_A.weight[ATTRS[i - 1]].mean(0))


def test_gru4recf_scores_change_when_only_attributes_change():
    m = make("gru4recf")
    shuffled = ATTRS[::-1]  # same vocabulary, items get other attributes
    other = make("gru4recf", seed=5, attrs=shuffled)
    other.load_state_dict(m.state_dict())
    assert not torch.allclose(m.score_all(HIST), other.score_all(HIST))
    same = make("gru4recf", seed=5)
    same.load_state_dict(m.state_dict())
    assert torch.equal(m.score_all(HIST), same.score_all(HIST))


@pytest.mark.parametrize("loss", FINETUNE_LOSSES)
def test_next_item_loss_equals_sasrec_loss(loss):
    torch.manual_seed(0)
    m = SASRec(N_ITEMS, EncoderConfig(d=8, n_heads=2, n_layers=1, max_len=6), loss=loss).eval()
    batch = tiny_batch(loss)
    real = batch["targets"] != 0
    F_t = m.encoder(batch["inputs"], causal=True)[real]
    got = next_item_loss(F_t, batch["targets"][real], batch["negatives"][real], m.item_table(), loss, batch.get("sampled"))
    torch.testing.assert_close(got, m.loss(batch))


def test_next_item_loss_rejects_unknown_names_and_handles_empty_batches():
    with pytest.raises(ValueError):
        GRU4Rec(5, loss="hinge")
    F_t = torch.zeros(0, 4, requires_grad=True)
    out = next_item_loss(F_t, torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.randn(6, 4), "bce")
    assert out.item() == 0.0
    out.backward()


@pytest.fixture(scope="module")
def split():
    return LeaveOneOut.from_data(make_synthetic(n_users=400, n_items=120, avg_len=12, n_attributes=24, n_topics=8, seed=0))


def valid_ndcg(model, split, max_len=15):
    return evaluate(model, split, "valid", EvalConfig(protocol="full"), max_len, None)["full"].metrics["NDCG@10"]


@pytest.mark.parametrize("module", [gru4rec, gru4recf])
def test_learns_the_planted_pattern_far_better_than_popularity(module, split, tmp_path):
    torch.manual_seed(0)
    model = module.build(split, d=32, max_len=15)
    cfg = FinetuneConfig(epochs=3, batch_size=64, lr=2e-3, patience=100)
    finetune(model, split, cfg, 15, seed=0, validate=lambda m: {"NDCG@10": valid_ndcg(m, split)}, out_dir=tmp_path,
             progress=False, log=lambda *a: None)
    pop = valid_ndcg(PopRec(split.n_items, split.train_counts()), split)
    ndcg = valid_ndcg(model, split)
    assert ndcg > 1.5 * pop and ndcg > 0.08, (ndcg, pop)
