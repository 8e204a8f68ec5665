"""Paired significance tests over users (the paper's `*`: p < 0.01) and the per-user values they compare,
shared by compare, study and breakdown."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from s3rec.config import EvalConfig
from s3rec.errors import S3RecError


def paired_tests(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sided p-values (paired t-test, Wilcoxon signed-rank) of per-user values a vs b."""
    from scipy import stats  # here, not at the top: the CLI parser imports this module at every start

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(d) < 2:
        return math.nan, math.nan
    if not np.any(d):
        return 1.0, 1.0  # identical: no evidence of a difference (both tests are undefined here)
    if np.allclose(d, d[0], rtol=1e-9, atol=1e-12):
        p_t = 0.0  # a constant non-zero difference (up to rounding): zero variance, t is infinite
    else:
        p_t = float(stats.ttest_rel(a, b).pvalue)
    return p_t, float(stats.wilcoxon(d).pvalue)  # zero differences are dropped (Wilcoxon's own rule)


def _per_user_values(path: Path, key: str) -> np.ndarray | None:
    with np.load(path) as npz:
        return np.asarray(npz[key], dtype=float) if key in npz.files else None


def per_user_mean(run_dirs: list[Path], key: str, transform=None) -> np.ndarray:
    """(U,) each user's `key` (e.g. "test/full/NDCG@10"), after `transform`, averaged over the runs.

    Read from per_user.npz, or, for a protocol the run itself did not measure, from the evaluation-<protocol>.npz
    that `s3rec evaluate --protocol P` wrote beside it (the run's own negatives and history exclusion).
    """
    arrays = []
    for d in run_dirs:
        path = Path(d) / "per_user.npz"
        try:
            a = _per_user_values(path, key)
        except (FileNotFoundError, NotADirectoryError):  # NotADirectory: a glob also matched a file (run.log)
            raise S3RecError(f"{path}: not found; is {d} a finished run directory?") from None
        if a is None:
            protocol = key.split("/")[1]
            other = Path(d) / (EvalConfig(protocol=protocol).file_stem() + ".npz")
            a = _per_user_values(other, key) if other.is_file() else None
            if a is None:
                raise S3RecError(f"{path}: has no per-user values {key!r}, and there is no {other.name} beside it "
                                 f"(`s3rec evaluate --run {d} --protocol {protocol}` writes one)")
        arrays.append(a if transform is None else transform(a))
    if len({len(a) for a in arrays}) > 1:
        raise S3RecError(f"the runs {', '.join(map(str, run_dirs))} evaluated different numbers of users")
    return np.mean(arrays, axis=0)
