"""The paper's Table 1 statistics of a data set."""

from __future__ import annotations

import numpy as np

from s3rec.data.dataset import SequenceData


def dataset_statistics(data: SequenceData) -> dict[str, float | int]:
    """Users, items, interactions, averages, sparsity and attribute figures (paper Table 1)."""
    n_users, n_items, n_inter = data.n_users, data.n_items, len(data.items)
    items_with_attrs = int((data.item_attribute_counts()[1:] > 0).sum())
    lengths = data.lengths
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
    }


def format_statistics(name: str, stats: dict[str, float | int]) -> str:
    """A readable two-column table."""
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
    width = max(len(k) for k, _ in rows)
    return "\n".join([f"data set: {name}"] + [f"  {k:<{width}}  {v}" for k, v in rows])
