"""The in-memory data set: user sequences and item attributes as flat (CSR) arrays.

Item ids are 1..n_items (0 is padding); attribute ids are 1..n_attributes (0 is padding).
Users are rows 0..n_users-1. Raw ids (the user's own) are kept so results can be reported in them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SequenceData:
    """Time-ordered item sequences per user plus multi-valued item attributes.

    Args:
        name: data set name (used in run directories and metrics).
        offsets: (n_users + 1,) int64; user u's items are items[offsets[u]:offsets[u+1]], oldest first.
        items: (n_interactions,) int64 item ids in 1..n_items.
        n_items: number of items (the largest item id).
        attr_offsets: (n_items + 1,) int64; item i's attributes are attr_values[attr_offsets[i-1]:attr_offsets[i]]
            for i >= 1 (row 0 of the CSR belongs to item 1). Empty when the set has no attributes.
        attr_values: attribute ids in 1..n_attributes.
        n_attributes: number of attributes (the largest attribute id).
        user_ids: (n_users,) raw user ids.
        item_ids: (n_items + 1,) raw item ids; entry 0 (padding) is None.
        attribute_names: (n_attributes + 1,) raw attribute names or None.
        fixed_negatives: optional (n_users, K) item ids for the sampled protocol (e.g. `Name_sample.txt`).
        source: where the data came from (for messages and configs).
    """

    name: str
    offsets: np.ndarray
    items: np.ndarray
    n_items: int
    attr_offsets: np.ndarray
    attr_values: np.ndarray
    n_attributes: int
    user_ids: np.ndarray
    item_ids: np.ndarray
    attribute_names: np.ndarray | None = None
    fixed_negatives: np.ndarray | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        self.items = np.asarray(self.items, dtype=np.int64)
        self.attr_offsets = np.asarray(self.attr_offsets, dtype=np.int64)
        self.attr_values = np.asarray(self.attr_values, dtype=np.int64)
        if len(self.attr_offsets) == 0:
            self.attr_offsets = np.zeros(self.n_items + 1, dtype=np.int64)

    def __repr__(self) -> str:  # the dataclass's would print every array
        return (f"SequenceData(name={self.name!r}, users={self.n_users:,}, items={self.n_items:,}, "
                f"interactions={len(self.items):,}, attributes={self.n_attributes:,}, source={self.source!r})")

    @property
    def n_users(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def sequence(self, user: int) -> np.ndarray:
        """Items of row `user`, oldest first."""
        return self.items[self.offsets[user] : self.offsets[user + 1]]

    def attributes_of(self, item: int) -> np.ndarray:
        """Attribute ids of item `item` (1-based)."""
        return self.attr_values[self.attr_offsets[item - 1] : self.attr_offsets[item]]

    def item_attribute_counts(self) -> np.ndarray:
        """(n_items + 1,) number of attributes per item id (entry 0 = padding = 0)."""
        return np.concatenate([[0], np.diff(self.attr_offsets)])

    def with_sequences(self, offsets: np.ndarray, items: np.ndarray) -> "SequenceData":
        """A copy with other sequences for the same users."""
        return SequenceData(
            name=self.name, offsets=offsets, items=items, n_items=self.n_items,
            attr_offsets=self.attr_offsets, attr_values=self.attr_values, n_attributes=self.n_attributes,
            user_ids=self.user_ids, item_ids=self.item_ids, attribute_names=self.attribute_names,
            fixed_negatives=self.fixed_negatives, source=self.source, extra=dict(self.extra),
        )


def csr_from_lists(lists: list[np.ndarray] | list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, values) of a list of integer lists."""
    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists]) if len(lists) else np.zeros(0, np.int64)
    return offsets, values.astype(np.int64)
