"""BERT4Rec: contract shapes, the appended [mask] is what is scored, the cloze batch, and learning."""

import pytest
import torch
import torch.nn.functional as F

from s3rec.config import EvalConfig
from s3rec.data.batching import left_pad
from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.models.bert4rec import BERT4Rec, build
from s3rec.models.encoder import EncoderConfig
from s3rec.models.pop import PopRec
from s3rec.pipeline import evaluate
from s3rec.training.batches import TrainingSequences
from s3rec.training.finetune import FinetuneConfig, finetune

N_ITEMS, MAX_LEN = 30, 6
ENC = EncoderConfig(d=16, n_layers=2, n_heads=2, max_len=MAX_LEN, dropout=0.1, attn_dropout=0.1)
HIST = torch.tensor([[0, 0, 0, 3, 4, 5], [1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 9]])


def tiny(seed=0):
    torch.manual_seed(seed)
    return BERT4Rec(N_ITEMS, ENC).eval()


@pytest.fixture(scope="module")
def split():
    return LeaveOneOut.from_data(make_synthetic(n_users=500, n_items=150, avg_len=14, n_attributes=30, n_topics=10, seed=0))


def test_shapes_and_score_is_gathered_score_all():
    m = tiny()
    cand = torch.tensor([[1, 2, 3], [30, 7, 7], [5, 9, 1]])
    all_scores = m.score_all(HIST)
    assert all_scores.shape == (3, N_ITEMS + 1)
    assert m.score(HIST, cand).shape == (3, 3)
    torch.testing.assert_close(m.score(HIST, cand), all_scores.gather(1, cand))
    batch = {"masked": torch.tensor([[0, 3, 31, 5], [1, 31, 31, 4]]), "targets": torch.tensor([[0, 0, 4, 0], [0, 2, 3, 0]])}
    loss = m.loss(batch)
    assert loss.dim() == 0 and torch.isfinite(loss)


def test_build_uses_paper_defaults(split):
    m = build(split)
    cfg = m.encoder.cfg
    assert (cfg.d, cfg.n_layers, cfg.n_heads, cfg.max_len, cfg.dropout) == (64, 2, 2, 50, 0.1)
    assert m.mask_ratio == 0.2 and m.n_items == split.n_items
    assert build(split, d=32, max_len=20, mask_ratio=0.4).encoder.cfg.d == 32


def test_state_dict_round_trip():
    a, b = tiny(0), tiny(1)
    assert not torch.allclose(a.score_all(HIST), b.score_all(HIST))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a.score_all(HIST), b.score_all(HIST))


def test_scores_come_from_the_appended_mask_position():
    m = tiny()
    full = HIST[1:2]  # already max_len long: the oldest item is dropped to make room for [mask]
    expected = m.logits(m.encoder(torch.cat([full[:, 1:], torch.tensor([[N_ITEMS + 1]])], 1), causal=False)[:, -1])
    torch.testing.assert_close(m.score_all(full), expected)
    oldest = full.clone()
    oldest[0, 0] = 17
    torch.testing.assert_close(m.score_all(oldest), m.score_all(full))
    last = full.clone()
    last[0, -1] = 17
    assert not torch.allclose(m.score_all(last), m.score_all(full))
    # a shorter history keeps all its items; left padding and trimmed width change nothing
    short = HIST[0:1]
    torch.testing.assert_close(m.score_all(short), m.score_all(short[:, -3:]))
    torch.testing.assert_close(m.score_all(HIST)[0], m.score_all(short)[0], rtol=1e-5, atol=1e-6)
    changed = short.clone()
    changed[0, 3] = 17  # the oldest of 3 items is still within max_len - 1
    assert not torch.allclose(m.score_all(changed), m.score_all(short))


def test_cloze_batch_masks_only_real_positions(split):
    seqs = TrainingSequences(*split.train_sequences(), split.n_items)
    m = BERT4Rec(split.n_items, EncoderConfig(d=16, max_len=10))
    users = torch.arange(split.n_users)
    batch = m.training_batch(seqs, users, 10, torch.Generator().manual_seed(0))
    masked, targets = batch["masked"], batch["targets"]
    items = left_pad(seqs.items, seqs.starts, seqs.ends, 10)[:, -masked.size(1):]
    real, is_mask = items != 0, masked == split.n_items + 1
    assert not (is_mask & ~real).any()  # padding is never masked
    assert torch.equal(targets, torch.where(is_mask, items, 0))  # targets are exactly the masked items
    assert torch.equal(torch.where(is_mask, items, masked), items)  # everything else is the user's own last items
    assert is_mask.any(1).all()  # at least one masked item per user
    forced = is_mask[:, -1] & (is_mask.sum(1) == 1)
    rate = (is_mask.sum() - forced.sum()).item() / real.sum().item()
    assert 0.17 < rate < 0.23, rate


def test_loss_is_cross_entropy_over_real_items():
    m = tiny()
    batch = {"masked": torch.tensor([[0, 3, 31, 5], [1, 31, 31, 4]]), "targets": torch.tensor([[0, 0, 4, 0], [0, 2, 3, 0]])}
    h = m.encoder(batch["masked"], causal=False)
    logits = m.logits(h)[batch["targets"] != 0][:, 1:]  # items 1..N only
    expected = F.cross_entropy(logits, batch["targets"][batch["targets"] != 0] - 1)
    torch.testing.assert_close(m.loss(batch), expected)


def test_training_step_changes_parameters(split):
    seqs = TrainingSequences(*split.train_sequences(), split.n_items)
    torch.manual_seed(0)
    m = BERT4Rec(split.n_items, EncoderConfig(d=16, max_len=10, dropout=0.1, attn_dropout=0.1))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    m.loss(m.training_batch(seqs, torch.arange(32), 10, torch.Generator().manual_seed(0))).backward()
    opt.step()
    after = m.state_dict()
    for k in ("encoder.M_I.weight", "encoder.blocks.0.qkv.weight", "W_P.weight", "b_O"):
        assert not torch.equal(before[k], after[k]), k


def test_learns_planted_pattern(split, tmp_path):
    full = EvalConfig(protocol="full")

    def ndcg(model):
        return evaluate(model, split, "valid", full, 20, None)["full"].metrics["NDCG@10"]

    pop = ndcg(PopRec(split.n_items, split.train_counts()))
    torch.manual_seed(0)
    m = BERT4Rec(split.n_items, EncoderConfig(d=32, max_len=20, dropout=0.1, attn_dropout=0.1))
    cfg = FinetuneConfig(epochs=12, batch_size=32, lr=5e-3, patience=100)
    finetune(m, split, cfg, 20, seed=0, validate=lambda mm: {"NDCG@10": ndcg(mm)}, out_dir=tmp_path,
             progress=False, log=lambda *a: None)
    assert ndcg(m) > 3 * pop, (ndcg(m), pop)
