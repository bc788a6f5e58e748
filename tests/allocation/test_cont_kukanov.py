"""Tests for allocator.allocation.cont_kukanov: exact projection, cost and subgradient, closed form, and the SA solver.

Every reference here is independent of the code under test. The projection is checked against an
active-set enumeration over all faces of C, and against the variational inequality that characterises
a projection. The closed form is checked against an exhaustive minimisation over every kink of the
piecewise-linear empirical cost. The SA is checked against the closed form (one venue) and against a
grid search over C (two venues).
"""

# ruff: noqa: N803, N806 - S (target) and Q (queue ahead) are the paper's symbols; lower-casing them hurts

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.allocation.cont_kukanov import (
    Params,
    _empirical_quantile,
    _StepRule,
    closed_form_single_venue,
    cost_subgradient,
    critical_ratio,
    expected_cost,
    gradient_bound,
    paper_step_size,
    project,
    sample_costs,
    solve_sa,
)

# ---------------------------------------------------------------------------------------------------------
# helpers


def feasibility_gap(x: np.ndarray, S: float) -> float:
    """Largest violation of any constraint of C (0 when feasible)."""
    mkt, lim = x[0], x[1:]
    gaps = [-mkt, mkt - S, *(-lim), *(lim - (S - mkt)), S - mkt - lim.sum()]
    return max(0.0, *gaps)


def random_feasible(rng: np.random.Generator, k: int, S: float) -> np.ndarray:
    """A point of C drawn independently of `project`: a uniform box point, pushed towards the caps if short.

    A quarter of the draws are vertices, because those are where a wrong projection would show first.
    """
    if rng.random() < 0.25:
        mkt = S * rng.integers(0, 2)
        lim = (S - mkt) * rng.integers(0, 2, size=k)
        if mkt + lim.sum() < S:
            lim[rng.integers(k)] = S - mkt
        return np.concatenate(([mkt], lim))
    mkt = rng.uniform(0, S)
    cap = S - mkt
    lim = rng.uniform(0, cap, size=k)
    if mkt + lim.sum() < S:
        t = (cap - lim.sum()) / (k * cap - lim.sum())  # move each L_k part-way to its cap: ΣL = S − M
        lim = lim + t * (cap - lim)
    return np.concatenate(([mkt], lim))


def constraints(k: int, S: float) -> tuple[np.ndarray, np.ndarray]:
    """C as {x : G x ≤ b}."""
    rows, rhs = [], []
    e = np.eye(k + 1)
    rows += [-e[0], e[0]]
    rhs += [0.0, S]
    for j in range(1, k + 1):
        rows += [-e[j], e[0] + e[j]]
        rhs += [0.0, S]
    rows.append(-np.ones(k + 1))
    rhs.append(-S)
    return np.array(rows), np.array(rhs)


def brute_projection(y: np.ndarray, S: float) -> np.ndarray:
    """Projection by enumeration: the projection lies in the relative interior of some face, where it is
    the projection onto that face's affine hull. Take every subset of constraints as equalities and keep
    the nearest feasible affine projection.
    """
    g, b = constraints(y.size - 1, S)
    best, best_d = None, np.inf
    for size in range(g.shape[0] + 1):
        for rows in itertools.combinations(range(g.shape[0]), size):
            a, c = g[list(rows)], b[list(rows)]
            x = y if size == 0 else y - a.T @ np.linalg.pinv(a @ a.T) @ (a @ y - c)
            if size and np.abs(a @ x - c).max() > 1e-9 * max(1.0, S):
                continue  # inconsistent equalities: no such face
            if (g @ x - b).max() > 1e-9 * max(1.0, S):
                continue
            d = np.linalg.norm(x - y)
            if d < best_d:
                best, best_d = x, d
    assert best is not None
    return best


def params_1(Q: float, h: float, f: float, r: float, theta: float, lambda_u: float) -> Params:
    return Params(h=h, f=f, r=[r], Q=[Q], theta=theta, lambda_u=lambda_u, lambda_o=0.01)


def exhaustive_single_venue(S: float, p: Params, xi: np.ndarray) -> tuple[float, float]:
    """min over L of the empirical cost: V is piecewise linear in L with kinks only at ξ_i − Q, so the
    minimum over [0, S] is at a kink or an end point."""
    kinks = xi - p.Q[0]
    cands = np.unique(np.concatenate(([0.0, S], kinks[(kinks > 0) & (kinks < S)])))
    costs = np.array([expected_cost(np.array([S - c, c]), xi[:, None], p, S) for c in cands])
    return float(costs.min()), float(cands[costs.argmin()])


# ---------------------------------------------------------------------------------------------------------
# projection


def test_project_hand_cases():
    S = 10.0
    assert np.allclose(project(np.array([S, S]), S), [S / 2, S / 2])  # K = 1: C is the segment M + L = S
    assert np.allclose(project(np.zeros(4), S), [S / 4] * 4)
    inside = np.array([2.0, 8.0, 3.0, 0.0])
    assert np.array_equal(project(inside, S), inside)
    assert np.array_equal(project(np.array([-5.0]), S), [S])  # K = 0: only the market order
    assert np.array_equal(project(np.array([3.0, -1.0, 7.0]), 0.0), [0.0, 0.0, 0.0])
    # A point far above every cap: the projection keeps the coupling and moves M down, not L to 0.
    p = project(np.array([9.0, 9.0, 9.0]), S)
    assert np.allclose(p, brute_projection(np.array([9.0, 9.0, 9.0]), S))
    assert p[1] == pytest.approx(S - p[0])


def test_clip_then_clip_is_not_the_projection():
    """The naive rule sends (S, S) to the all-market corner and breaks the variational inequality."""
    S = 10.0
    y = np.array([S, S])
    mkt = np.clip(y[0], 0, S)
    naive = np.array([mkt, np.clip(y[1], 0, S - mkt)])
    z = np.array([0.0, S])  # feasible
    assert np.array_equal(naive, [S, 0.0])
    assert (y - naive) @ (z - naive) > 0  # so `naive` is not the nearest point of C
    p = project(y, S)
    assert (y - p) @ (z - p) <= 1e-12


@settings(max_examples=300, deadline=None)
@given(
    k=st.integers(1, 6),
    S=st.floats(0.5, 50.0),
    seed=st.integers(0, 2**32 - 1),
    spread=st.sampled_from([0.3, 1.0, 3.0]),
)
def test_project_is_feasible_idempotent_and_satisfies_the_variational_inequality(k, S, seed, spread):
    rng = np.random.default_rng(seed)
    y = rng.uniform(-spread * S, (1 + spread) * S, size=k + 1)
    p = project(y, S)
    assert feasibility_gap(p, S) <= 1e-9 * S
    assert np.allclose(project(p, S), p, rtol=0, atol=1e-9 * S)
    for _ in range(20):
        z = random_feasible(rng, k, S)
        assert feasibility_gap(z, S) <= 1e-9 * S
        assert (y - p) @ (z - p) <= 1e-9


@pytest.mark.parametrize("k", [1, 2, 3])
def test_project_matches_active_set_enumeration(k):
    rng = np.random.default_rng(100 + k)
    for _ in range(60):
        S = float(rng.uniform(0.5, 20.0))
        y = rng.uniform(-S, 2 * S, size=k + 1)
        if rng.random() < 0.3:
            y[1:] = y[1]  # ties between venues
        assert np.allclose(project(y, S), brute_projection(y, S), rtol=0, atol=1e-9 * S)


def test_project_rejects_bad_input():
    with pytest.raises(ValueError, match="S must be"):
        project(np.zeros(2), -1.0)
    with pytest.raises(ValueError, match="finite"):
        project(np.array([np.nan, 1.0]), 1.0)
    with pytest.raises(ValueError, match="1-D"):
        project(np.zeros((2, 2)), 1.0)


# ---------------------------------------------------------------------------------------------------------
# cost and subgradient

P2 = Params(h=0.01, f=0.003, r=[0.002, 0.004], Q=[300.0, 500.0], theta=0.001, lambda_u=0.02, lambda_o=0.01)


def test_cost_by_hand():
    # S = 100, X = (M, L1, L2) = (20, 50, 60); ξ = (330, 510): fills (30, 10), A = 60, shortfall 40.
    x = np.array([20.0, 50.0, 60.0])
    v = sample_costs(x, np.array([[330.0, 510.0]]), P2, 100.0)[0]
    by_hand = 0.013 * 20 - (0.012 * 30 + 0.014 * 10) + 0.001 * (20 + 110 + 40) + 0.02 * 40
    assert v == pytest.approx(by_hand, rel=1e-12)
    # Overfill: ξ large, A = 20 + 50 + 60 = 130 > 100.
    v = sample_costs(x, np.array([[1e4, 1e4]]), P2, 100.0)[0]
    assert v == pytest.approx(0.013 * 20 - (0.012 * 50 + 0.014 * 60) + 0.001 * 130 + 0.01 * 30, rel=1e-12)


def test_subgradient_shapes_and_rows():
    x = np.array([200.0, 600.0, 700.0])
    xi = np.array([[250.0, 900.0], [900.0, 2000.0], [0.0, 0.0]])
    batch = cost_subgradient(x, xi, P2, 1000.0)
    assert batch.shape == (3, 3)
    for row, one in zip(batch, xi, strict=True):
        assert np.array_equal(cost_subgradient(x, one, P2, 1000.0), row)
    with pytest.raises(ValueError, match="shape"):
        cost_subgradient(x, np.zeros(3), P2, 1000.0)


@pytest.fixture(scope="module")
def smooth_outflows() -> np.ndarray:
    return np.random.default_rng(3).gamma(2.0, 400.0, size=(200_000, 2))


@pytest.mark.parametrize(
    "x",
    [[200.0, 600.0, 700.0], [500.0, 300.0, 400.0], [0.0, 900.0, 800.0], [50.0, 430.0, 640.0]],
)
def test_subgradient_matches_finite_differences(x, smooth_outflows):
    """At points where A = S has probability 0, V is differentiable and the mean subgradient is ∇V."""
    x = np.array(x)
    S = 1000.0
    g = cost_subgradient(x, smooth_outflows, P2, S).mean(axis=0)
    for i in range(3):
        e = np.zeros(3)
        e[i] = 0.5
        fd = (
            expected_cost(x + e, smooth_outflows, P2, S) - expected_cost(x - e, smooth_outflows, P2, S)
        ) / 1.0
        assert fd == pytest.approx(g[i], rel=1e-3, abs=2e-6)


def test_subgradient_at_a_kink_lies_between_the_one_sided_slopes(smooth_outflows):
    """On the face M + ΣL = S, A = S with positive probability; the chosen element must be in between."""
    x = np.array([100.0, 450.0, 450.0])
    S = 1000.0
    g = cost_subgradient(x, smooth_outflows, P2, S).mean(axis=0)
    v0 = expected_cost(x, smooth_outflows, P2, S)
    for i in range(3):
        e = np.zeros(3)
        e[i] = 1e-3
        right = (expected_cost(x + e, smooth_outflows, P2, S) - v0) / 1e-3
        left = (v0 - expected_cost(x - e, smooth_outflows, P2, S)) / 1e-3
        assert left - 1e-6 <= g[i] <= right + 1e-6
    assert right - left > 1e-4  # the kink is real, so this test is not vacuous


# ---------------------------------------------------------------------------------------------------------
# closed form


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 200),
    Q=st.floats(0.0, 800.0),
    h=st.floats(0.001, 0.03),
    f=st.floats(0.0, 0.005),
    r=st.floats(-0.001, 0.004),
    theta=st.floats(0.0, 0.01),
    lambda_u=st.floats(0.0, 0.2),
)
def test_closed_form_is_the_exact_minimiser(seed, n, Q, h, f, r, theta, lambda_u):
    S = 1000.0
    xi = np.round(np.random.default_rng(seed).exponential(700.0, size=n), 1)
    p = params_1(Q, h, f, r, theta, lambda_u)
    mkt, lim = closed_form_single_venue(S, Q, h, f, r, theta, lambda_u, 0.01, xi)
    assert mkt + lim == pytest.approx(S) and 0 <= lim <= S
    best, _ = exhaustive_single_venue(S, p, xi)
    assert expected_cost(np.array([mkt, lim]), xi[:, None], p, S) <= best + 1e-12 * (1 + abs(best))


def test_closed_form_corners_follow_the_lambda_u_thresholds():
    """λ_u ≥ (2h+f+r)/F(Q) − (h+r+θ) gives all market; λ_u ≤ (2h+f+r)/F(Q+S) − (h+r+θ) gives all limit."""
    S, Q, h, f, r, theta = 1000.0, 300.0, 0.01, 0.003, 0.002, 0.001
    xi = np.random.default_rng(5).exponential(600.0, size=5000)
    cdf = lambda x: np.mean(xi <= x)  # noqa: E731
    high = (2 * h + f + r) / cdf(Q) - (h + r + theta)
    low = (2 * h + f + r) / cdf(Q + S) - (h + r + theta)
    assert 0 < low < high
    assert closed_form_single_venue(S, Q, h, f, r, theta, high * 1.001, 0.0, xi) == (S, 0.0)
    assert closed_form_single_venue(S, Q, h, f, r, theta, high * 0.99, 0.0, xi)[1] > 0
    assert closed_form_single_venue(S, Q, h, f, r, theta, low * 0.999, 0.0, xi) == (0.0, S)
    assert closed_form_single_venue(S, Q, h, f, r, theta, low * 1.01, 0.0, xi)[0] > 0
    # p > 1 (λ_u + θ < h + f: a shortfall costs less than crossing the spread): all limit.
    assert critical_ratio(h, f, r, theta, 0.001) > 1
    assert closed_form_single_venue(S, Q, h, f, r, theta, 0.001, 0.0, xi) == (0.0, S)


def test_closed_form_quantile_and_catch_up_theta():
    """L* = F⁻¹(p) − Q with the lower empirical quantile, and θ enters p through the catch-up order."""
    xi = np.arange(1.0, 1001.0)  # F(x) = ⌊x⌋/1000
    h, f, r, theta, lambda_u = 0.01, 0.003, 0.002, 0.004, 0.02
    p = critical_ratio(h, f, r, theta, lambda_u)
    assert p == pytest.approx((2 * h + f + r) / (lambda_u + h + r + theta))
    mkt, lim = closed_form_single_venue(2000.0, 100.0, h, f, r, theta, lambda_u, 0.0, xi)
    assert lim == np.ceil(1000 * p) - 100.0 and mkt == 2000.0 - lim
    # Without the catch-up term θ would drop out of p; the implemented objective says it must not:
    no_catch_up = (2 * h + f + r) / (lambda_u + h + r)
    other = np.ceil(1000 * no_catch_up) - 100.0
    p1 = params_1(100.0, h, f, r, theta, lambda_u)
    assert expected_cost(np.array([2000.0 - lim, lim]), xi[:, None], p1, 2000.0) < expected_cost(
        np.array([2000.0 - other, other]), xi[:, None], p1, 2000.0
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-5, 5), min_size=1, max_size=12),
    st.integers(1, 60).map(lambda k: k / 60),
)
def test_empirical_quantile_is_the_smallest_sample_whose_cdf_reaches_p(samples, p):
    """The definition, literally: inf{x : F(x) ≥ p} over the samples, F the empirical CDF."""
    xi = np.sort(np.array(samples, dtype=float))
    cdf = lambda x: np.count_nonzero(xi <= x) / xi.size  # noqa: E731
    assert _empirical_quantile(xi, p) == min(x for x in xi if cdf(x) >= p)


def test_closed_form_rejects_bad_input():
    with pytest.raises(ValueError, match="λ_u \\+ h \\+ r \\+ θ > 0"):
        closed_form_single_venue(10.0, 0.0, 0.001, 0.0, -0.01, 0.0, 0.0, 0.0, np.ones(3))
    with pytest.raises(ValueError, match="non-empty"):
        closed_form_single_venue(10.0, 0.0, 0.01, 0.0, 0.0, 0.0, 0.0, 0.0, np.array([]))


# ---------------------------------------------------------------------------------------------------------
# stochastic approximation

_R = np.random.default_rng(11)
OUTFLOWS = {
    "exponential": _R.exponential(500.0, size=20_000),
    "lognormal": np.exp(_R.normal(6.2, 0.5, size=20_000)),
    "gamma": _R.gamma(3.0, 250.0, size=20_000),
    "round lots": np.round(_R.exponential(600.0, size=3_000) / 100) * 100,  # observed, with heavy ties
}

SINGLE_VENUE_CASES = [
    # outflows, Q, h, f, r, θ, λ_u
    ("exponential", 100.0, 0.01, 0.003, 0.002, 0.001, 0.02),
    ("exponential", 0.0, 0.01, 0.003, 0.002, 0.001, 0.05),
    ("exponential", 400.0, 0.02, 0.003, -0.001, 0.002, 0.03),
    ("lognormal", 200.0, 0.01, 0.003, 0.002, 0.0, 0.02),
    ("lognormal", 50.0, 0.005, 0.003, 0.003, 0.001, 0.012),
    ("gamma", 300.0, 0.01, 0.003, 0.002, 0.003, 0.03),
    ("gamma", 100.0, 0.01, 0.0, 0.0, 0.001, 0.015),
    ("round lots", 200.0, 0.01, 0.003, 0.002, 0.001, 0.02),
    ("round lots", 100.0, 0.01, 0.003, 0.002, 0.001, 0.03),
    ("exponential", 100.0, 0.01, 0.003, 0.002, 0.001, 0.5),  # all-market corner
    ("exponential", 100.0, 0.01, 0.003, 0.002, 0.001, 0.001),  # all-limit corner
]


@pytest.mark.parametrize(("dist", "Q", "h", "f", "r", "theta", "lambda_u"), SINGLE_VENUE_CASES)
def test_sa_agrees_with_the_closed_form_on_one_venue(dist, Q, h, f, r, theta, lambda_u):
    S = 1000.0
    xi = OUTFLOWS[dist]
    mkt, lim = closed_form_single_venue(S, Q, h, f, r, theta, lambda_u, 0.01, xi)
    x, _ = solve_sa(S, params_1(Q, h, f, r, theta, lambda_u), xi, n_iter=6000, rng=7, batch_size=64)
    assert feasibility_gap(x, S) <= 1e-9 * S
    assert abs(x[0] - mkt) <= 0.01 * S and abs(x[1] - lim) <= 0.01 * S


@pytest.mark.parametrize("dist", ["exponential", "round lots"])
def test_sa_with_the_constant_paper_step_agrees_with_the_closed_form(dist):
    S, Q = 1000.0, 150.0
    xi = OUTFLOWS[dist]
    mkt, _ = closed_form_single_venue(S, Q, 0.01, 0.003, 0.002, 0.001, 0.02, 0.01, xi)
    p = params_1(Q, 0.01, 0.003, 0.002, 0.001, 0.02)
    x, info = solve_sa(S, p, xi, n_iter=8000, step="paper", rng=1, batch_size=64)
    assert info["gamma_first"] == info["gamma_last"] == paper_step_size(S, p, 8000)
    assert abs(x[0] - mkt) <= 0.01 * S


def test_sa_on_a_small_sample_is_optimal_in_cost():
    """With 300 observations V is nearly flat near L* (its slope is ±D/300 per sample), so the decision is
    weakly identified and only the cost is a fair yardstick."""
    S, Q = 1000.0, 200.0
    xi = np.round(np.random.default_rng(11).exponential(700.0, size=300))
    p = params_1(Q, 0.01, 0.003, 0.002, 0.001, 0.02)
    best, _ = exhaustive_single_venue(S, p, xi)
    mkt, lim = closed_form_single_venue(S, Q, 0.01, 0.003, 0.002, 0.001, 0.02, 0.01, xi)
    assert expected_cost(np.array([mkt, lim]), xi[:, None], p, S) == pytest.approx(best, abs=1e-12)
    for seed in range(4):
        _, info = solve_sa(S, p, xi, rng=seed)
        assert best <= info["expected_cost"] <= best + 1e-3 * abs(best)


def test_sa_is_deterministic_and_accepts_a_sampler():
    xi = np.random.default_rng(2).gamma(2.0, 300.0, size=(500, 2))
    a, info_a = solve_sa(800.0, P2, xi, n_iter=300, rng=42)
    b, _ = solve_sa(800.0, P2, xi, n_iter=300, rng=np.random.default_rng(42))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, solve_sa(800.0, P2, xi, n_iter=300, rng=43)[0])
    assert info_a["n_draws"] == 300 * 32 and feasibility_gap(a, 800.0) <= 1e-9 * 800
    sampler = lambda g, n: g.gamma(2.0, 300.0, size=(n, 2))  # noqa: E731
    c, info_c = solve_sa(800.0, P2, sampler, n_iter=300, rng=42)
    assert np.array_equal(c, solve_sa(800.0, P2, sampler, n_iter=300, rng=42)[0])
    assert "expected_cost" not in info_c and feasibility_gap(c, 800.0) <= 1e-9 * 800


def test_sa_rejects_bad_input():
    xi = np.ones((10, 2))
    with pytest.raises(ValueError, match="shape"):
        solve_sa(10.0, P2, np.ones((10, 3)))
    with pytest.raises(ValueError, match="step"):
        solve_sa(10.0, P2, xi, step="1/n")
    with pytest.raises(ValueError, match="average_from"):
        solve_sa(10.0, P2, xi, average_from=1.0)
    with pytest.raises(ValueError, match="x0"):
        solve_sa(10.0, P2, xi, x0=np.zeros(2))
    with pytest.raises(ValueError, match="sampler"):
        solve_sa(10.0, P2, lambda g, n: np.ones((n, 3)), n_iter=5)


def test_step_rules_follow_their_formulas_and_record_every_step():
    n, s, gamma0 = 50, 800.0, 0.3
    paper = _StepRule("paper", s, P2, n, gamma0)
    assert np.array_equal(paper.gammas, np.full(n, paper_step_size(s, P2, n)))
    sqrt = _StepRule("sqrt", s, P2, n, gamma0)
    assert sqrt.gammas == pytest.approx(gamma0 * s / (gradient_bound(P2) * np.sqrt(np.arange(1, n + 1))))
    adaptive = _StepRule("adaptive", s, P2, n, gamma0)
    grads = np.random.default_rng(3).normal(size=(n, 3))
    grads[0] = 0.0  # no gradient met yet: no step
    used = [adaptive(i, g) for i, g in enumerate(grads)]
    squares = np.cumsum((grads**2).sum(axis=1))
    want = np.zeros(n)
    want[1:] = gamma0 * s / np.sqrt(squares[1:])
    assert used == pytest.approx(want) and adaptive.gammas == pytest.approx(want)


def test_params_take_array_likes_and_dataclass_replace_keeps_the_checks():
    p = Params(0.01, 0.0, [0.002, 0.001], (10.0, 20.0), 0.001, 0.02, 0.0)
    assert p.r.dtype == np.float64 and p.Q.tolist() == [10.0, 20.0] and p.K == 2
    richer = dataclasses.replace(p, r=np.array([0.003, 0.001]))
    assert richer.r.tolist() == [0.003, 0.001] and not richer.r.flags.writeable and richer.h == p.h
    with pytest.raises(ValueError, match="≥ 0"):
        dataclasses.replace(p, lambda_o=-1.0)


def test_params_validation_and_gradient_bound():
    with pytest.raises(ValueError, match="common length"):
        Params(h=0.01, f=0.0, r=[0.0, 0.0], Q=[1.0], theta=0.0, lambda_u=0.0, lambda_o=0.0)
    with pytest.raises(ValueError, match="≥ 0"):
        Params(h=0.01, f=0.0, r=[0.0], Q=[1.0], theta=-1.0, lambda_u=0.0, lambda_o=0.0)
    with pytest.raises(ValueError, match="finite"):
        Params(h=np.inf, f=0.0, r=[0.0], Q=[1.0], theta=0.0, lambda_u=0.0, lambda_o=0.0)
    with pytest.raises(ValueError, match="read-only"):
        P2.Q[0] = 1.0
    # G really bounds every subgradient, including at the extremes of ξ.
    xi = np.random.default_rng(0).choice([0.0, 400.0, 1e6], size=(2000, 2))
    for x in ([0.0, 1000.0, 1000.0], [1000.0, 0.0, 0.0], [300.0, 500.0, 600.0]):
        g = cost_subgradient(np.array(x), xi, P2, 1000.0)
        assert np.linalg.norm(g, axis=1).max() <= gradient_bound(P2)


# --- two venues: against a grid search, and the directions the model predicts -----------------------------

TWO_VENUES: dict[str, object] = {
    "h": 0.01,
    "f": 0.003,
    "r": [0.002, 0.002],
    "Q": [300.0, 300.0],
    "theta": 0.001,
    "lambda_u": 0.02,
    "lambda_o": 0.005,
}


@pytest.fixture(scope="module")
def correlated_outflows() -> np.ndarray:
    """Observed outflows at two venues, positively correlated (one market-wide flow, two books)."""
    rng = np.random.default_rng(7)
    z = rng.standard_normal((4000, 1))
    return np.exp(6.3 + 0.6 * (0.5 * z + np.sqrt(0.75) * rng.standard_normal((4000, 2))))


def solve2(outflows: np.ndarray, **change: object) -> np.ndarray:
    """Same samples and same seed for every variant (common random numbers), so only the change moves x."""
    return solve_sa(1000.0, Params(**{**TWO_VENUES, **change}), outflows, rng=1)[0]


def grid_minimum(p: Params, xi: np.ndarray, S: float, m: int = 41) -> float:
    """min of the empirical cost over the feasible points of an m×m×m grid on [0, S]³ (vectorised)."""
    g = np.linspace(0.0, S, m)
    pts = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
    ok = (pts[:, 1:] <= S - pts[:, :1] + 1e-9).all(axis=1) & (pts.sum(axis=1) >= S - 1e-9)
    pts = pts[ok]
    avail = np.maximum(xi - p.Q, 0.0)
    best = np.inf
    for chunk in np.array_split(pts, max(1, len(pts) // 1000)):
        fill = np.minimum(avail[None], chunk[:, None, 1:])
        executed = chunk[:, :1] + fill.sum(axis=2)
        short = np.maximum(S - executed, 0.0)
        cost = (
            (p.h + p.f) * chunk[:, :1]
            - fill @ (p.h + p.r)
            + p.theta * (chunk.sum(axis=1, keepdims=True) + short)
            + p.lambda_u * short
            + p.lambda_o * np.maximum(executed - S, 0.0)
        )
        best = min(best, float(cost.mean(axis=1).min()))
    return best


@pytest.mark.parametrize("change", [{}, {"lambda_o": 0.0}, {"lambda_o": 0.05}, {"theta": 0.004}])
def test_sa_on_two_venues_is_at_least_as_good_as_a_grid_search(change, correlated_outflows):
    """A 25-share grid bounds the optimum from above; the SA, on the same samples, must reach it."""
    p = Params(**{**TWO_VENUES, **change})
    xi = correlated_outflows[:1500]
    _, info = solve_sa(1000.0, p, xi, rng=1)
    best = grid_minimum(p, xi, 1000.0)
    assert info["expected_cost"] <= best + 5e-4 * abs(best)


def test_higher_underfill_penalty_means_more_market_order(correlated_outflows):
    ms = [solve2(correlated_outflows, lambda_u=lu)[0] for lu in (0.015, 0.02, 0.05)]
    assert ms[0] < ms[1] < ms[2]
    assert ms[2] - ms[0] > 100


def test_higher_impact_means_less_over_posting(correlated_outflows):
    posted = [solve2(correlated_outflows, theta=t)[1:].sum() for t in (0.0, 0.001, 0.004)]
    assert posted[0] > posted[1] > posted[2]
    assert posted[0] - posted[2] > 100


def test_higher_rebate_at_one_venue_means_more_limit_there(correlated_outflows):
    base = solve2(correlated_outflows)
    richer = solve2(correlated_outflows, r=[0.006, 0.002])
    assert richer[1] > base[1] + 10
    assert richer[1] > richer[2]  # the venues are otherwise identical
