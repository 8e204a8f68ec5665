"""Tests of the leave-one-out split, the train-fraction filter and the batching helpers (hand-made data)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from s3rec.data.batching import InteractionIndex, gather_ranges, left_pad, sample_unseen, segment_ids, trim_left_padding
from s3rec.data.dataset import SequenceData, csr_from_lists
from s3rec.data.splits import LeaveOneOut, keep_train_fraction
from s3rec.errors import DataError


def make_data(seqs: list[list[int]], n_items: int | None = None, user_ids=None, negatives=None,
              source: str = "hand.txt") -> SequenceData:
    offsets, items = csr_from_lists(seqs)
    n_items = int(items.max()) if n_items is None else n_items
    item_ids = np.arange(n_items + 1, dtype=object)
    item_ids[0] = None
    return SequenceData(
        name="hand", offsets=offsets, items=items, n_items=n_items,
        attr_offsets=np.zeros(0, np.int64), attr_values=np.zeros(0, np.int64), n_attributes=0,
        user_ids=np.asarray(user_ids if user_ids is not None else [101 + i for i in range(len(seqs))]),
        item_ids=item_ids, fixed_negatives=None if negatives is None else np.asarray(negatives, dtype=np.int64),
        source=source,
    )


# u0: the minimum (train 1 item); u1: longer than max_len=3; u2: train [2, 4]
SEQS = [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10], [2, 4, 6, 8]]


@pytest.fixture
def split() -> LeaveOneOut:
    return LeaveOneOut.from_data(make_data(SEQS, n_items=10))


def t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.long)


def assert_equal(actual, expected):
    actual = torch.as_tensor(actual)
    assert actual.tolist() == torch.as_tensor(expected).tolist()


# ---------------------------------------------------------------------------------------------
# LeaveOneOut
# ---------------------------------------------------------------------------------------------


def test_targets(split):
    assert split.n_users == 3 and split.n_items == 10
    assert_equal(split.target("valid"), [2, 9, 6])  # second last
    assert_equal(split.target("test"), [3, 10, 8])  # last


def test_ends(split):
    assert_equal(split.train_end(), [1, 8, 12])
    assert_equal(split.history_end("valid"), [1, 8, 12])
    assert_equal(split.history_end("test"), [2, 9, 13])


def test_valid_histories_left_padded_and_truncated(split):
    assert_equal(split.histories("valid", 3), [[0, 0, 1], [6, 7, 8], [0, 2, 4]])
    assert_equal(split.histories("valid", 6), [[0, 0, 0, 0, 0, 1], [0, 4, 5, 6, 7, 8], [0, 0, 0, 0, 2, 4]])
    assert_equal(split.histories("valid", 1), [[1], [8], [4]])


def test_test_histories_left_padded_and_truncated(split):
    assert_equal(split.histories("test", 3), [[0, 1, 2], [7, 8, 9], [2, 4, 6]])
    assert_equal(split.histories("test", 5), [[0, 0, 0, 1, 2], [5, 6, 7, 8, 9], [0, 0, 2, 4, 6]])
    assert_equal(split.histories("test", 8), [[0, 0, 0, 0, 0, 0, 1, 2], [0, 0, 4, 5, 6, 7, 8, 9],
                                              [0, 0, 0, 0, 0, 2, 4, 6]])


def test_histories_for_chosen_users(split):
    assert_equal(split.histories("test", 3, t([2, 0])), [[2, 4, 6], [0, 1, 2]])
    assert_equal(split.histories("valid", 4, t([1])), [[5, 6, 7, 8]])
    assert split.histories("test", 4).dtype == torch.long


def test_history_index_is_the_whole_untruncated_history(split):
    offsets, items = split.history_index("valid")  # items[:-2]
    assert_equal(offsets, [0, 1, 6, 8])
    assert_equal(items, [1, 4, 5, 6, 7, 8, 2, 4])
    offsets, items = split.history_index("test")  # items[:-1]
    assert_equal(offsets, [0, 2, 8, 11])
    assert_equal(items, [1, 2, 4, 5, 6, 7, 8, 9, 2, 4, 6])


def test_train_sequences(split):
    offsets, items = split.train_sequences()
    np.testing.assert_array_equal(offsets, [0, 1, 6, 8])
    np.testing.assert_array_equal(items, [1, 4, 5, 6, 7, 8, 2, 4])
    for u, seq in enumerate(SEQS):
        np.testing.assert_array_equal(items[offsets[u]:offsets[u + 1]], seq[:-2])


def test_train_counts_count_training_items_only(split):
    # training items: 1 | 4 5 6 7 8 | 2 4. Item 2 is u0's validation item and u2's training item -> 1;
    # item 8 is u1's training and u2's test item -> 1; items 3, 9, 10 are only valid/test -> 0.
    counts = split.train_counts()
    np.testing.assert_array_equal(counts, [0, 1, 1, 0, 2, 1, 1, 1, 1, 0, 0])
    assert len(counts) == split.n_items + 1


def test_train_counts_include_unused_items(tmp_path):
    s = LeaveOneOut.from_data(make_data([[1, 1, 2, 3]], n_items=6))
    np.testing.assert_array_equal(s.train_counts(), [0, 2, 0, 0, 0, 0, 0])


def test_interaction_indexes(split):
    users = t([0, 0, 0, 1, 1, 2, 2])
    items = t([1, 2, 3, 8, 9, 4, 6])
    assert_equal(split.train_index().contains(users, items), [True, False, False, True, False, True, False])
    assert_equal(split.all_index().contains(users, items), [True, True, True, True, True, True, True])
    assert_equal(split.all_index().contains(t([0, 2]), t([4, 10])), [False, False])


@pytest.mark.parametrize("seqs, bad_user", [([[1, 2, 3], [1, 2]], 102), ([[1], [1, 2, 3], [2, 3]], 101)])
def test_user_with_fewer_than_three_items(seqs, bad_user):
    with pytest.raises(DataError) as e:
        LeaveOneOut.from_data(make_data(seqs, source="short.txt"))
    msg = str(e.value)
    assert "short.txt" in msg and f"user {bad_user}" in msg
    assert "\n" not in msg


# ---------------------------------------------------------------------------------------------
# keep_train_fraction
# ---------------------------------------------------------------------------------------------


def seqs_of(data: SequenceData) -> list[list[int]]:
    return [data.sequence(u).tolist() for u in range(data.n_users)]


def test_fraction_by_hand():
    data = make_data(SEQS, n_items=10, negatives=[[4, 5], [1, 2], [1, 3]])
    # n_train = 1, 5, 2 ; f = 0.4 -> round(0.4, 2.0, 0.8) = 0, 2, 1 -> at least 1 -> 1, 2, 1
    out = keep_train_fraction(data, 0.4)
    assert seqs_of(out) == [[1, 2, 3], [7, 8, 9, 10], [4, 6, 8]]
    np.testing.assert_array_equal(out.offsets, [0, 3, 7, 10])
    assert out.extra["train_fraction"] == 0.4
    np.testing.assert_array_equal(out.user_ids, data.user_ids)
    np.testing.assert_array_equal(out.fixed_negatives, data.fixed_negatives)
    assert out.n_items == 10
    # f = 0.6 -> round(0.6, 3.0, 1.2) = 1, 3, 1
    assert seqs_of(keep_train_fraction(data, 0.6)) == [[1, 2, 3], [6, 7, 8, 9, 10], [4, 6, 8]]
    # tiny f -> one training item each
    assert seqs_of(keep_train_fraction(data, 0.01)) == [[1, 2, 3], [8, 9, 10], [4, 6, 8]]
    # the input is untouched
    assert seqs_of(data) == SEQS


def test_fraction_one_keeps_everything():
    data = make_data(SEQS, n_items=10)
    out = keep_train_fraction(data, 1.0)
    assert seqs_of(out) == SEQS


def test_fraction_general_rule():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 50, size=n).tolist() for n in (3, 4, 5, 9, 12, 23, 40)]
    data = make_data(seqs, n_items=50)
    for f in (0.05, 0.1, 0.25, 1 / 3, 0.5, 0.7, 0.9, 0.99):
        out = keep_train_fraction(data, f)
        for seq, kept in zip(seqs, seqs_of(out)):
            n_train = len(seq) - 2
            keep = max(1, round(f * n_train))
            assert kept == seq[len(seq) - 2 - keep:], (f, seq)
            assert kept[-2:] == seq[-2:]
        # the split of the reduced data keeps the same targets
        a, b = LeaveOneOut.from_data(data), LeaveOneOut.from_data(out)
        for which in ("valid", "test"):
            assert_equal(b.target(which), a.target(which))


@pytest.mark.parametrize("f", [0.0, -0.5, 1.0000001, 2.0, math.nan, -math.inf, math.inf])
def test_fraction_outside_range_is_rejected(f):
    with pytest.raises(DataError) as e:
        keep_train_fraction(make_data(SEQS, n_items=10), f)
    assert "train-fraction" in str(e.value)


# ---------------------------------------------------------------------------------------------
# batching helpers
# ---------------------------------------------------------------------------------------------


def test_left_pad_exact():
    items = t([5, 6, 7, 8, 9])
    starts, ends = t([0, 2, 4, 1]), t([2, 5, 4, 5])  # rows [5,6], [7,8,9], [], [6,7,8,9]
    assert_equal(left_pad(items, starts, ends, 2), [[5, 6], [8, 9], [0, 0], [8, 9]])
    assert_equal(left_pad(items, starts, ends, 4), [[0, 0, 5, 6], [0, 7, 8, 9], [0, 0, 0, 0], [6, 7, 8, 9]])
    assert_equal(left_pad(items, starts, ends, 6), [[0, 0, 0, 0, 5, 6], [0, 0, 0, 7, 8, 9], [0] * 6,
                                                    [0, 0, 6, 7, 8, 9]])
    assert left_pad(items, starts, ends, 3).shape == (4, 3)


def test_left_pad_does_not_read_other_rows():
    # row 1 starts right after row 0: padding must be 0, never row 0's items
    items = t([1, 2, 3, 4])
    assert_equal(left_pad(items, t([0, 2]), t([2, 4]), 3), [[0, 1, 2], [0, 3, 4]])


def test_gather_ranges_exact():
    values = t([10, 11, 12, 13, 14])
    flat, rows = gather_ranges(values, t([3, 0, 1]), t([2, 0, 3]))
    assert_equal(flat, [13, 14, 11, 12, 13])
    assert_equal(rows, [0, 0, 2, 2, 2])
    flat, rows = gather_ranges(values, t([0]), t([5]))
    assert_equal(flat, [10, 11, 12, 13, 14])
    assert_equal(rows, [0, 0, 0, 0, 0])
    flat, rows = gather_ranges(values, t([1, 4]), t([0, 0]))
    assert flat.numel() == 0 and rows.numel() == 0


def test_segment_ids_and_trim_left_padding():
    assert_equal(segment_ids(t([2, 1, 3])), [0, 0, 1, 2, 2, 2])
    assert_equal(segment_ids(t([0, 2, 0])), [1, 1])
    a = t([[0, 0, 1, 2], [0, 0, 0, 3]])
    b = t([[9, 9, 8, 7], [9, 9, 9, 6]])
    ta, tb = trim_left_padding(a, b)
    assert_equal(ta, [[1, 2], [0, 3]])
    assert_equal(tb, [[8, 7], [9, 6]])
    (z,) = trim_left_padding(t([[0, 0], [0, 0]]))
    assert z.shape == (2, 1)


def test_interaction_index_contains():
    # user 0: {3, 1}; user 1: {5}; user 2: {} ; n_items = 5
    index = InteractionIndex(np.array([0, 2, 3, 3]), np.array([3, 1, 5]), 5)
    assert_equal(index.contains(t([0, 1]), t([[1, 2, 3], [5, 1, 3]])), [[True, False, True], [True, False, False]])
    assert_equal(index.contains(t([0, 0, 1, 1, 2, 2]), t([1, 5, 5, 4, 1, 5])), [True, False, True, False, False, False])
    assert_equal(index.contains(t([2]), t([[1, 2, 3, 4, 5]])), [[False] * 5])
    # largest user, largest item: no out-of-range look-up
    assert_equal(index.contains(t([1]), t([[5]])), [[True]])


def test_interaction_index_repeated_items():
    index = InteractionIndex(np.array([0, 4]), np.array([2, 2, 2, 4]), 4)
    assert_equal(index.contains(t([0]), t([[1, 2, 3, 4]])), [[False, True, False, True]])


def test_sample_unseen_never_returns_a_seen_item():
    index = InteractionIndex(np.array([0, 2, 3]), np.array([3, 1, 5]), 5)  # user 0 saw {1,3}, user 1 saw {5}
    gen = torch.Generator().manual_seed(0)
    out = sample_unseen(t([0, 1]), (2, 1000), 5, index, gen)
    assert out.shape == (2, 1000)
    assert set(out[0].tolist()) == {2, 4, 5}
    assert set(out[1].tolist()) == {1, 2, 3, 4}
    assert not index.contains(t([0, 1]), out).any()
    # seeded: the same generator seed gives the same draws
    again = sample_unseen(t([0, 1]), (2, 1000), 5, index, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_sample_unseen_dense_user_gets_the_only_unseen_item():
    index = InteractionIndex(np.array([0, 5]), np.array([1, 2, 3, 5, 6]), 6)  # only item 4 unseen
    out = sample_unseen(t([0]), (1, 30), 6, index, torch.Generator().manual_seed(1))
    assert out.tolist() == [[4] * 30]


def test_sample_unseen_redraw_can_return_the_last_item():
    # the redraw must cover 1..n_items too: here the only unseen item is the last id, n_items = 3
    index = InteractionIndex(np.array([0, 2]), np.array([1, 2]), 3)
    out = sample_unseen(t([0]), (1, 30), 3, index, torch.Generator().manual_seed(0))
    assert out.tolist() == [[3] * 30]


def test_sample_unseen_in_range_for_a_user_with_no_history():
    index = InteractionIndex(np.array([0, 1, 1]), np.array([2]), 7)
    out = sample_unseen(t([1]), (1, 500), 7, index, torch.Generator().manual_seed(2))
    assert int(out.min()) >= 1 and int(out.max()) <= 7
    assert set(out[0].tolist()) == set(range(1, 8))
