"""Pre-training and fine-tuning batches: masks, negatives and segments built by tensor ops are right."""

import itertools

import numpy as np
import pytest
import torch

from s3rec.data.splits import LeaveOneOut
from s3rec.data.synthetic import make_synthetic
from s3rec.errors import S3RecError
from s3rec.models.dropout import FastDropout
from s3rec.models.encoder import EncoderConfig
from s3rec.models.factory import MODEL_NAMES, build_model
from s3rec.training.batches import (INPUT_KEYS, TrainingSequences, batch_order, finetune_batch, finetune_micro_batches,
                                   length_groups, pretrain_batch)
from s3rec.training.finetune import training_sequences


def make_seqs(n_users=200, max_len=12):
    split = LeaveOneOut.from_data(make_synthetic(n_users=n_users, n_items=80, avg_len=10, n_attributes=10, n_topics=5, seed=2))
    return split, TrainingSequences(*split.train_sequences(), split.n_items)


def test_prefix_samples_are_every_prefix_of_the_last_max_len_training_items():
    split, seqs = make_seqs()
    user, start, end = seqs.prefix_samples(max_len=6)
    for u in (0, 7, 42):
        train = split.data.sequence(u)[:-2]
        window = train[-6:]
        got = [seqs.items[s:e].tolist() for s, e in zip(start[user == u], end[user == u])]
        assert got == [window[: i + 1].tolist() for i in range(len(window))]
    assert int((end - start).max()) <= 6


def test_pretrain_batch_masks_negatives_and_segments():
    split, seqs = make_seqs()
    user, start, end = seqs.prefix_samples(max_len=12)
    idx = torch.arange(0, len(user), 7)
    b = pretrain_batch(seqs, user[idx], start[idx], end[idx], 0.2, torch.Generator().manual_seed(0))
    mask_id = split.n_items + 1
    items, masked = b["items"], b["masked"]
    real = items != 0
    assert (masked[:, -1] == mask_id).all()  # the last item is always masked
    assert ((masked == mask_id) <= real).all()  # padding is never masked
    assert ((masked == items) | (masked == mask_id)).all()
    rate = ((masked[:, :-1] == mask_id) & real[:, :-1]).sum() / real[:, :-1].sum()
    assert 0.15 < float(rate) < 0.25
    neg = b["neg_items"][masked == mask_id]
    users = user[idx].unsqueeze(1).expand_as(items)[masked == mask_id]
    assert not seqs.seen.contains(users, neg).any() and (neg >= 1).all() and (neg <= split.n_items).all()
    assert (b["neg_items"][masked != mask_id] == 0).all()

    # SP: samples with >= 2 items; the context hides exactly the segment the positive view shows
    n = (end - start)[idx]
    assert b["sp_context"].size(0) == int((n >= 2).sum())
    x = items[n >= 2]
    ctx, pos, neg_seg = b["sp_context"], b["sp_pos"], b["sp_neg"]
    in_seg = (ctx == mask_id) & (x != 0)
    assert (pos[in_seg] == x[in_seg]).all() and (pos[~in_seg & (x != 0)] == mask_id).all()
    assert (ctx[~in_seg] == x[~in_seg]).all()
    seg_len = in_seg.sum(1)
    assert (seg_len >= 1).all() and (seg_len <= (x != 0).sum(1) // 2).all()
    # segments are contiguous
    first = in_seg.float().argmax(1)
    assert all(in_seg[r, first[r] : first[r] + seg_len[r]].all() for r in range(len(x)))
    assert (neg_seg[~in_seg] == pos[~in_seg]).all()  # both segment views agree outside the segment
    assert (neg_seg[in_seg] >= 1).all() and (neg_seg[in_seg] <= split.n_items).all()


def test_masking_follows_the_mask_ratio():
    split, seqs = make_seqs()
    user, start, end = seqs.prefix_samples(max_len=12)
    mask_id = split.n_items + 1
    for ratio, low, high in ((0.0, 0.0, 0.0), (0.5, 0.45, 0.55)):
        b = pretrain_batch(seqs, user, start, end, ratio, torch.Generator().manual_seed(0))
        real = b["items"][:, :-1] != 0
        rate = float(((b["masked"][:, :-1] == mask_id) & real).sum() / real.sum())  # the last item: always
        assert low <= rate <= high, (ratio, rate)


def test_sp_negative_segments_come_from_other_users():
    # user u's items are 10u+1..10u+9: a segment's owner is its items' decade
    n_users, per_user = 30, 9
    items = torch.arange(n_users * 10).view(n_users, 10)[:, 1:].flatten()
    offsets = torch.arange(0, n_users * per_user + 1, per_user)
    seqs = TrainingSequences(offsets.numpy(), items.numpy(), n_users * 10)
    user, start, end = seqs.prefix_samples(max_len=9)
    b = pretrain_batch(seqs, user, start, end, 0.2, torch.Generator().manual_seed(0))
    rows = b["sp_rows"]
    in_seg = (b["sp_context"] == n_users * 10 + 1) & (b["items"][rows] != 0)
    own = (b["sp_neg"] // 10) == user[rows].unsqueeze(1)
    own_rows = [bool(own[r][in_seg[r]].all()) for r in range(len(rows))]
    assert sum(own_rows) < 0.2 * len(rows)  # chance of a whole segment from one's own 1/30 of the items
    assert (b["sp_neg"][in_seg] != b["sp_pos"][in_seg]).float().mean() > 0.9


def test_without_mip_negatives_the_batch_draws_none(monkeypatch):
    _, seqs = make_seqs()
    user, start, end = seqs.prefix_samples(max_len=12)
    idx = torch.arange(0, len(user), 7)
    with_neg = pretrain_batch(seqs, user[idx], start[idx], end[idx], 0.2, torch.Generator().manual_seed(0))
    from s3rec.training import batches
    monkeypatch.setattr(batches, "sample_unseen", lambda *a, **k: pytest.fail("drew MIP negatives"))
    without = pretrain_batch(seqs, user[idx], start[idx], end[idx], 0.2, torch.Generator().manual_seed(0),
                             with_mip_negatives=False)
    assert (without["neg_items"] == 0).all()
    assert torch.equal(without["masked"], with_neg["masked"])  # the masks come first: the same for a seed


def test_pretraining_without_mip_draws_no_negatives(tmp_path, monkeypatch):
    from s3rec.models.s3rec import ObjectiveConfig
    from s3rec.training import batches
    from s3rec.training.pretrain import PretrainConfig, pretrain
    split, _ = make_seqs(n_users=40)
    calls = []
    real = batches.sample_unseen
    monkeypatch.setattr(batches, "sample_unseen", lambda *a, **k: calls.append(1) or real(*a, **k))
    enc = EncoderConfig(d=8, n_layers=1, n_heads=2, max_len=8)
    pretrain(split, PretrainConfig(epochs=1, objectives=ObjectiveConfig(mip=0.0)), enc, tmp_path / "a", seed=0, progress=False)
    assert calls == []  # weight 0 removes MIP's sampling with its loss
    pretrain(split, PretrainConfig(epochs=1), enc, tmp_path / "b", seed=0, progress=False)
    assert calls

def test_pretraining_never_sees_validation_or_test_items():
    split, seqs = make_seqs()
    held_out_positions = np.concatenate([np.arange(e - 2, e) for e in split.data.offsets[1:]])
    train_offsets, train_items = split.train_sequences()
    assert len(train_items) == len(split.data.items) - 2 * split.n_users
    assert seqs.items.numel() == len(train_items)
    # the SP negative stream is the training part only
    assert np.array_equal(seqs.items.numpy(), np.delete(split.data.items, held_out_positions))


def test_finetune_batch_targets_are_the_next_training_items():
    split, seqs = make_seqs()
    users = torch.tensor([0, 5, 9])
    b = finetune_batch(seqs, users, max_len=50, gen=torch.Generator().manual_seed(0))
    for row, u in enumerate(users.tolist()):
        seq = split.data.sequence(u)
        inputs = b["inputs"][row][b["inputs"][row] != 0].tolist()
        targets = b["targets"][row][b["targets"][row] != 0].tolist()
        assert inputs == seq[:-3].tolist() and targets == seq[1:-2].tolist()
    real = b["targets"] != 0
    assert not seqs.seen.contains(users.unsqueeze(1).expand_as(real)[real], b["negatives"][real]).any()


@pytest.mark.parametrize("exclude", ["train", "sequence"])
def test_finetune_negatives_avoid_held_out_items_only_with_sequence_exclusion(exclude):
    split, _ = make_seqs()
    seqs = training_sequences(split, exclude)
    users = torch.arange(split.n_users).repeat_interleave(50)  # 50 batches' worth of draws per user
    b = finetune_batch(seqs, users, max_len=50, gen=torch.Generator().manual_seed(0))
    held_out = torch.from_numpy(split.data.items[split.data.offsets[1:] - 1])[users]  # each user's test item
    drawn = ((b["negatives"] == held_out.unsqueeze(1)) & (b["targets"] != 0)).sum()
    # ~ 10 targets x 50 x 200 users / 80 items: thousands of test items drawn as negatives unless excluded
    assert (drawn == 0) if exclude == "sequence" else (drawn > 100)
    with pytest.raises(S3RecError, match="negatives_exclude"):
        training_sequences(split, "all")


def test_bucketed_batches_cover_every_sample_once():
    lengths = torch.randint(1, 50, (1003,))
    batches = batch_order(lengths, 100, torch.Generator().manual_seed(0), bucket=True)
    assert sorted(torch.cat(batches).tolist()) == list(range(1003))
    spread = [int(lengths[b].max() - lengths[b].min()) for b in batches[:-1]]
    assert np.median(spread) < 10  # similar lengths share a batch


def test_fast_dropout_keep_rate_scale_and_eval_identity():
    drop = FastDropout(0.5)
    x = torch.ones(200_000)
    y = drop(x)
    assert set(torch.unique(y).tolist()) == {0.0, 2.0}
    assert abs(float((y == 0).float().mean()) - 0.5) < 0.01
    assert abs(float(y.mean()) - 1.0) < 0.02
    x = torch.full((1000,), 3.0, requires_grad=True)
    y = drop(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach() / 3.0)  # the gradient passes exactly where the value did, scaled
    drop.eval()
    assert torch.equal(drop(x), x)
    assert FastDropout(0.2).p == 51 / 256


ROW_SPLITTERS = ("sasrec", "sasrecf", "fdsa", "gru4rec", "gru4recf", "bert4rec")  # models whose batches the trainer splits


def test_the_models_that_split_rows_are_the_tested_ones():
    split = LeaveOneOut.from_data(make_synthetic(n_users=30, n_items=40, avg_len=8, n_attributes=8, n_topics=4, seed=3))
    enc = EncoderConfig(d=8, max_len=10)
    assert {m for m in MODEL_NAMES if getattr(build_model(m, split, enc), "splits_rows", False)} == {*ROW_SPLITTERS, "s3rec"}  # s3rec fine-tunes a SASRec


@pytest.mark.parametrize("model, loss", [(m, l) for m in ROW_SPLITTERS
                                         for l in (("cloze",) if m == "bert4rec" else ("bce", "ce", "sampled-softmax"))])
def test_finetune_micro_batches_give_the_whole_batch_loss_and_gradient(model, loss):
    """Length-sorted parts, each trimmed and weighted by its share of targets, sum to the whole batch."""
    split = LeaveOneOut.from_data(make_synthetic(n_users=90, n_items=60, avg_len=9, n_attributes=8, n_topics=4, seed=3))
    seqs = TrainingSequences(*split.train_sequences(), split.n_items)
    torch.manual_seed(0)
    m = build_model(model, split, EncoderConfig(d=16, max_len=20), loss=loss, n_negatives=20).eval()  # eval: no dropout
    batch = m.training_batch(seqs, torch.arange(64), 20, torch.Generator().manual_seed(1))

    def loss_and_grads(parts):
        m.zero_grad()
        total = sum(m.loss(p) * share for p, share in parts)
        total.backward()
        return float(total.detach()), [p.grad.clone() for p in m.parameters() if p.grad is not None]

    whole_loss, whole = loss_and_grads([(batch, 1.0)])
    parts = finetune_micro_batches(batch, 4)
    key = next(k for k in INPUT_KEYS if k in batch)
    assert len(parts) >= 2 and max(p[key].size(1) for p, _ in parts[:-1]) < batch[key].size(1)
    assert sum(share for _, share in parts) == pytest.approx(1.0)
    assert sum(int((p["targets"] != 0).sum()) for p, _ in parts) == int((batch["targets"] != 0).sum())
    split_loss, split_grads = loss_and_grads(parts)
    assert split_loss == pytest.approx(whole_loss, rel=1e-5)
    for a, b in zip(whole, split_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_finetune_micro_batches_leave_a_batch_without_targets_whole():
    batch = {"inputs": torch.tensor([[0, 1], [1, 2]]), "targets": torch.zeros(2, 2, dtype=torch.long),
             "negatives": torch.zeros(2, 2, dtype=torch.long)}
    assert finetune_micro_batches(batch, 4) == [(batch, 1.0)]
    other = {"tokens": torch.tensor([[1, 2]]), "labels": torch.tensor([[2, 0]])}  # another model's batch keys
    assert finetune_micro_batches(other, 1) == [(other, 1.0)]


def left_padded(lengths: list[int], width: int = 12) -> torch.Tensor:
    """Rows of ones, each left-padded to `width`, one per length."""
    return (torch.arange(width)[None, :] >= width - torch.tensor(lengths)[:, None]).long()


def least_padding_by_enumeration(lengths: list[int], parts: int, overhead: int) -> int:
    """Least padded tokens + overhead per group over every cut of the sorted lengths into <= parts groups."""
    ls, n = sorted(lengths), len(lengths)
    best = sum(ls[-1] for _ in ls) + overhead
    for k in range(1, min(parts, n)):
        for cuts in itertools.combinations(range(1, n), k):
            bounds = (0, *cuts, n)
            best = min(best, sum((j - i) * ls[j - 1] for i, j in zip(bounds, bounds[1:])) + overhead * (k + 1))
    return best


@pytest.mark.parametrize("parts,overhead", [(1, 0), (2, 0), (3, 0), (4, 5), (8, 0)])
def test_length_groups_cut_where_padding_is_least(parts, overhead):
    gen = torch.Generator().manual_seed(parts + overhead)
    for _ in range(5):
        lengths = torch.randint(1, 13, (9,), generator=gen).tolist()
        groups = length_groups(left_padded(lengths), parts, overhead)
        rows = torch.cat([r for r, _ in groups])
        assert sorted(rows.tolist()) == list(range(9))  # every row exactly once
        assert all(w == max(lengths[i] for i in r.tolist()) for r, w in groups)
        assert len(groups) <= parts
        cost = sum(len(r) * w for r, w in groups) + overhead * len(groups)
        assert cost == least_padding_by_enumeration(lengths, parts, overhead)


def test_length_groups_give_long_rows_their_own_group_and_never_split_equal_lengths():
    groups = length_groups(left_padded([1, 1, 2, 2, 3, 12, 3, 4, 11, 5]), 3, overhead=0)
    assert [(r.tolist(), w) for r, w in groups] == [([0, 1, 2, 3], 2), ([4, 6, 7, 9], 5), ([8, 5], 12)]
    assert len(length_groups(left_padded([4] * 6), 4, overhead=0)) == 1  # a split would save nothing
    assert len(length_groups(left_padded([1, 1, 12]), 3, overhead=30)) == 1  # saves 22 tokens < 30
