"""SASRecF and FDSA: shapes, scoring paths, save/load, causality, training, attributes, learning a planted pattern."""

import io
import math

import pytest
import torch

from s3rec.config import EvalConfig
from s3rec.data.dataset import csr_from_lists
from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.models import fdsa, sasrecf
from s3rec.models.encoder import EncoderConfig
from s3rec.models.fdsa import FDSA
from s3rec.models.pop import PopRec
from s3rec.models.attributes import ItemAttributes
from s3rec.models.sasrec import SASRec
from s3rec.models.sasrecf import SASRecF
from s3rec.pipeline import evaluate
from s3rec.training.batches import TrainingSequences
from s3rec.training.finetune import FinetuneConfig, finetune

MODELS = {"sasrecf": SASRecF, "fdsa": FDSA}
BUILDS = {"sasrecf": sasrecf.build, "fdsa": fdsa.build}
ENC = EncoderConfig(d=8, n_layers=2, n_heads=2, max_len=6, dropout=0.3, attn_dropout=0.3)
N_ITEMS, N_ATTRS = 12, 5
# item i (1..12) has attributes ATTRS[i - 1]; item 4 has none
ATTRS = [[1], [2, 3], [1, 4, 5], [], [5], [2], [3, 4], [1, 2], [4], [5, 1], [3], [2, 5]]
HIST = torch.tensor([[0, 0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10], [0, 0, 0, 0, 0, 11]])
CANDS = torch.tensor([[1, 5, 12], [3, 3, 9], [2, 7, 4]])


def csr(lists=ATTRS):
    offsets, values = csr_from_lists(lists)
    return torch.from_numpy(offsets), torch.from_numpy(values)


def make(name, lists=ATTRS, seed=0, loss="bce"):
    torch.manual_seed(seed)
    model = MODELS[name](N_ITEMS, N_ATTRS, *csr(lists), ENC, loss=loss)
    return model.eval()


def tiny_batch():
    inputs = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    targets = torch.tensor([[0, 2, 3, 4], [5, 6, 7, 8]])
    negatives = torch.tensor([[0, 9, 10, 11], [12, 1, 2, 3]])
    return {"inputs": inputs, "targets": targets, "negatives": negatives, "sampled": torch.tensor([1, 5, 9])}


def test_item_attributes_mean_and_vanilla_attention_by_hand():
    table = torch.tensor([[9.0, 9.0], [1.0, 0.0], [0.0, 2.0], [4.0, 4.0], [1.0, 1.0], [3.0, -1.0]])  # row 0 never used
    attrs = ItemAttributes(3, *csr([[1, 2], [], [3, 4, 5]]))
    mean = attrs.mean(table)
    assert mean.shape == (5, 2)  # padding, items 1..3, [mask]
    torch.testing.assert_close(mean, torch.tensor([[0.0, 0.0], [0.5, 1.0], [0.0, 0.0], [8 / 3, 4 / 3], [0.0, 0.0]]))
    w = torch.nn.Linear(2, 1)
    with torch.no_grad():
        w.weight.copy_(torch.tensor([[1.0, 0.0]]))
        w.bias.fill_(7.0)  # the same for every attribute: cancels in the softmax
    att = attrs.attend(table, w)
    a = torch.softmax(torch.tensor([4.0, 1.0, 3.0]), 0)
    expected_3 = a[0] * table[3] + a[1] * table[4] + a[2] * table[5]
    e = math.exp(1) / (math.exp(1) + 1)
    torch.testing.assert_close(att[1], e * table[1] + (1 - e) * table[2])
    torch.testing.assert_close(att[3], expected_3)
    assert att[0].abs().sum() == 0 and att[2].abs().sum() == 0 and att[4].abs().sum() == 0


def test_pooling_a_batch_equals_pooling_the_catalogue_and_indexing():
    """mean_of / attend_of pool only a batch's distinct items: same values and gradients as the whole table."""
    torch.manual_seed(0)
    attrs = ItemAttributes(N_ITEMS, *csr())
    items = torch.tensor([[0, 0, 4, 7, 7, 13], [1, 12, 3, 3, 4, 9]])  # padding, no attributes, repeats, [mask] = 13
    table = torch.randn(N_ATTRS + 1, 8, requires_grad=True)
    w = torch.nn.Linear(8, 1)
    for batch_fn, full_fn in ((lambda: attrs.mean_of(table, items), lambda: attrs.mean(table)[items]),
                              (lambda: attrs.attend_of(table, w, items), lambda: attrs.attend(table, w)[items])):
        grads = []
        for fn in (batch_fn, full_fn):
            table.grad = None
            out = fn()
            (out * torch.arange(out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
            grads.append((out.detach(), table.grad.clone()))
        torch.testing.assert_close(grads[0][0], grads[1][0])
        torch.testing.assert_close(grads[0][1], grads[1][1])
    inverse, values, bag, first = attrs.bags(items)
    # distinct ids 0, 1, 3, 4, 7, 9, 12, 13; of these only 1, 3, 7, 9, 12 have attributes
    assert values.tolist() == [1, 1, 4, 5, 3, 4, 4, 2, 5]
    assert first.tolist() == [0, 0, 1, 4, 4, 6, 7, 9]
    assert bag.tolist() == [1, 2, 2, 2, 4, 4, 5, 6, 6] and inverse.tolist() == [[0, 0, 3, 4, 4, 7], [1, 6, 2, 2, 3, 5]]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("loss", ["bce", "bpr", "ce", "sampled-softmax"])
def test_shapes_and_losses(name, loss):
    model = make(name, loss=loss)
    assert model.score_all(HIST).shape == (3, N_ITEMS + 1)
    assert model.score(HIST, CANDS).shape == (3, 3)
    model.train()
    value = model.loss(tiny_batch())
    assert value.dim() == 0 and torch.isfinite(value)


@pytest.mark.parametrize("name", MODELS)
def test_score_equals_score_all_gathered(name):
    model = make(name)
    torch.testing.assert_close(model.score(HIST, CANDS), model.score_all(HIST).gather(1, CANDS))


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_round_trip(name):
    model = make(name, seed=0)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    assert not any(k.startswith("encoder.attrs") for k in model.state_dict())  # attributes come from the data
    other = make(name, seed=1)
    assert not torch.allclose(other.score_all(HIST), model.score_all(HIST))
    buf.seek(0)
    other.load_state_dict(torch.load(buf))
    torch.testing.assert_close(other.score_all(HIST), model.score_all(HIST), rtol=0, atol=0)


def test_fdsa_has_no_attention_bias_and_loads_checkpoints_that_had_one():
    model = make("fdsa", seed=0)
    assert model.encoder.W_f.bias is None  # a softmax ignores a shared shift: b_f could never learn
    old = {**model.state_dict(), "encoder.W_f.bias": torch.tensor([0.3])}  # written before it was removed
    other = make("fdsa", seed=1)
    other.load_state_dict(old)
    torch.testing.assert_close(other.score_all(HIST), model.score_all(HIST), rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="Unexpected"):
        other.load_state_dict({**old, "encoder.W_sf.extra": torch.zeros(1)})  # other unknown keys still fail


@pytest.mark.parametrize("name", MODELS)
def test_never_sees_the_future(name):
    model = make(name)
    a = torch.tensor([[0, 1, 2, 3, 4, 5]])
    b = a.clone()
    b[0, 4:] = torch.tensor([11, 12])  # other items (with other attributes) after position 3
    out_a, out_b = model.encoder(a, causal=True), model.encoder(b, causal=True)
    torch.testing.assert_close(out_a[:, :4], out_b[:, :4])
    assert not torch.allclose(out_a[:, 4:], out_b[:, 4:])
    # so the training loss of the targets up to position 3 ignores the inputs after it
    targets, negatives = torch.tensor([[0, 2, 3, 4, 0, 0]]), torch.tensor([[0, 7, 8, 9, 0, 0]])
    loss_a = model.loss({"inputs": a, "targets": targets, "negatives": negatives})
    torch.testing.assert_close(loss_a, model.loss({"inputs": b, "targets": targets, "negatives": negatives}))


@pytest.mark.parametrize("name", MODELS)
def test_trimming_left_padding_changes_nothing(name):
    model = make(name)
    full = torch.tensor([[0, 0, 0, 1, 2, 3], [0, 0, 0, 0, 7, 4]])
    for causal in (False, True):
        torch.testing.assert_close(model.encoder(full, causal)[:, 3:], model.encoder(full[:, 3:], causal))


@pytest.mark.parametrize("name", MODELS)
def test_scores_change_when_only_attributes_change(name):
    model = make(name)
    same = make(name, seed=5)
    same.load_state_dict(model.state_dict())
    torch.testing.assert_close(same.score_all(HIST), model.score_all(HIST), rtol=0, atol=0)
    changed = make(name, lists=[[(a % N_ATTRS) + 1 for a in attrs] for attrs in ATTRS], seed=5)
    changed.load_state_dict(model.state_dict())
    assert not torch.allclose(changed.score_all(HIST), model.score_all(HIST))


def test_sasrecf_starts_as_sasrec_plus_a_small_attribute_term():
    """W_F's item half starts as the identity: without the attribute half SASRecF is SASRec exactly."""
    model = make("sasrecf")
    d = ENC.d
    torch.testing.assert_close(model.encoder.W_F.weight[:, :d], torch.eye(d), rtol=0, atol=0)
    assert 0 < model.encoder.W_F.weight[:, d:].abs().max() < 0.2  # attributes enter, at the init scale
    plain = SASRec(N_ITEMS, ENC).eval()
    plain.load_state_dict(model.state_dict(), strict=False)  # M_I, P, LayerNorm, blocks
    with torch.no_grad():
        model.encoder.W_F.weight[:, d:].zero_()
    torch.testing.assert_close(model.score_all(HIST), plain.score_all(HIST))


def test_fdsa_starts_as_sasrec_plus_a_small_feature_term():
    """W_sf's item half starts as the identity: without the feature half FDSA is SASRec exactly."""
    model = make("fdsa")
    d = ENC.d
    torch.testing.assert_close(model.encoder.W_sf.weight[:, :d], torch.eye(d), rtol=0, atol=0)
    assert 0 < model.encoder.W_sf.weight[:, d:].abs().max() < 0.2
    plain = SASRec(N_ITEMS, ENC).eval()
    stream = {k.replace("encoder.item_stream.", "encoder."): v for k, v in model.state_dict().items()
              if k.startswith("encoder.item_stream.")}
    plain.load_state_dict(stream)
    with torch.no_grad():
        model.encoder.W_sf.weight[:, d:].zero_()
    torch.testing.assert_close(model.score_all(HIST), plain.score_all(HIST))


@pytest.fixture(scope="module")
def tiny_split():
    return LeaveOneOut.from_data(make_synthetic(n_users=40, n_items=30, avg_len=8, n_attributes=12, n_topics=5, seed=3))


@pytest.mark.parametrize("name", MODELS)
def test_training_step_changes_the_parameters_it_should(name, tiny_split):
    torch.manual_seed(0)
    model = BUILDS[name](tiny_split, d=8, max_len=6, n_layers=1, n_heads=2)
    model.train()
    seqs = TrainingSequences(*tiny_split.train_sequences(), tiny_split.n_items)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.loss(model.training_batch(seqs, torch.arange(40), 6, torch.Generator().manual_seed(0))).backward()
    opt.step()
    after = dict(model.named_parameters())
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, unchanged
    M_I, M_A = model.encoder.M_I.weight, model.encoder.M_A.weight
    mask_id = tiny_split.n_items + 1
    key_I = next(k for k in before if k.endswith("M_I.weight"))
    key_A = next(k for k in before if k.endswith("M_A.weight"))
    assert torch.equal(M_I[0], before[key_I][0]) and torch.equal(M_I[mask_id], before[key_I][mask_id])  # padding, [mask]
    assert torch.equal(M_A[0], before[key_A][0])  # attribute padding


def test_build_passes_encoder_options(tiny_split):
    model = fdsa.build(tiny_split, d=16, max_len=7, n_layers=3, n_heads=4, dropout=0.1, loss="bpr")
    assert model.encoder.cfg == EncoderConfig(d=16, max_len=7, n_layers=3, n_heads=4, dropout=0.1)
    assert len(model.encoder.feature_stream.blocks) == 3 and model.loss_name == "bpr"
    assert sasrecf.build(tiny_split, d=16).encoder.M_A.num_embeddings == tiny_split.data.n_attributes + 1


@pytest.fixture(scope="module")
def synthetic_split():
    return LeaveOneOut.from_data(make_synthetic(n_users=300, n_items=100, avg_len=12, n_attributes=30, n_topics=10, seed=0))


@pytest.mark.parametrize("name", MODELS)
def test_learns_planted_pattern(name, synthetic_split, tmp_path):
    split, max_len = synthetic_split, 20
    full = EvalConfig(protocol="full")

    def ndcg(m):
        return evaluate(m, split, "valid", full, max_len, None)["full"].metrics["NDCG@10"]

    torch.manual_seed(0)
    model = BUILDS[name](split, d=32, max_len=max_len, n_layers=1, n_heads=2, dropout=0.2, attn_dropout=0.2)
    cfg = FinetuneConfig(epochs=5, batch_size=128, lr=5e-3, patience=100)
    finetune(model, split, cfg, max_len, seed=0, validate=lambda m: {"NDCG@10": ndcg(m)}, out_dir=tmp_path,
             progress=False, log=lambda *a: None)
    pop = ndcg(PopRec(split.n_items, split.train_counts()))
    assert ndcg(model) > 2 * pop, (ndcg(model), pop)
