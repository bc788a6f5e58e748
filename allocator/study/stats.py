"""The study's statistics: per-strategy summaries, paired differences with a path bootstrap, and
out-of-sample parameter selection by path folds.

Orders on one path share its price moves, so they are not independent: the confidence interval of a paired
difference resamples whole paths (a cluster bootstrap), never single orders, and the parameter choice for a
fold is made on the other folds' paths only. Shortfalls are in bps against the arrival mid, positive = a
cost, so lower is better and a negative router − baseline difference means the router did better.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
DEFAULT_RESAMPLES = 10_000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class StrategyStats:
    """The distribution of one strategy's shortfall over the orders (bps)."""

    mean_bps: float
    median_bps: float
    std_bps: float  # sample standard deviation (n − 1); 0 for a single order
    p5_bps: float
    p95_bps: float
    n: int


@dataclass(frozen=True)
class PairedStats:
    """Router − baseline over the same orders: the mean, its path-bootstrap CI, and how often the router won."""

    mean_bps: float
    ci95: tuple[float, float]
    win_rate: float  # share of orders where the router's shortfall was strictly lower
    n: int
    paths: int


def strategy_stats(shortfall_bps: Sequence[float] | FloatArray) -> StrategyStats:
    values = _finite(shortfall_bps, "shortfall")
    return StrategyStats(
        mean_bps=float(values.mean()),
        median_bps=float(np.median(values)),
        std_bps=float(values.std(ddof=1)) if values.size > 1 else 0.0,
        p5_bps=float(np.percentile(values, 5)),
        p95_bps=float(np.percentile(values, 95)),
        n=int(values.size),
    )


def path_bootstrap_means(
    values: Sequence[float] | FloatArray,
    paths: Sequence[object],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> FloatArray:
    """Bootstrap distribution of the order-weighted mean: each resample draws as many paths as there are,
    with replacement, and averages every order of the drawn paths (a path drawn twice counts twice)."""
    x = _finite(values, "difference")
    labels = np.asarray(paths, dtype=object)
    if labels.shape != x.shape:
        raise ValueError(f"{x.size} values but {labels.size} path labels")
    _, path_of = np.unique(labels, return_inverse=True)
    sums = np.bincount(path_of, weights=x)
    counts = np.bincount(path_of).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(sums), np.full(len(sums), 1.0 / len(sums)), size=resamples).astype(np.float64)
    means: FloatArray = (draws @ sums) / (draws @ counts)
    return means


def paired(
    router_bps: Sequence[float] | FloatArray,
    baseline_bps: Sequence[float] | FloatArray,
    paths: Sequence[object],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedStats:
    """Router − baseline order by order (same orders, same order), with a percentile CI by path bootstrap."""
    router, baseline = _finite(router_bps, "router shortfall"), _finite(baseline_bps, "baseline shortfall")
    if router.shape != baseline.shape:
        raise ValueError(f"{router.size} router orders but {baseline.size} baseline orders")
    diff = router - baseline
    means = path_bootstrap_means(diff, paths, resamples, seed)
    tail = (1 - CONFIDENCE) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return PairedStats(
        mean_bps=float(diff.mean()),
        ci95=(float(lo), float(hi)),
        win_rate=float(np.mean(router < baseline)),
        n=int(diff.size),
        paths=len(set(paths)),
    )


def path_folds(paths: Sequence[object], k: int, seed: int = 0) -> dict[object, int]:
    """Each distinct path → a fold in 0..k−1: paths shuffled by `seed`, then dealt round-robin, so fold
    sizes differ by at most one path and every order of a path is in the same fold."""
    distinct = sorted(set(paths), key=str)
    if not 2 <= k <= len(distinct):
        raise ValueError(f"k-fold by path needs 2 ≤ k ≤ {len(distinct)} paths, got k = {k}")
    order = np.random.default_rng(seed).permutation(len(distinct))
    return {distinct[i]: position % k for position, i in enumerate(order)}


@dataclass(frozen=True)
class Selection:
    """The grid point chosen for each fold on the other folds' paths, and the in-sample best for contrast."""

    chosen: list[int]  # by fold: index into the grid points
    in_sample_best: int


def select_out_of_sample(
    costs_bps: FloatArray, paths: Sequence[object], fold_of_path: Mapping[Any, int]
) -> Selection:
    """`costs_bps[point, order]`: each fold's choice minimises the mean over the *training* orders (every
    path outside the fold); ties go to the earlier grid point, as in the single-run search."""
    costs = np.asarray(costs_bps, dtype=np.float64)
    if costs.ndim != 2 or costs.shape[1] != len(paths):
        raise ValueError(f"costs must be [points, orders] with {len(paths)} orders, got shape {costs.shape}")
    fold = np.array([fold_of_path[p] for p in paths])
    chosen = []
    for f in range(max(fold_of_path.values()) + 1):
        train = fold != f
        chosen.append(int(np.argmin(costs[:, train].mean(axis=1))))
    return Selection(chosen=chosen, in_sample_best=int(np.argmin(costs.mean(axis=1))))


def _finite(values: Sequence[float] | FloatArray, what: str) -> FloatArray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{what}: need a non-empty 1-d sequence")
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: every value must be finite")
    return x
