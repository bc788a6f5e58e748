"""The outflow estimator: its samples keep the history's mean and variance, scaled to the horizon, within
sampling error; blocks keep short-range dependence; the router's samples come from history seen before t."""

from __future__ import annotations

import numpy as np
import pytest

from allocator.allocation.outflow import block_bootstrap, block_length, increment_step, increment_times

PER_HORIZON = 30  # a 30 s horizon of 1 s increments


def bootstrap_moments(increments: np.ndarray, per_horizon: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact mean and variance of one bootstrap sum given the history (per_horizon a multiple of the
    block): blocks are independent draws of the m circular block sums."""
    m = increments.shape[0]
    rows = (np.arange(m)[:, None] + np.arange(block)[None, :]) % m
    sums = increments[rows].sum(axis=1)  # (m, K) circular block sums
    blocks = per_horizon // block
    return blocks * sums.mean(axis=0), blocks * sums.var(axis=0)


def correlated_history(rng: np.random.Generator, m: int) -> np.ndarray:
    """Two venues' per-second outflow with a common burst factor (cross-venue dependence)."""
    common = rng.gamma(0.5, 200.0, size=m)
    return np.column_stack([common + rng.gamma(1.0, 80.0, size=m), 0.5 * common + rng.gamma(2.0, 30.0, m)])


def test_samples_match_the_bootstrap_law_exactly_in_mean_and_variance():
    rng = np.random.default_rng(1)
    history = correlated_history(rng, 92)  # the shipped file's 92 s
    n = 40_000
    samples = block_bootstrap(history, PER_HORIZON, n, 5, np.random.default_rng(2))
    mean, var = bootstrap_moments(history, PER_HORIZON, 5)
    # the mean is the history's own mean scaled to the horizon: the circular bootstrap is unbiased for it
    np.testing.assert_allclose(mean, PER_HORIZON * history.mean(axis=0), rtol=1e-12)
    se_mean = np.sqrt(var / n)
    assert (np.abs(samples.mean(axis=0) - mean) < 4 * se_mean).all()
    fourth = ((samples - samples.mean(axis=0)) ** 4).mean(axis=0)
    se_var = np.sqrt((fourth - var**2) / n)
    assert (np.abs(samples.var(axis=0) - var) < 4 * se_var).all()


def test_independent_history_scales_its_variance_with_the_horizon():
    rng = np.random.default_rng(3)
    history = correlated_history(rng, 3_000)
    n = 20_000
    samples = block_bootstrap(history, PER_HORIZON, n, 5, np.random.default_rng(4))
    target_mean = PER_HORIZON * history.mean(axis=0)
    target_var = PER_HORIZON * history.var(axis=0)  # independent increments: variance adds up
    se_mean = np.sqrt(target_var / n)
    assert (np.abs(samples.mean(axis=0) - target_mean) < 4 * se_mean).all()
    # sampling error of the bootstrap variance (n draws) plus the block-sum estimate's own (m / b blocks)
    relative_se = np.sqrt(2 / n) + np.sqrt(2 * 5 / 3_000) * 2
    assert (np.abs(samples.var(axis=0) / target_var - 1) < 4 * relative_se).all()
    # cross-venue dependence is kept: the correlation of the samples is the history's
    history_corr = np.corrcoef(history.T)[0, 1]
    assert np.corrcoef(samples.T)[0, 1] == pytest.approx(history_corr, abs=0.03)


def test_blocks_keep_the_dependence_that_single_draws_lose():
    # Bursty outflow: the rate switches between quiet and busy regimes (switch probability 0.3 a second,
    # correlation 0.4^lag), so horizon sums vary more than independent seconds would. The variance of
    # non-overlapping 30 s sums of a long history is the truth; 5 s blocks recover it up to the dependence
    # beyond 5 s (measured: 0.89 of it), single seconds (block = 1) only about half (0.48).
    rng = np.random.default_rng(5)
    m = 30_000
    busy = np.zeros(m, dtype=bool)
    for i in range(1, m):
        busy[i] = busy[i - 1] if rng.random() > 0.3 else not busy[i - 1]
    history = rng.poisson(np.where(busy, 400.0, 40.0)).astype(float)[:, None]
    truth = history[: m // PER_HORIZON * PER_HORIZON].reshape(-1, PER_HORIZON).sum(axis=1).var()
    blocks = block_bootstrap(history, PER_HORIZON, 20_000, 5, np.random.default_rng(6)).var()
    singles = block_bootstrap(history, PER_HORIZON, 20_000, 1, np.random.default_rng(6)).var()
    truth_se = truth * np.sqrt(2 / (m // PER_HORIZON))
    assert abs(blocks - truth) < 3 * truth_se + 0.1 * truth  # the block misses the dependence beyond 5 s
    assert singles < 0.6 * truth  # independent draws understate the risk of a slow horizon


def test_increment_grid_divides_the_horizon_and_never_looks_ahead():
    assert increment_step(30_000_000_000) == (1_000_000_000, 30)
    assert increment_step(2_500_000_000) == (833_333_333, 3)
    assert increment_step(400_000_000) == (400_000_000, 1)
    assert block_length(1_000_000_000) == 5
    edges = increment_times(t=100_000, history_start=0, step_ns=1_000, lookback_ns=50_000)
    assert edges[-1] == 100_000 and edges[0] == 50_000 and (np.diff(edges) == 1_000).all()
    assert increment_times(t=500, history_start=0, step_ns=1_000, lookback_ns=50_000).size == 1


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="increments"):
        block_bootstrap(np.empty((0, 2)), 30, 10, 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="horizon"):
        increment_step(0)
