"""Tests for the data-set statistics (s3rec.data.stats): attribute coverage and sequence-length distribution."""

from __future__ import annotations

import numpy as np
import pytest

from s3rec.data.dataset import SequenceData, csr_from_lists
from s3rec.data.stats import dataset_statistics, format_statistics

# Five users of lengths 3, 4, 12, 3, 7 over five items; items 1 and 4 have attributes.
SEQS = [[1, 2, 3], [4, 5, 1, 2], [1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2], [2, 3, 5], [1, 1, 1, 1, 4, 4, 2]]
ATTRS = [[1, 2], [], [], [3], []]


def make(seqs: list[list[int]], attrs: list[list[int]], n_attributes: int) -> SequenceData:
    offsets, items = csr_from_lists(seqs)
    attr_offsets, attr_values = csr_from_lists(attrs)
    n_items = len(attrs)
    return SequenceData(
        name="toy", offsets=offsets, items=items, n_items=n_items, attr_offsets=attr_offsets, attr_values=attr_values,
        n_attributes=n_attributes, user_ids=np.arange(len(seqs)), item_ids=np.array([None, *range(1, n_items + 1)]),
    )


@pytest.fixture
def toy() -> SequenceData:
    return make(SEQS, ATTRS, n_attributes=3)


def test_attribute_coverage(toy):
    stats = dataset_statistics(toy)
    assert stats["items_with_attributes"] == 2
    assert stats["item_attribute_coverage"] == pytest.approx(2 / 5)
    # Interactions on items 1 or 4, per user: 1 + 2 + (3 + 2) + 0 + (4 + 2) = 14 of 3 + 4 + 12 + 3 + 7 = 29.
    assert stats["interaction_attribute_coverage"] == pytest.approx(14 / 29)


def test_length_quantiles_and_histogram(toy):
    stats = dataset_statistics(toy)
    # Sorted lengths 3, 3, 4, 7, 12; linear interpolation at position q * (5 - 1).
    assert [stats[f"seq_len_p{q}"] for q in (10, 25, 50, 75, 90)] == pytest.approx([3, 3, 4, 7, 7 + 0.6 * 5])
    assert (stats["min_seq_len"], stats["median_seq_len"], stats["max_seq_len"]) == (3, 4.0, 12)
    assert stats["seq_len_histogram"] == {"0-2": 0, "3-5": 3, "6-10": 1, "11-20": 1, "21-50": 0, "51-100": 0, ">100": 0}


def test_histogram_bucket_edges():
    lengths = [2, 3, 5, 6, 10, 11, 20, 21, 50, 51, 100, 101, 250]
    data = make([[1] * n for n in lengths], [[]], n_attributes=0)
    stats = dataset_statistics(data)
    assert stats["seq_len_histogram"] == {"0-2": 1, "3-5": 2, "6-10": 2, "11-20": 2, "21-50": 2, "51-100": 2, ">100": 2}
    assert stats["item_attribute_coverage"] == 0.0 and stats["interaction_attribute_coverage"] == 0.0


def test_format_keeps_the_table_and_adds_coverage_quantiles_and_histogram(toy):
    text = format_statistics("toy", dataset_statistics(toy))
    lines = text.splitlines()
    assert lines[0] == "data set: toy"
    rows = {line[:36].strip(): line[36:].strip() for line in lines[1:14]}
    assert rows == {
        "users": "5", "items": "5", "interactions": "29", "avg. actions / user": "5.80",
        "avg. actions / item": "5.80", "sparsity": "-16.00%", "attributes": "3", "avg. attributes / item": "0.60",
        "items with attributes": "2", "sequence length min / median / max": "3 / 4 / 12",
        "attribute coverage (items)": "40.00%", "attribute coverage (interactions)": f"{100 * 14 / 29:.2f}%",
        "seq. length p10/25/50/75/90/max": "3 / 3 / 4 / 7 / 10 / 12",
    }
    # Buckets from the first to the last non-empty one; bars scaled to the largest bucket (40 characters).
    assert lines[14:] == [
        "  users by sequence length:",
        "      3-5  3  " + "#" * 40,
        "     6-10  1  " + "#" * 14,
        "    11-20  1  " + "#" * 14,
    ]


def test_format_accepts_statistics_without_the_new_keys(toy):
    stats = dataset_statistics(toy)
    old = {k: v for k, v in stats.items() if not k.startswith(("seq_len_", "item_attribute_", "interaction_"))}
    text = format_statistics("toy", old)
    assert "coverage" not in text and "users by sequence length" not in text
    assert text.splitlines()[-1].split() == ["sequence", "length", "min", "/", "median", "/", "max", "3", "/", "4", "/", "12"]
