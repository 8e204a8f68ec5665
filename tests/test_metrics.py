"""Metric values and the ranking protocol, checked against hand-computed numbers."""

import math

import numpy as np
import pytest
import torch

from s3rec.data.dataset import SequenceData, csr_from_lists
from s3rec.data.splits import LeaveOneOut
from s3rec.errors import S3RecError
from s3rec.evaluation.metrics import count_true, per_user_metrics, summarise, target_rank
from s3rec.evaluation.negatives import sample_eval_negatives
from s3rec.evaluation.ranking import full_ranking, sampled_ranking


def make_data(seqs, n_items):
    offsets, items = csr_from_lists(seqs)
    ids = np.arange(n_items + 1, dtype=object)
    ids[0] = None
    return SequenceData("toy", offsets, items, n_items, np.zeros(n_items + 1, np.int64), np.zeros(0, np.int64), 0,
                        np.arange(len(seqs)), ids)


def test_rank_counts_ties_against_target():
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.1], [1.0, 1.0, 1.0, 1.0], [3.0, 2.0, 1.0, 0.0]])
    # row 0: target col 0 (0.5): col 1 is higher, col 2 ties -> rank 2
    # row 1: all equal -> every other candidate ties -> rank 3
    # row 2: target col 0 is the strict best -> rank 0
    ranks = target_rank(scores, torch.tensor([0, 2, 0]))
    assert ranks.tolist() == [2, 3, 0]


@pytest.mark.parametrize("n", [1, 127, 128, 129, 1000, 12102])
def test_row_counts_of_a_mask_are_exact_across_byte_chunks(n):
    gen = torch.Generator().manual_seed(n)
    mask = torch.rand(5, n, generator=gen) < torch.tensor([0.0, 0.3, 0.5, 0.9, 1.0]).unsqueeze(1)  # all-False .. all-True rows
    counts = count_true(mask)
    assert counts.dtype == torch.int64 and counts.tolist() == mask.sum(1).tolist()
    assert counts[0] == 0 and counts[-1] == n  # a full chunk of True (128) must not wrap its byte
    big = torch.zeros(2, 70_000, dtype=torch.bool)
    big[1] = True  # counts far above a byte
    assert count_true(big).tolist() == [0, 70_000]


def test_metrics_by_hand():
    m = per_user_metrics(torch.tensor([0, 2, 9, 10, 25]))
    assert m["HR@1"].tolist() == [1, 0, 0, 0, 0]
    assert m["HR@5"].tolist() == [1, 1, 0, 0, 0]
    assert m["HR@10"].tolist() == [1, 1, 1, 0, 0]
    assert m["HR@20"].tolist() == [1, 1, 1, 1, 0]
    assert m["NDCG@5"].tolist() == pytest.approx([1.0, 1 / math.log2(4), 0, 0, 0])
    assert m["NDCG@10"].tolist() == pytest.approx([1.0, 0.5, 1 / math.log2(11), 0, 0])
    assert m["NDCG@20"].tolist() == pytest.approx([1.0, 0.5, 1 / math.log2(11), 1 / math.log2(12), 0])
    assert m["MRR"].tolist() == pytest.approx([1, 1 / 3, 1 / 10, 1 / 11, 1 / 26])
    assert summarise(m)["HR@10"] == pytest.approx(0.6)


def test_constant_scores_never_hit():
    data = make_data([[1, 2, 3, 4], [5, 6, 7, 8]], n_items=50)
    split = LeaveOneOut.from_data(data)
    res = full_ranking(lambda h, u: torch.ones(len(u), 51), split, "test", max_len=5)
    assert res.ranks.tolist() == [46, 46]  # 50 items - 3 history - the target tie with the target
    assert res.metrics["HR@20"] == 0.0 and res.metrics["NDCG@20"] == 0.0


def test_full_ranking_excludes_history_and_padding():
    # user 0: 1 2 3 4 5 -> valid target 4 (history 1,2,3), test target 5 (history 1,2,3,4)
    data = make_data([[1, 2, 3, 4, 5]], n_items=8)
    split = LeaveOneOut.from_data(data)
    # scores by item id: 0 (padding) highest, then history items, then target 5, then the rest
    s = torch.tensor([[100.0, 90, 80, 70, 60, 50, 1, 2, 3]])
    res = full_ranking(lambda h, u: s.clone(), split, "test", max_len=3)
    assert res.ranks.tolist() == [0]  # padding and history 1..4 never compete
    kept = full_ranking(lambda h, u: s.clone(), split, "test", max_len=3, exclude_history=False)
    assert kept.ranks.tolist() == [4]  # history items 1..4 now rank above the target; padding still not
    valid = full_ranking(lambda h, u: s.clone(), split, "valid", max_len=3)
    assert valid.ranks.tolist() == [0]  # target 4; history 1..3 removed, item 5 (the future) scores lower


def test_history_exclusion_uses_whole_history_beyond_max_len():
    data = make_data([[1, 2, 3, 4, 5, 6]], n_items=10)
    split = LeaveOneOut.from_data(data)
    s = torch.zeros(1, 11)
    s[0, 1] = 10.0  # item 1 is outside a max_len=2 window but still history
    s[0, 6] = 5.0  # the test target
    res = full_ranking(lambda h, u: s.clone(), split, "test", max_len=2)
    assert res.ranks.tolist() == [0]


def test_repeated_target_can_never_be_hit():
    data = make_data([[1, 2, 3, 2]], n_items=10)  # test target 2 already in the history
    split = LeaveOneOut.from_data(data)
    s = torch.arange(11, dtype=torch.float).flip(0).unsqueeze(0)  # item 2 would rank high
    res = full_ranking(lambda h, u: s.clone(), split, "test", max_len=5)
    assert res.per_user["HR@20"].item() == 0.0 and res.per_user["MRR"].item() == 0.0
    assert full_ranking(lambda h, u: s.clone(), split, "test", max_len=5, exclude_history=False).ranks.item() == 1  # only item 1 scores higher


def test_sampled_ranking_with_ties():
    data = make_data([[1, 2, 3, 4], [5, 6, 7, 8]], n_items=12)
    split = LeaveOneOut.from_data(data)
    negatives = torch.tensor([[9, 10, 11], [9, 10, 11]])

    def score(hist, cands, users):
        table = torch.zeros(13)
        table[4], table[9], table[10], table[11] = 1.0, 2.0, 1.0, 0.0  # user 0: one higher, one tie -> rank 2
        table[8] = 5.0  # user 1's target is best -> rank 0
        return table[cands]

    res = sampled_ranking(score, split, "test", 5, negatives)
    assert res.ranks.tolist() == [2, 0]
    assert res.metrics["MRR"] == pytest.approx((1 / 3 + 1) / 2)


@pytest.mark.parametrize("how", ["uniform", "popularity"])
def test_sampled_negatives_never_in_history_distinct_and_seeded(how):
    rng = np.random.default_rng(0)
    seqs = [rng.choice(np.arange(1, 151), size=rng.integers(5, 30), replace=False).tolist() for _ in range(200)]
    split = LeaveOneOut.from_data(make_data(seqs, n_items=150))
    negs = sample_eval_negatives(split, k=99, how=how, seed=3)
    assert negs.shape == (200, 99)
    assert int(negs.min()) >= 1 and int(negs.max()) <= 150
    for u, seq in enumerate(seqs):
        row = negs[u].tolist()
        assert len(set(row)) == 99
        assert not set(row) & set(seq)
    assert torch.equal(negs, sample_eval_negatives(split, k=99, how=how, seed=3))
    assert not torch.equal(negs, sample_eval_negatives(split, k=99, how=how, seed=4))


def test_a_nan_target_is_never_a_hit():
    # nan >= nan is False: a diverged model's nan target used to rank first, with NDCG 1/log2(1) = inf
    scores = torch.tensor([[float("nan")] * 4, [0.1, float("nan"), 0.3, 0.2]])
    ranks = target_rank(scores, torch.tensor([0, 1]))
    m = summarise(per_user_metrics(ranks))
    assert m["HR@1"] == 0.0 and m["NDCG@20"] == 0.0 and m["MRR"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("protocol", ["full", "sampled"])
def test_ranking_feeds_the_history_of_the_split_being_ranked(protocol):
    # the validation target must be ranked from items[:-2]: giving it the test history leaks the target itself
    split = LeaveOneOut.from_data(make_data([[1, 2, 3, 4]], n_items=6))
    seen = []

    def score_all(hist, users):
        seen.append(hist.tolist())
        return torch.zeros(len(users), 7)

    def score(hist, cands, users):
        seen.append(hist.tolist())
        return torch.zeros(cands.shape)

    for which in ("valid", "test"):
        if protocol == "full":
            full_ranking(score_all, split, which, max_len=4)
        else:
            sampled_ranking(score, split, which, 4, torch.tensor([[5, 6]]))
    assert seen == [[[0, 0, 1, 2]], [[0, 1, 2, 3]]]  # valid: history 1 2 (target 3); test: 1 2 3 (target 4)


def test_sampled_negatives_can_use_every_unseen_item():
    # the longest user (4 of 6 items) leaves exactly 2 unseen: k=2 must take both, k=3 is impossible
    split = LeaveOneOut.from_data(make_data([[1, 2, 3, 4], [2, 3, 4]], n_items=6))
    negs = sample_eval_negatives(split, k=2, how="uniform", seed=0)
    assert sorted(negs[0].tolist()) == [5, 6]
    assert set(negs[1].tolist()) <= {1, 5, 6} and len(set(negs[1].tolist())) == 2
    with pytest.raises(S3RecError, match="cannot draw 3 distinct unseen negatives from 6 items"):
        sample_eval_negatives(split, k=3, how="uniform", seed=0)


def test_popularity_negatives_weigh_training_counts_plus_one(monkeypatch):
    # weights = training counts + 1 (valid/test items not counted; +1 so unseen-in-training items can be drawn)
    # u0 [1 1 2 | 3 | 4]: training 1,1,2; u1 [2 | 5 | 6]: training 2 -> counts item1 2, item2 2, the rest 0
    split = LeaveOneOut.from_data(make_data([[1, 1, 2, 3, 4], [2, 5, 6]], n_items=8))
    weights = []

    class Drawn(Exception):
        pass

    def spy(w, *args, **kwargs):
        weights.append(w.tolist())
        raise Drawn  # stop at the first draw: only its weights are under test

    monkeypatch.setattr(torch, "multinomial", spy)
    with pytest.raises(Drawn):
        sample_eval_negatives(split, k=3, how="popularity", seed=0)
    assert weights == [[0.0, 3.0, 3.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]  # padding 0 never drawn
