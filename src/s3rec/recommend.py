"""Top-k recommendations from a finished run directory, in the user's own (raw) ids.

A run directory (written by `s3rec run`) holds everything needed: config.json (the model and encoder
settings), model.pt (the weights; its `data` entry gives the vocabulary size), id_maps/ (raw <-> internal
ids) and histories.npz (every user's whole sequence in internal ids, CSR arrays `offsets` (n_users + 1,)
and `items`, row u = row u of id_maps/users.csv). The original data files are not needed, except for
`recommend(users=...)` on an older run without histories.npz: then the data are loaded again through the
saved config (`load_data(config.data)`, the same files at the same paths) and checked against the id maps.

Example::

    from s3rec import Recommender
    rec = Recommender.load("runs/lastfm-s3rec")
    rec.recommend(users=["2", "7"], k=5)                   # known users: their whole sequence is the history
    rec.recommend(histories=[["7", "12"]], k=5)            # anyone, e.g. a new user; raw item ids (LastFM's are numbers)
    # -> [{"user": None, "items": [...], "scores": [...], "unknown_items": []}]

Scoring: the last `encoder.max_len` known items of a history, left-padded, go through `score_all` in
batches; with `exclude_seen` every item of the whole history (not only the last max_len) is excluded.
k is capped at the number of rankable items. Items with equal scores come by ascending internal id (the
order of id_maps/items.csv), so the top k are the first k of the top k + 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from s3rec.config import RunConfig
from s3rec.data.batching import left_pad
from s3rec.data.tables import load_id_maps
from s3rec.errors import DataError, S3RecError
from s3rec.models.base import SequentialRecommender
from s3rec.models.factory import build_model
from s3rec.run_dir import HISTORIES, ID_MAPS, MODEL, read_attributes, read_histories, read_run_config
from s3rec.training.checkpoint import load_checkpoint


@dataclass
class _Query:
    """One resolved input: the user's row (or None) and the history in internal ids."""

    user: Any
    row: int | None
    history: np.ndarray
    unknown: list


class _Vocabulary:
    """What `build_model` reads from a split, without the data: the weights are loaded afterwards."""

    def __init__(self, n_items: int, n_users: int, data: SimpleNamespace):
        self.n_items, self.n_users, self.data = n_items, n_users, data

    def train_counts(self) -> np.ndarray:
        return np.zeros(self.n_items + 1)


class Recommender:
    """A trained model with the run's id maps; see the module docstring for an example."""

    def __init__(self, model: SequentialRecommender, item_ids: Sequence[str], user_ids: Sequence[str], max_len: int,
                 histories: tuple[np.ndarray, np.ndarray] | None = None, config: RunConfig | None = None,
                 run_dir: Path | None = None, batch_size: int = 256, dataset: str | None = None):
        """`item_ids[i]` is the raw id of internal item i (entry 0, padding, is ignored); `user_ids[u]` of row u."""
        self.model = model.eval()
        self.n_items = int(model.n_items)
        self.item_ids = np.asarray([None, *map(str, item_ids[1:])], dtype=object)
        if len(self.item_ids) != self.n_items + 1:
            raise S3RecError(f"the model has {self.n_items} items but the item id map has {len(self.item_ids) - 1}")
        self.user_ids = np.asarray([str(u) for u in user_ids], dtype=object)
        self._item_of = {raw: i for i, raw in enumerate(self.item_ids) if i > 0}
        self._row_of = {raw: u for u, raw in enumerate(self.user_ids)}
        self.max_len = int(max_len)
        self.config, self.run_dir, self.batch_size, self.dataset = config, run_dir, batch_size, dataset
        self._histories = histories

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, run_dir: str | Path, batch_size: int = 256) -> "Recommender":
        """Read config.json, model.pt and id_maps/ of a finished run (histories.npz is read when needed)."""
        run_dir = Path(run_dir)
        cfg = read_run_config(run_dir)
        ck = load_checkpoint(run_dir / MODEL, stage="model")
        maps = load_id_maps(run_dir / ID_MAPS)
        items, users = maps["items"], maps["users"]
        n_items = ck.get("data", {}).get("n_items")
        if not isinstance(n_items, int) or n_items != len(items) or not np.array_equal(items["item"], np.arange(1, n_items + 1)):
            raise S3RecError(f"{run_dir}: model.pt has {n_items} items but id_maps/items.csv lists {len(items)} "
                             "(expected ids 1..n_items); the run directory is inconsistent")
        if not np.array_equal(users["row"], np.arange(len(users))):
            raise DataError("expected rows 0..n_users-1 in order", run_dir / ID_MAPS / "users.csv")
        model = build_model(cfg.model, _Vocabulary(n_items, len(users), read_attributes(run_dir / HISTORIES, n_items)),
                            cfg.encoder, cfg.finetune.loss, cfg.finetune.n_negatives)
        try:
            model.load_state_dict(ck["state_dict"])
        except (RuntimeError, KeyError) as e:
            raise S3RecError(f"{run_dir / 'model.pt'}: weights do not fit the {cfg.model} model of config.json "
                             f"({str(e).splitlines()[0]})") from None
        item_ids = [None, *items["raw_id"].tolist()]
        return cls(model, item_ids, users["raw_id"].tolist(), cfg.encoder.max_len, config=cfg, run_dir=run_dir,
                   batch_size=batch_size, dataset=ck["data"].get("name"))

    def histories(self) -> tuple[np.ndarray, np.ndarray]:
        """CSR (offsets, items) of every known user's whole sequence, internal ids (loaded once)."""
        if self._histories is None:
            self._histories = self._load_histories()
        return self._histories

    def _load_histories(self) -> tuple[np.ndarray, np.ndarray]:
        path = None if self.run_dir is None else self.run_dir / HISTORIES
        if path is not None and path.is_file():
            return read_histories(path, len(self.user_ids), self.n_items)
        if self.config is None:
            raise S3RecError("no histories of known users: pass histories= instead of users=")
        from s3rec.data.loading import load_data

        try:
            data = load_data(self.config.data, progress=False)
        except S3RecError as e:
            raise S3RecError(f"{path} is missing and the run's data could not be loaded to recover the users' "
                             f"histories: {e}") from None
        where = data.source or data.name
        same = (data.n_items == self.n_items and data.n_users == len(self.user_ids)
                and [str(x) for x in data.item_ids[1:]] == list(self.item_ids[1:])
                and [str(x) for x in data.user_ids] == list(self.user_ids))
        if not same:
            raise S3RecError(f"{path} is missing and the data at {where} no longer match the run's id maps")
        return data.offsets.astype(np.int64), data.items.astype(np.int64)

    # ------------------------------------------------------------------ recommending

    def recommend(self, histories: Sequence[Sequence[Any]] | None = None, users: Sequence[Any] | None = None,
                  k: int = 10, exclude_seen: bool = True) -> list[dict]:
        """Top-k items for each history (raw item ids) or each known user (raw user ids).

        Returns one {"user", "items", "scores", "unknown_items"} dict per input, in input order.
        """
        if (histories is None) == (users is None):
            raise S3RecError("give exactly one of histories= or users=")
        check_k(k)
        if histories is not None:
            if isinstance(histories, (str, bytes)):
                raise S3RecError("histories must be a list of lists of item ids")
            queries = [self._with_context(self.history_query, h, f"histories[{i}]") for i, h in enumerate(histories)]
        else:
            if isinstance(users, (str, bytes)):
                raise S3RecError("users must be a list of user ids")
            unknown = [u for u in users if str(u) not in self._row_of]
            if unknown:
                more = f" (and {len(unknown) - 3} more)" if len(unknown) > 3 else ""
                raise S3RecError(f"unknown user{'s' if len(unknown) > 1 else ''} "
                                 f"{', '.join(repr(u) for u in unknown[:3])}{more}")
            queries = [self.user_query(u) for u in users]
        return self.rank(queries, k, exclude_seen)

    @staticmethod
    def _with_context(fn, value, where: str):
        try:
            return fn(value)
        except S3RecError as e:
            raise S3RecError(f"{where}: {e}") from None

    def history_query(self, history: Sequence[Any]) -> _Query:
        """Resolve raw item ids (compared as strings); unknown ones are dropped and reported."""
        if isinstance(history, (str, bytes, dict)) or not hasattr(history, "__iter__"):
            raise S3RecError(f"a history must be a list of item ids, got {type(history).__name__}")
        ids, unknown = [], []
        for position, raw in enumerate(history):
            if isinstance(raw, bool) or not isinstance(raw, (str, int, np.integer)):  # null, 1.5, [1]: not an id
                raise S3RecError(f"item ids are strings or integers, got {_shown(raw)} at position {position}")
            i = self._item_of.get(str(raw))
            if i is None:
                unknown.append(raw)
            else:
                ids.append(i)
        if not ids:
            shown = f" (unknown: {', '.join(map(repr, unknown[:3]))}{', ...' if len(unknown) > 3 else ''})" if unknown else ""
            raise S3RecError(f"history has no known items{shown}")
        return _Query(None, None, np.asarray(ids, dtype=np.int64), unknown)

    def user_query(self, user: Any) -> _Query:
        """A known user's whole sequence as the history."""
        row = self._row_of.get(str(user))
        if row is None:
            raise S3RecError(f"unknown user {user!r}")
        offsets, items = self.histories()
        history = items[offsets[row]: offsets[row + 1]]
        if len(history) == 0:
            raise S3RecError(f"user {user!r}: history has no known items")
        return _Query(self.user_ids[row], row, history, [])

    def rank(self, queries: Sequence[_Query], k: int, exclude_seen: bool = True) -> list[dict]:
        """Score resolved queries in batches and return their top-k (see `recommend`), in input order."""
        check_k(k)
        out: list[dict] = [{}] * len(queries)
        # user-aware models (Caser, HGN, FM, AutoInt) score a known user with the user's embedding and a bare
        # history without one: the two kinds go in separate batches, so neither changes the other's result
        for with_user in (True, False):
            index = [i for i, q in enumerate(queries) if (q.row is not None) == with_user]
            for start in range(0, len(index), self.batch_size):
                part = index[start: start + self.batch_size]
                for i, result in zip(part, self._rank_batch([queries[i] for i in part], k, exclude_seen)):
                    out[i] = result
        return out

    @torch.inference_mode()
    def _rank_batch(self, batch: Sequence[_Query], k: int, exclude_seen: bool) -> list[dict]:
        """Top-k of one batch of queries that all have a user row or all have none."""
        lengths = torch.tensor([len(q.history) for q in batch], dtype=torch.long)
        flat = torch.from_numpy(np.concatenate([[0], *(q.history for q in batch)]).astype(np.int64))  # 0 first: never empty
        ends = torch.cumsum(lengths, 0) + 1
        inputs = left_pad(flat, ends - lengths, ends, self.max_len)  # (B, max_len), the last max_len items
        users = torch.tensor([q.row for q in batch], dtype=torch.long) if batch[0].row is not None else None
        scores = self.model.score_all(inputs, users).float().clone()  # (B, n_items + 1)
        scores[:, 0] = -torch.inf
        rankable = torch.full((len(batch),), self.n_items)
        if exclude_seen:
            rows = torch.repeat_interleave(torch.arange(len(batch)), lengths)
            seen = flat[1:]
            scores[rows, seen] = -torch.inf
            distinct = torch.unique(rows * (self.n_items + 1) + seen) // (self.n_items + 1)  # one entry per (row, item)
            rankable -= torch.bincount(distinct, minlength=len(batch))
        values, index = top_k(scores, min(k, self.n_items))
        n = rankable.clamp(max=k).tolist()
        return [{"user": q.user, "items": self.item_ids[index[b, :n[b]].numpy()].tolist(),
                 "scores": values[b, :n[b]].tolist(), "unknown_items": list(q.unknown)} for b, q in enumerate(batch)]


def _shown(value: Any) -> str:
    """`value` as JSON would write it (null, true, [1]), else its repr."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best (values, indices) of each row, by score, equal scores by ascending index.

    torch.topk orders ties arbitrarily, so a catalogue with equal scores (PopRec's counts) could list
    another item at position 3 when k = 3 than when k = 10; here the top k are a prefix of the top k + 1.
    """
    n = scores.shape[1]
    values, index = torch.topk(scores, min(k + 1, n), dim=1)
    if k < n:
        # rows whose (k+1)-th score equals the k-th: topk may have cut the tie anywhere
        cut = (values[:, k] == values[:, k - 1]).nonzero().squeeze(1)
        values, index = values[:, :k].contiguous(), index[:, :k].contiguous()
        if len(cut):
            row, kth = (scores, values[:, -1:]) if len(cut) == len(scores) else (scores[cut], values[cut, -1:])
            ids = torch.arange(n, dtype=torch.float32 if n < 2**24 else torch.float64)  # exact
            lowest = torch.topk(torch.where(row == kth, -ids, -float(n)), k, dim=1).indices  # tied, lowest first
            above = values[cut] > kth  # (C, k): every item of the row above the k-th score
            needed = torch.arange(k) < k - above.sum(1, keepdim=True)  # (C, k): how many tied ones to add
            picked = torch.cat([torch.where(above, index[cut], -1), torch.where(needed, lowest, -1)], dim=1)
            index[cut] = picked.sort(dim=1, descending=True).values[:, :k]  # the k picked (>= 0) first
            values[cut] = row.gather(1, index[cut])
    index, by_index = index.sort(dim=1)
    values, by_value = values.gather(1, by_index).sort(dim=1, descending=True, stable=True)
    return values, index.gather(1, by_value)


def check_k(k: Any) -> None:
    """S3RecError unless k is a positive integer."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise S3RecError(f"k must be a positive integer, got {k!r}")


def read_requests(path: Path) -> list[tuple[int, str, object]]:
    """(line, "history" | "user", value) of each non-blank line of a JSONL file of {"history": [...]} / {"user": id}
    ("-": standard input); a DataError naming the line otherwise."""
    stdin = str(path) == "-"
    if stdin:
        path = Path("<stdin>")
    elif not path.exists():  # not is_file(): a pipe (/dev/stdin, <(...)) is no regular file but can be read
        raise DataError("file not found", path)
    elif path.is_dir():
        raise DataError("is a folder, expected a JSONL file", path)
    try:
        data = sys.stdin.buffer.read() if stdin else path.read_bytes()
        lines = data.decode("utf-8-sig").splitlines()  # a byte-order mark is not part of the first line
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"not UTF-8 text ({e.reason} at byte {e.start})", path, line) from None
    requests = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"not valid JSON ({e.msg}, column {e.colno})", path, number) from None
        if not isinstance(obj, dict) or len(obj) != 1 or not {"history", "user"} & set(obj):
            raise DataError('expected an object with one key, {"history": [item ids]} or {"user": user id}', path, number)
        key, value = next(iter(obj.items()))
        if key == "history" and not isinstance(value, list):
            raise DataError(f'"history" must be a list of item ids, got {type(value).__name__}', path, number)
        if key == "user" and (isinstance(value, bool) or not isinstance(value, (str, int))):
            raise DataError(f'"user" must be a string or integer id, got {json.dumps(value)}', path, number)
        requests.append((number, key, value))
    if not requests:
        raise DataError("no requests (the file has no non-blank lines)", path)
    return requests
