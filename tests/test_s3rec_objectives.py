"""The four S3-Rec objectives on a tiny hand-made batch, against values computed by hand.

The encoder is replaced by a lookup table T[item] so every score can be written down by hand:
d = 2, items 1..3 ([mask] = 4), attributes 1..2; item 1 -> {1}, item 2 -> {2}, item 3 -> {1, 2};
W_AAP = W_MIP = W_MAP = W_SP = identity.
"""

import math

import pytest
import torch

from s3rec.models.encoder import EncoderConfig
from s3rec.models.s3rec import ObjectiveConfig, S3RecPretrainer

T = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, -0.5]])  # "encoder output" of each id


def sp(x):
    return math.log1p(math.exp(x))  # softplus: -log sigmoid(-x)


def sig(x):
    return 1 / (1 + math.exp(-x))


def make_model(**objectives):
    m = S3RecPretrainer(3, 2, torch.tensor([0, 1, 2, 4]), torch.tensor([1, 2, 1, 2]),
                        EncoderConfig(d=2, n_heads=1, n_layers=1, max_len=3), ObjectiveConfig(**objectives))
    with torch.no_grad():
        m.encoder.M_I.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [9.0, 9.0]]))
        m.M_A.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 2.0], [-1.0, 0.5]]))
        for W in (m.W_AAP, m.W_MIP, m.W_MAP, m.W_SP):
            W.weight.copy_(torch.eye(2))
            W.bias.zero_()
    m.rows_encoded = []

    def fake_encoder(items, causal):
        assert causal is False
        m.rows_encoded.append(items.size(0))
        return T[items]

    def fake_encode_views(items, n_full):
        F_t = fake_encoder(items, causal=False)
        return F_t[:n_full], F_t[n_full:, -1]

    m.encoder.forward = fake_encoder
    m.encoder.encode_views = fake_encode_views
    return m


BATCH = {
    "items": torch.tensor([[0, 1, 2]]),
    "masked": torch.tensor([[0, 1, 4]]),  # the last item is masked
    "neg_items": torch.tensor([[0, 0, 3]]),
    "sp_context": torch.tensor([[0, 4, 2]]),  # last output T[2] = (0, 1)
    "sp_pos": torch.tensor([[0, 4, 1]]),  # last output T[1] = (1, 0)
    "sp_neg": torch.tensor([[0, 4, 3]]),  # last output T[3] = (1, 1)
}

# AAP (code form): non-masked position holds item 1, output T[1] = (1, 0); logits vs a1, a2 = (1, -1); target (1, 0)
AAP = sp(-1) + sp(-1)
# MIP: masked position output T[4] = (0.5, -0.5); target item 2 e=(0, 2): s+ = -1; negative item 3 e=(1, 1): s- = 0
MIP_FAITHFUL = -math.log(sig(sig(-1) - sig(0)))
MIP_BPR = sp(1)
# MAP: logits of (0.5, -0.5) vs a1 = -0.5, vs a2 = -0.75; item 2 has attribute 2 only
MAP = sp(-0.5) + sp(0.75)
# SP: context (0, 1); positive segment (1, 0): s+ = 0; negative (1, 1): s- = 1
SP_FAITHFUL = -math.log(sig(sig(0) - sig(1)))
SP_BPR = sp(1)


def test_each_objective_by_hand():
    out = make_model()(BATCH)
    assert out["aap"].item() == pytest.approx(AAP, rel=1e-5)
    assert out["mip"].item() == pytest.approx(MIP_FAITHFUL, rel=1e-5)
    assert out["map"].item() == pytest.approx(MAP, rel=1e-5)
    assert out["sp"].item() == pytest.approx(SP_FAITHFUL, rel=1e-5)
    total = 0.2 * AAP + 1.0 * MIP_FAITHFUL + 1.0 * MAP + 0.5 * SP_FAITHFUL
    assert out["loss"].item() == pytest.approx(total, rel=1e-5)


def test_bpr_pair_loss():
    out = make_model(pair_loss="bpr")(BATCH)
    assert out["mip"].item() == pytest.approx(MIP_BPR, rel=1e-5)
    assert out["sp"].item() == pytest.approx(SP_BPR, rel=1e-5)


def test_softmax_mip_scores_the_masked_item_against_every_item():
    # context (0.5, -0.5) vs e1=(1, 0), e2=(0, 2), e3=(1, 1): logits (0.5, -1, 0); target item 2
    out = make_model(mip_form="softmax")(BATCH)
    z = [0.5, -1.0, 0.0]
    assert out["mip"].item() == pytest.approx(-z[1] + math.log(sum(math.exp(v) for v in z)), rel=1e-5)


def test_aap_paper_form_uses_item_embeddings():
    # e1 = (1, 0): logits (1, -1), target (1, 0); e2 = (0, 2): logits (4, 1), target (0, 1)
    out = make_model(aap_form="paper")(BATCH)
    assert out["aap"].item() == pytest.approx(sp(-1) + sp(-1) + sp(4) + sp(-1), rel=1e-5)


def test_losses_are_per_sample_means():
    two = {k: torch.cat([v, v]) for k, v in BATCH.items()}
    out = make_model()(two)
    assert out["map"].item() == pytest.approx(MAP, rel=1e-5)


def test_zero_weight_removes_objective_and_its_compute():
    m = make_model(sp=0.0)
    out = m(BATCH)
    assert "sp" not in out and m.rows_encoded == [1]  # only the masked sequence was encoded
    m = make_model(mip=0.0, map=0.0, aap_form="paper")
    out = m(BATCH)
    assert m.rows_encoded == [4 - 1]  # only the three SP views
    assert set(out) == {"aap", "sp", "loss"}
    m = make_model()
    m(BATCH)
    assert m.rows_encoded == [4]  # masked + context + positive + negative segment in one pass


def test_objective_config_validation():
    with pytest.raises(ValueError):
        ObjectiveConfig(aap_form="bogus")
    with pytest.raises(ValueError):
        ObjectiveConfig(pair_loss="x")
    with pytest.raises(ValueError):
        ObjectiveConfig(mip=-1)
    with pytest.raises(ValueError, match="mip_form"):
        ObjectiveConfig(mip_form="ce")


@pytest.mark.parametrize("packed", [True, False])
def test_fast_path_gives_the_losses_and_gradients_of_the_straightforward_form(packed, monkeypatch):
    """The fast path (trimmed batch, packed tokens, last query only for SP) equals the authors' form:
    every view padded to max_len and encoded at every position."""
    from s3rec.data.splits import LeaveOneOut
    from s3rec.data.synthetic import make_synthetic
    from s3rec.models import encoder, s3rec as s3rec_module
    from s3rec.training.batches import TrainingSequences, pretrain_batch

    monkeypatch.setattr(encoder, "PACK_MIN_PADDING", 0.0 if packed else 1.0)  # both forms of encode_views
    split = LeaveOneOut.from_data(make_synthetic(n_users=60, n_items=40, avg_len=7, n_attributes=8, n_topics=4, seed=3))
    data = split.data
    seqs = TrainingSequences(*split.train_sequences(), data.n_items)
    user, start, end = seqs.prefix_samples(max_len=20)
    idx = torch.arange(0, len(user), 3)
    batch = pretrain_batch(seqs, user[idx], start[idx], end[idx], 0.3, torch.Generator().manual_seed(0))
    assert batch["items"].size(1) < 20
    padded = {k: torch.nn.functional.pad(v, (20 - v.size(1), 0)) if v.dim() == 2 else v for k, v in batch.items()}
    torch.manual_seed(0)
    m = S3RecPretrainer(data.n_items, data.n_attributes, torch.from_numpy(data.attr_offsets),
                        torch.from_numpy(data.attr_values), EncoderConfig(d=16, max_len=20)).eval()

    def losses_and_grads(b):
        m.zero_grad()
        losses = m(b)
        losses["loss"].backward()
        return losses, {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}

    fast, fast_grads = losses_and_grads(batch)

    def every_position(encoder, items, n_full):
        F_t = encoder(items, causal=False)
        return F_t[:n_full], F_t[n_full:, -1]

    monkeypatch.setattr(s3rec_module, "encode_views", every_position)
    slow, slow_grads = losses_and_grads(padded)
    for k in fast:
        torch.testing.assert_close(fast[k], slow[k], rtol=1e-5, atol=1e-5)
    assert fast_grads.keys() == slow_grads.keys()
    for name in fast_grads:
        torch.testing.assert_close(fast_grads[name], slow_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_micro_batches_give_the_whole_batch_gradient():
    """Length-sorted parts, each trimmed, sum to exactly the whole batch's loss and gradient."""
    from s3rec.data.splits import LeaveOneOut
    from s3rec.data.synthetic import make_synthetic
    from s3rec.training.batches import TrainingSequences, micro_batches, pretrain_batch

    split = LeaveOneOut.from_data(make_synthetic(n_users=80, n_items=50, avg_len=9, n_attributes=8, n_topics=4, seed=6))
    data = split.data
    seqs = TrainingSequences(*split.train_sequences(), data.n_items)
    user, start, end = seqs.prefix_samples(max_len=20)
    idx = torch.randperm(len(user), generator=torch.Generator().manual_seed(0))[:60]
    batch = pretrain_batch(seqs, user[idx], start[idx], end[idx], 0.3, torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    m = S3RecPretrainer(data.n_items, data.n_attributes, torch.from_numpy(data.attr_offsets),
                        torch.from_numpy(data.attr_values), EncoderConfig(d=16, max_len=20)).eval()

    def grads(parts):
        m.zero_grad()
        total = 0.0
        for p in parts:
            loss = m(p)["loss"] * len(p["items"]) / 60
            loss.backward()
            total += float(loss.detach())
        return total, [p.grad.clone() for p in m.parameters() if p.grad is not None]

    whole_loss, whole = grads([batch])
    parts = micro_batches(batch, 4)
    assert len(parts) >= 2 and max(p["items"].size(1) for p in parts[:-1]) < batch["items"].size(1)
    assert sum(len(p["sp_context"]) for p in parts) == len(batch["sp_context"])
    split_loss, split_grads = grads(parts)
    assert split_loss == pytest.approx(whole_loss, rel=1e-5)
    for a, b in zip(whole, split_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
