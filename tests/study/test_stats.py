"""The study's statistics against hand-computed cases: summaries, the path bootstrap, out-of-sample choice."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.study.stats import (
    paired,
    path_bootstrap_means,
    path_folds,
    select_out_of_sample,
    strategy_stats,
)


def test_strategy_summary_by_hand():
    s = strategy_stats([1.0, 2.0, 3.0, 4.0, 10.0])
    assert (s.mean_bps, s.median_bps, s.n) == (4.0, 3.0, 5)
    assert s.std_bps == pytest.approx(np.sqrt((9 + 4 + 1 + 0 + 36) / 4))  # deviations from 4, n − 1
    assert s.p5_bps == pytest.approx(1.2) and s.p95_bps == pytest.approx(8.8)  # linear interpolation


def test_two_paths_bootstrap_distribution_and_ci_by_hand():
    # Path A: two orders with difference 1; path B: one order with difference 3. Drawing two paths with
    # replacement: (A, A) → mean 1 with probability 1/4, (B, B) → 3 with 1/4, one of each → (1+1+3)/3 = 5/3
    # with 1/2. So the 95 % percentile interval is [1, 3] and the point estimate is 5/3.
    router, baseline, paths = [2.0, 2.0, 5.0], [1.0, 1.0, 2.0], ["A", "A", "B"]
    means = path_bootstrap_means(np.subtract(router, baseline), paths, resamples=40_000, seed=1)
    values, counts = np.unique(np.round(means, 9), return_counts=True)
    np.testing.assert_allclose(values, [1.0, round(5 / 3, 9), 3.0])
    np.testing.assert_allclose(counts / counts.sum(), [0.25, 0.5, 0.25], atol=0.01)
    result = paired(router, baseline, paths, resamples=40_000, seed=1)
    assert result.mean_bps == pytest.approx(5 / 3)
    assert result.ci95 == pytest.approx((1.0, 3.0))
    assert (result.win_rate, result.n, result.paths) == (0.0, 3, 2)  # router costlier on every order


def test_win_rate_counts_strict_wins_only():
    result = paired([1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 1.0, 5.0], ["a", "b", "c", "d"], resamples=100)
    assert result.win_rate == 0.5  # orders 1 and 4 won, order 2 tied


def test_resampling_is_by_path_not_by_order():
    # Every order on a path has the path's difference. Resampled by path, 50 copies per path carry no
    # more information than one: the interval is the same as with one order per path. An order-level
    # bootstrap would shrink it about seven-fold (√50).
    per_path = np.array([-2.0, 0.5, 1.0, 3.0, -1.0, 2.5])
    one = paired(per_path, np.zeros(6), list(range(6)), seed=3)
    many = paired(np.repeat(per_path, 50), np.zeros(300), list(np.repeat(range(6), 50)), seed=3)
    assert many.ci95 == pytest.approx(one.ci95)
    assert many.mean_bps == pytest.approx(one.mean_bps)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-50, 50), min_size=2, max_size=30),
    st.integers(1, 5),
    st.integers(0, 2**31 - 1),
)
def test_bootstrap_means_stay_within_the_range_of_path_means(values, paths_count, seed):
    paths = [i % paths_count for i in range(len(values))]
    means = path_bootstrap_means(values, paths, resamples=200, seed=seed)
    per_path = [np.mean([v for v, p in zip(values, paths, strict=True) if p == q]) for q in set(paths)]
    assert means.min() >= min(per_path) - 1e-9 and means.max() <= max(per_path) + 1e-9


def test_folds_keep_each_path_whole_and_balanced():
    paths = [f"p{i // 3}" for i in range(30)]  # 10 paths × 3 orders
    folds = path_folds(paths, k=4, seed=7)
    assert set(folds) == set(paths) and sorted(np.bincount(list(folds.values()))) == [2, 2, 3, 3]
    assert path_folds(paths, k=4, seed=7) == folds  # reproducible
    with pytest.raises(ValueError, match="2 ≤ k ≤ 10"):
        path_folds(paths, k=11)


def test_out_of_sample_choice_by_hand_and_blind_to_test_paths():
    # Two grid points, four paths (one order each), two folds: {A, B} and {C, D}.
    paths = ["A", "B", "C", "D"]
    folds = {"A": 0, "B": 0, "C": 1, "D": 1}
    costs = np.array([[0.0, 0.0, 9.0, 9.0], [5.0, 5.0, 1.0, 1.0]])
    chosen = select_out_of_sample(costs, paths, folds)
    # fold 0 is trained on C, D (point 1 is cheaper there), fold 1 on A, B (point 0 is cheaper there)
    assert chosen.chosen == [1, 0]
    assert chosen.in_sample_best == 1  # overall means 4.5 and 3.0


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_a_folds_choice_never_sees_its_own_paths(seed):
    rng = np.random.default_rng(seed)
    paths = [f"p{i % 8}" for i in range(40)]
    folds = path_folds(paths, k=4, seed=seed)
    costs = rng.normal(size=(6, 40))
    before = select_out_of_sample(costs, paths, folds).chosen
    for f in range(4):
        scrambled = costs.copy()
        test = np.array([folds[p] == f for p in paths])
        scrambled[:, test] = rng.normal(scale=100, size=(6, int(test.sum())))  # rewrite the test paths
        assert select_out_of_sample(scrambled, paths, folds).chosen[f] == before[f]


def test_ties_go_to_the_earlier_grid_point():
    chosen = select_out_of_sample(np.ones((3, 4)), ["a", "b", "c", "d"], {"a": 0, "b": 0, "c": 1, "d": 1})
    assert chosen.chosen == [0, 0] and chosen.in_sample_best == 0


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="every value must be finite"):
        strategy_stats([1.0, float("nan")])
    with pytest.raises(ValueError, match="3 router orders but 2 baseline orders"):
        paired([1.0, 2.0, 3.0], [1.0, 2.0], ["a", "b", "c"])
    with pytest.raises(ValueError, match="2 values but 3 path labels"):
        path_bootstrap_means([1.0, 2.0], ["a", "b", "c"])
