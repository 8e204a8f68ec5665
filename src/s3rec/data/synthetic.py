"""Synthetic data with planted sequential and attribute structure, for tests and scale benchmarks.

Items are split into `n_topics` topics (item i has topic i mod n_topics). Attributes: the topic's
attribute (ids 1..n_topics) always, plus one random extra attribute (ids n_topics+1..A) with
probability 1/2. Each item has a fixed successor in its topic (a random cycle per topic). A user
has a favourite topic; each next item is the successor of the previous item with probability
`p_next`, else a random item of the favourite topic with probability `p_topic`, else uniform.
Lengths are 5 + Poisson(avg_len - 5). Generation is vectorised over users (a loop over positions).
"""

from __future__ import annotations

import numpy as np

from s3rec.data.dataset import SequenceData, csr_from_lists


def make_synthetic(n_users: int = 1000, n_items: int = 500, avg_len: float = 20.0, n_attributes: int = 40,
                   n_topics: int = 20, p_next: float = 0.6, p_topic: float = 0.3, seed: int = 0,
                   name: str = "synthetic") -> SequenceData:
    """A SequenceData with planted item -> next item, user -> topic and item -> attribute structure."""
    if n_items < 2 * n_topics or n_attributes < n_topics:
        raise ValueError("need n_items >= 2 * n_topics and n_attributes >= n_topics")
    rng = np.random.default_rng(seed)
    items = np.arange(1, n_items + 1)
    topic = items % n_topics
    successor = np.zeros(n_items + 1, dtype=np.int64)
    for t in range(n_topics):  # one random cycle through each topic's items
        members = rng.permutation(items[topic == t])
        successor[members] = np.roll(members, -1)
    by_topic = [items[topic == t] for t in range(n_topics)]
    topic_size = np.array([len(m) for m in by_topic])
    topic_table = np.zeros((n_topics, topic_size.max()), dtype=np.int64)
    for t, m in enumerate(by_topic):
        topic_table[t, : len(m)] = m

    lengths = 5 + rng.poisson(max(avg_len - 5, 0), size=n_users)
    fav = rng.integers(0, n_topics, size=n_users)
    seq = np.zeros((n_users, lengths.max()), dtype=np.int64)
    seq[:, 0] = topic_table[fav, rng.integers(0, topic_size[fav])]
    for t in range(1, lengths.max()):
        u = rng.random(n_users)
        in_topic = topic_table[fav, rng.integers(0, topic_size[fav])]
        uniform = rng.integers(1, n_items + 1, size=n_users)
        seq[:, t] = np.where(u < p_next, successor[seq[:, t - 1]], np.where(u < p_next + p_topic, in_topic, uniform))
    keep = np.arange(seq.shape[1]) < lengths[:, None]
    offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])

    extra = np.where(rng.random(n_items) < 0.5, n_topics + 1 + rng.integers(0, max(n_attributes - n_topics, 1), n_items), 0)
    extra = np.where(n_attributes > n_topics, extra, 0)
    attr_lists = [[topic[i] + 1] + ([int(extra[i])] if extra[i] else []) for i in range(n_items)]
    attr_offsets, attr_values = csr_from_lists(attr_lists)
    item_ids = np.array([None] + [str(i) for i in items], dtype=object)
    return SequenceData(name=name, offsets=offsets, items=seq[keep], n_items=n_items, attr_offsets=attr_offsets,
                        attr_values=attr_values, n_attributes=n_attributes,
                        user_ids=np.array([str(u) for u in range(n_users)], dtype=object), item_ids=item_ids,
                        source=f"synthetic(seed={seed})")
