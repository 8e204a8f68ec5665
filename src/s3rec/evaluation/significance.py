"""Paired significance tests over users (the paper's `*`: p < 0.01), shared by compare and study."""

from __future__ import annotations

import math

import numpy as np


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
