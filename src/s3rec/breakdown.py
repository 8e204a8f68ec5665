"""Metrics by target popularity or history length: which users' hits a metric counts, where a change comes from.

Users are binned by how often their held-out item occurs in the training parts (items[:-2]) of all
users (`by="popularity"`) or by the length of their history for the split (`by="length"`); each bin
gets the mean of a per-user metric (per_user.npz, averaged over a group's runs first) and, under full
ranking, the geometric mean of the target's rank (1 / per-user MRR). Full-ranking top-k metrics live
in the popular bins, while the sampled protocol also rewards moving long-tail targets from rank 2,000
to 1,500; a breakdown shows which of the two a change did (docs/experiments.md, "Why sampled rises").

    s3rec breakdown --runs runs/pt/ft20-seed* --runs runs/pt/ft40-seed* --names "20 epochs,40 epochs"
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from s3rec.errors import S3RecError
from s3rec.evaluation.metrics import METRIC_NAMES
from s3rec.evaluation.significance import paired_tests, per_user_mean
from s3rec.run_dir import HISTORIES, read_histories

DEFAULT_EDGES = {"popularity": (1, 5, 20, 60), "length": (5, 10, 20, 50)}
BIN_TITLES = {"popularity": "target's training count", "length": "history length"}


@dataclass
class Breakdown:
    """Per-bin values of one metric for groups of runs (the first group is the reference)."""

    split: str
    protocol: str
    metric: str
    by: str  # "popularity" or "length"
    labels: list[str]  # bin labels, e.g. "0", "1-4", "60+"
    users: list[int]  # users per bin
    names: list[str]  # group names
    means: dict[str, list[float]]  # group -> per-bin mean of the metric
    ranks: dict[str, list[float]]  # group -> per-bin geometric-mean rank (1-based; full ranking only)
    share: list[float]  # per bin: the first group's share of the metric's total
    p_values: dict[str, list[float]] = field(default_factory=dict)  # later group -> per-bin paired t-test p vs the first


def user_keys(run_dir: Path, split: str, by: str = "popularity") -> np.ndarray:
    """(U,) what users are binned by, from the run's histories.npz: the training-part occurrences of each
    user's `split` target (popularity) or the length of the user's `split` history (length)."""
    path = Path(run_dir) / HISTORIES
    if not path.is_file():
        raise S3RecError(f"{path}: not found; is {run_dir} a finished run directory? "
                         "(runs from before histories.npz was saved cannot be broken down)")
    offsets, items = read_histories(path)
    starts, ends = offsets[:-1], offsets[1:]
    if np.any(ends - starts < 3):
        raise S3RecError(f"{path}: a user has fewer than 3 items, not a leave-one-out run")
    if by == "length":
        return ends - starts - (2 if split == "valid" else 1)
    in_train = np.ones(len(items), dtype=bool)
    in_train[ends - 1] = in_train[ends - 2] = False
    counts = np.bincount(items[in_train], minlength=int(items.max()) + 1)
    return counts[items[ends - (2 if split == "valid" else 1)]]


def check_paired_runs(run_dirs: list[Path]) -> None:
    """S3RecError unless the runs are distinct and made on the same sequences (their users are paired)."""
    seen: set[Path] = set()
    for d in run_dirs:
        if Path(d).resolve() in seen:
            raise S3RecError(f"{d} is given twice: each run counts once")
        seen.add(Path(d).resolve())
    first = run_dirs[0]
    if not (Path(first) / HISTORIES).is_file():
        return  # user_keys names the missing file
    offsets, items = read_histories(Path(first) / HISTORIES)
    for d in run_dirs[1:]:
        path = Path(d) / HISTORIES
        if path.is_file():
            other = read_histories(path)
            if not (np.array_equal(other[0], offsets) and np.array_equal(other[1], items)):
                raise S3RecError(f"{d} was run on other data than {first} (their histories.npz differ): "
                                 "a breakdown pairs the same users across runs")


def bin_labels(edges: tuple[int, ...]) -> list[str]:
    """'0', '1-4', ..., '60+' for edges (1, 5, 20, 60)."""
    bounds = [0, *edges]
    labels = [f"{a}" if b - a == 1 else f"{a}-{b - 1}" for a, b in zip(bounds, bounds[1:])]
    return labels + [f"{edges[-1]}+"]


def check_edges(edges) -> tuple[int, ...]:
    """Bin edges as strictly increasing positive integers."""
    edges = tuple(int(e) for e in edges)
    if not edges or edges[0] < 1 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise S3RecError(f"--bins must be increasing positive integers, e.g. 1,5,20,60 (got {','.join(map(str, edges))})")
    return edges


def breakdown(groups: dict[str, list[Path]], split: str = "test", protocol: str = "full", metric: str = "NDCG@10",
              edges=None, by: str = "popularity") -> Breakdown:
    """Each group's per-bin mean of `metric`, users binned `by` their target's training count or history length."""
    if not groups or any(not dirs for dirs in groups.values()):
        raise S3RecError("breakdown needs at least one group of run directories")
    if split not in ("test", "valid") or protocol not in ("full", "sampled"):
        raise S3RecError(f"split must be test or valid and protocol full or sampled (got {split}, {protocol})")
    if metric not in METRIC_NAMES:
        raise S3RecError(f"unknown metric {metric!r} (one of {', '.join(METRIC_NAMES)})")
    if by not in BIN_TITLES:
        raise S3RecError(f"unknown breakdown {by!r} (popularity or length)")
    edges = check_edges(DEFAULT_EDGES[by] if edges is None else edges)
    names = list(groups)
    first_dir = groups[names[0]][0]
    check_paired_runs([d for dirs in groups.values() for d in dirs])
    keys = user_keys(first_dir, split, by)
    which = np.searchsorted(np.array(edges), keys, side="right")  # (U,) bin of each user
    values, log_ranks = {}, {}
    for name, dirs in groups.items():
        v = per_user_mean(dirs, f"{split}/{protocol}/{metric}")
        if len(v) != len(keys):
            raise S3RecError(f"{dirs[0]} evaluated {len(v)} users, {first_dir}'s histories hold {len(keys)}: "
                             "were they run on the same data?")
        values[name] = v
        if protocol == "full":  # rank = 1 / MRR; a target that could never be hit (MRR 0) has no rank
            log_ranks[name] = per_user_mean(dirs, f"{split}/full/MRR", lambda a: -np.log(np.where(a > 0, a, np.nan)))
    bins = [which == b for b in range(len(edges) + 1)]
    total = values[names[0]].sum()
    out = Breakdown(split, protocol, metric, by, bin_labels(edges), [int(b.sum()) for b in bins], names,
                    {n: [_mean(values[n][b]) for b in bins] for n in names},
                    {n: [math.exp(_mean(log_ranks[n][b], nan_ok=True)) for b in bins] for n in log_ranks},
                    [float(values[names[0]][b].sum() / total) if total > 0 else math.nan for b in bins])
    for n in names[1:]:
        out.p_values[n] = [paired_tests(values[n][b], values[names[0]][b])[0] if b.sum() > 1 else math.nan for b in bins]
    return out


def _mean(a: np.ndarray, nan_ok: bool = False) -> float:
    """Mean of a bin's values (NaN for an empty bin; NaNs ignored where nan_ok)."""
    a = a[~np.isnan(a)] if nan_ok else a
    return float(a.mean()) if len(a) else math.nan


def format_breakdown(b: Breakdown) -> str:
    """Markdown table: per bin the users, the first group's share, each group's metric and rank, changes."""
    ref = b.names[0]
    head = [BIN_TITLES[b.by], "users", f"share of the {b.metric} total ({ref})"]
    for n in b.names:
        head.append(f"{n}: {b.metric}")
        if n in b.ranks:
            head.append(f"{n}: rank")
    for n in b.names[1:]:
        head += [f"{n} vs {ref}", "p"]
    note = "; rank: geometric mean of the target's rank (1 = top)" if b.ranks else ""
    if len(b.names) > 1:
        note += f"; vs {ref}: relative change (absolute, marked abs., where {ref}'s value is 0)"
    lines = [f"{b.split} split, {b.protocol} ranking{note}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, label in enumerate(b.labels):
        cells = [label, f"{b.users[i]:,}", _pct(b.share[i])]
        for n in b.names:
            cells.append(_num(b.means[n][i]))
            if n in b.ranks:
                cells.append("–" if math.isnan(b.ranks[n][i]) else f"{b.ranks[n][i]:,.0f}")
        for n in b.names[1:]:
            cells += [_change(b.means[n][i], b.means[ref][i]), _p(b.p_values[n][i])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _num(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.4f}"


def _p(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.2g}"


def _pct(x: float) -> str:
    return "–" if math.isnan(x) else f"{100 * x:.1f}%"


def _change(new: float, old: float) -> str:
    if math.isnan(new) or math.isnan(old):
        return "–"
    return f"{new - old:+.4f} (abs.)" if old == 0 else f"{100 * (new / old - 1):+.1f}%"  # no ratio to a zero
