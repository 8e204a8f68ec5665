"""Synthetic data with planted sequential and attribute structure, for tests and scale benchmarks.

Planted structure (all of it recoverable from the interactions and attributes alone):
  topics      item i belongs to topic i mod T (T = n_topics).
  attributes  every item has its topic's attribute (ids 1..T) and, with probability 1/2, one
              random extra attribute (ids T+1..A, noise that carries no signal).
  successor   every item has one fixed successor in its own topic (a random cycle per topic).
  users       each user has a favourite topic; the first item is a random item of it; each next
              item is the successor of the previous item with probability p_next, else a random
              item of the favourite topic with probability p_topic, else a uniform random item.
  lengths     5 + Poisson(avg_len - 5) interactions per user.
So about p_next of all transitions go to the previous item's planted successor (chance: 1/n_items),
and consecutive items share their topic attribute far more often than 1/T.

Generation is vectorised with numpy: a loop over positions, over blocks of users, so memory stays
linear in the number of interactions (1M users x 20 interactions: a few seconds, ~0.5 GB).
"""

from __future__ import annotations

import numpy as np

from s3rec.data.dataset import SequenceData

_USER_BLOCK = 1 << 16  # users generated at once: bounds the (block, max length) work array


def make_synthetic(n_users: int = 1000, n_items: int = 500, avg_len: float = 20.0, n_attributes: int = 40,
                   n_topics: int = 20, p_next: float = 0.6, p_topic: float = 0.3, seed: int = 0,
                   name: str = "synthetic") -> SequenceData:
    """A SequenceData with planted item -> next item, user -> topic and item -> attribute structure.

    The planted successor of every item id is kept in `data.extra["successor"]` ((n_items + 1,), entry 0 unused).
    """
    if n_users < 1 or n_items < 2 * n_topics or n_topics < 1 or n_attributes < n_topics:
        raise ValueError("need n_users >= 1, n_topics >= 1, n_items >= 2 * n_topics and n_attributes >= n_topics")
    if not (0 <= p_next and 0 <= p_topic and p_next + p_topic <= 1):
        raise ValueError("need p_next >= 0, p_topic >= 0 and p_next + p_topic <= 1")
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
    blocks = [_walk(rng, fav[lo : lo + _USER_BLOCK], lengths[lo : lo + _USER_BLOCK], successor, topic_table,
                    topic_size, n_items, p_next, p_topic) for lo in range(0, n_users, _USER_BLOCK)]
    offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])

    extra = np.where(rng.random(n_items) < 0.5, n_topics + 1 + rng.integers(0, max(n_attributes - n_topics, 1), n_items), 0)
    extra = np.where(n_attributes > n_topics, extra, 0)
    # item i's attributes: [topic + 1] then the extra one if any (CSR row i - 1)
    counts = 1 + (extra > 0)
    attr_offsets = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(counts, out=attr_offsets[1:])
    attr_values = np.empty(attr_offsets[-1], dtype=np.int64)
    attr_values[attr_offsets[:-1]] = topic + 1
    attr_values[attr_offsets[:-1][extra > 0] + 1] = extra[extra > 0]
    item_ids = np.concatenate([[None], items.astype(str).astype(object)])
    return SequenceData(name=name, offsets=offsets, items=np.concatenate(blocks), n_items=n_items,
                        attr_offsets=attr_offsets, attr_values=attr_values, n_attributes=n_attributes,
                        user_ids=np.arange(n_users).astype(str).astype(object), item_ids=item_ids,
                        source=f"synthetic(seed={seed})", extra={"successor": successor})


def _walk(rng: np.random.Generator, fav: np.ndarray, lengths: np.ndarray, successor: np.ndarray,
          topic_table: np.ndarray, topic_size: np.ndarray, n_items: int, p_next: float, p_topic: float) -> np.ndarray:
    """Flat item sequences of one block of users (the random walk of the module header)."""
    n = len(fav)
    seq = np.zeros((n, lengths.max()), dtype=np.int64)
    seq[:, 0] = topic_table[fav, rng.integers(0, topic_size[fav])]
    for t in range(1, lengths.max()):
        u = rng.random(n)
        in_topic = topic_table[fav, rng.integers(0, topic_size[fav])]
        uniform = rng.integers(1, n_items + 1, size=n)
        seq[:, t] = np.where(u < p_next, successor[seq[:, t - 1]], np.where(u < p_next + p_topic, in_topic, uniform))
    return seq[np.arange(seq.shape[1]) < lengths[:, None]]


def successor_share(offsets: np.ndarray, items: np.ndarray, successor: np.ndarray | None = None) -> float:
    """Share of within-user transitions a -> b that go to a's successor.

    With `successor` given, the planted one; without, each item's most frequent next item in the data
    (what a learner could find; works on data read back through any loader, whatever its ids).
    """
    same_user = np.ones(len(items), dtype=bool)
    same_user[offsets[1:-1] - 1] = False  # the last item of a user has no next item in that user
    same_user[-1] = False
    a, b = items[:-1][same_user[:-1]], items[1:][same_user[:-1]]
    if len(a) == 0:
        return 0.0
    if successor is not None:
        return float(np.mean(successor[a] == b))
    pairs, counts = np.unique(a * (int(items.max()) + 1) + b, return_counts=True)
    first = np.flatnonzero(np.r_[True, np.diff(pairs // (int(items.max()) + 1)) != 0])
    return float(np.maximum.reduceat(counts, first).sum() / len(a))
