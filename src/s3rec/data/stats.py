"""The paper's Table 1 statistics of a data set."""

from __future__ import annotations

import numpy as np

from s3rec.data.dataset import SequenceData

QUANTILES = (10, 25, 50, 75, 90)
# Sequence-length histogram buckets: (label, smallest length, largest length).
LENGTH_BUCKETS = (("0-2", 0, 2), ("3-5", 3, 5), ("6-10", 6, 10), ("11-20", 11, 20), ("21-50", 21, 50),
                  ("51-100", 51, 100), (">100", 101, None))
_BAR_WIDTH = 40


def dataset_statistics(data: SequenceData) -> dict[str, float | int | dict[str, int]]:
    """Users, items, interactions, averages, sparsity and attribute figures (paper Table 1), plus attribute
    coverage and the sequence-length distribution (quantiles and a bucketed histogram)."""
    n_users, n_items, n_inter = data.n_users, data.n_items, len(data.items)
    items_with_attrs = int((data.item_attribute_counts()[1:] > 0).sum())
    lengths = data.lengths
    has_attrs = data.item_attribute_counts() > 0  # indexed by item id
    quantiles = np.quantile(lengths, [q / 100 for q in QUANTILES])
    histogram = {label: int(((lengths >= lo) & (lengths <= (hi if hi is not None else np.inf))).sum())
                 for label, lo, hi in LENGTH_BUCKETS}
    return {
        "users": n_users,
        "items": n_items,
        "interactions": n_inter,
        "avg_actions_per_user": n_inter / n_users,
        "avg_actions_per_item": n_inter / n_items,
        "sparsity": 1.0 - n_inter / (n_users * n_items),
        "attributes": data.n_attributes,
        "avg_attributes_per_item": len(data.attr_values) / n_items,
        "items_with_attributes": items_with_attrs,
        "min_seq_len": int(lengths.min()),
        "median_seq_len": float(np.median(lengths)),
        "max_seq_len": int(lengths.max()),
        "item_attribute_coverage": items_with_attrs / n_items,
        "interaction_attribute_coverage": float(has_attrs[data.items].mean()) if n_inter else 0.0,
        **{f"seq_len_p{q}": float(v) for q, v in zip(QUANTILES, quantiles)},
        "seq_len_histogram": histogram,
    }


def format_statistics(name: str, stats: dict[str, float | int | dict[str, int]]) -> str:
    """A readable two-column table, then the sequence-length histogram (when `stats` has one)."""
    rows = [
        ("users", f"{stats['users']:,}"),
        ("items", f"{stats['items']:,}"),
        ("interactions", f"{stats['interactions']:,}"),
        ("avg. actions / user", f"{stats['avg_actions_per_user']:.2f}"),
        ("avg. actions / item", f"{stats['avg_actions_per_item']:.2f}"),
        ("sparsity", f"{100 * stats['sparsity']:.2f}%"),
        ("attributes", f"{stats['attributes']:,}"),
        ("avg. attributes / item", f"{stats['avg_attributes_per_item']:.2f}"),
        ("items with attributes", f"{stats['items_with_attributes']:,}"),
        ("sequence length min / median / max", f"{stats['min_seq_len']} / {stats['median_seq_len']:g} / {stats['max_seq_len']}"),
    ]
    if "item_attribute_coverage" in stats:
        rows += [
            ("attribute coverage (items)", f"{100 * stats['item_attribute_coverage']:.2f}%"),
            ("attribute coverage (interactions)", f"{100 * stats['interaction_attribute_coverage']:.2f}%"),
            (f"seq. length p{'/'.join(map(str, QUANTILES))}/max",
             " / ".join(f"{stats[f'seq_len_p{q}']:g}" for q in QUANTILES) + f" / {stats['max_seq_len']}"),
        ]
    width = max(len(k) for k, _ in rows)
    lines = [f"data set: {name}"] + [f"  {k:<{width}}  {v}" for k, v in rows]
    if "seq_len_histogram" in stats:
        lines += ["  users by sequence length:"] + _histogram_lines(stats["seq_len_histogram"])
    return "\n".join(lines)


def _histogram_lines(histogram: dict[str, int]) -> list[str]:
    """`label  count  ####` lines for the buckets from the first to the last non-empty one."""
    filled = [i for i, c in enumerate(histogram.values()) if c]
    if not filled:
        return []
    shown = list(histogram.items())[filled[0] : filled[-1] + 1]
    top = max(c for _, c in shown)
    label_w = max(len(k) for k, _ in shown)
    count_w = max(len(f"{c:,}") for _, c in shown)
    return [f"    {k:>{label_w}}  {c:>{count_w},}  {'#' * (-(-c * _BAR_WIDTH // top))}".rstrip() for k, c in shown]
