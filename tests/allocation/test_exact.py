"""The exact solver against brute force, its certificates re-checked independently, and its tie rule.

Brute force: with integer S, Q and ξ and K ≤ 2 the sample cost is piecewise linear with integer
breakpoints, and its constraint rows (M, M + L_k, M + L_1 + L_2 and the kinks M + Σ_{k∈B} L_k = const) have
the consecutive-ones property in the column order (L_1, M, L_2), so every vertex is integral and the minimum
over the whole-share grid is the true minimum. For K = 3 that argument fails, so there the grid minimum is
only an upper bound.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from scipy.sparse import lil_matrix

from allocator.allocation.cont_kukanov import Params, closed_form_single_venue, sample_costs
from allocator.allocation.exact import RELATIVE_TOLERANCE, cost_scale, solve_exact


def brute_force(S: int, params: Params, xi: np.ndarray) -> tuple[float, np.ndarray]:  # noqa: N803
    """The minimum of the sample cost over every whole-share point of C."""
    best, best_x = np.inf, None
    for m in range(S + 1):
        for limits in itertools.product(range(S - m + 1), repeat=params.K):
            if m + sum(limits) < S:
                continue
            x = np.array([m, *limits], dtype=float)
            value = float(sample_costs(x, xi, params, S).mean())
            if value < best:
                best, best_x = value, x
    assert best_x is not None
    return best, best_x


def lp_relaxation_value(S: float, params: Params, xi: np.ndarray) -> float:  # noqa: N803
    """The LP relaxation's value, written independently of allocator.allocation.exact (scipy's HiGHS wrapper, the
    textbook variables fill_ik ≤ min(a_ik, L_k), u_i ≥ S − A_i, o_i ≥ A_i − S, no scaling, merging or
    fixed fills)."""
    n, k = xi.shape
    a = np.maximum(xi - params.Q, 0.0)
    fill0, under0, over0 = 1 + k, 1 + k + n * k, 1 + k + n * k + n
    cost = np.zeros(over0 + n)
    cost[0] = params.h + params.f + params.theta
    cost[1 : 1 + k] = params.theta
    cost[fill0:under0] = np.tile(-(params.h + params.r) / n, n)
    cost[under0:over0] = (params.theta + params.lambda_u) / n
    cost[over0:] = params.lambda_o / n
    rows = lil_matrix((n * k + 2 * n + k + 1, len(cost)))
    bound = []
    r = 0
    for i in range(n):
        for j in range(k):
            rows[r, fill0 + i * k + j], rows[r, 1 + j] = 1, -1
            bound.append(0.0)
            r += 1
    for i in range(n):  # −u_i − M − Σ fill ≤ −S  and  M + Σ fill − o_i ≤ S
        rows[r, under0 + i], rows[r, 0] = -1, -1
        rows[r + 1, over0 + i], rows[r + 1, 0] = -1, 1
        for j in range(k):
            rows[r, fill0 + i * k + j] = -1
            rows[r + 1, fill0 + i * k + j] = 1
        bound += [-S, S]
        r += 2
    for j in range(k):
        rows[r, 1 + j], rows[r, 0] = 1, 1
        bound.append(S)
        r += 1
    rows[r, : 1 + k] = -1
    bound.append(-S)
    limits = [(0, S)] * (1 + k) + [(0, v) for v in a.ravel()] + [(0, None)] * (2 * n)
    result = linprog(cost, A_ub=rows.tocsr(), b_ub=np.array(bound), bounds=limits, method="highs")
    assert result.success, result.message
    return float(result.fun)


def random_case(rng: np.random.Generator, k: int, convex: bool) -> tuple[int, Params, np.ndarray]:
    S = int(rng.integers(4, 11))  # noqa: N806
    h = float(rng.uniform(0.0, 0.3))
    r = rng.uniform(-0.1, 0.2, k)
    floor = float(np.min(h + r))
    lambda_o = float(rng.uniform(0.0, max(floor, 0.0))) if convex else float(rng.uniform(floor + 0.05, 2.0))
    params = Params(
        h=h,
        f=float(rng.uniform(0.0, 0.2)),
        r=r,
        Q=rng.integers(0, 4, k).astype(float),
        theta=float(rng.uniform(0.0, 0.4)),
        lambda_u=float(rng.uniform(0.0, 1.5)),
        lambda_o=lambda_o,
    )
    xi = rng.integers(0, 3 * S, size=(int(rng.integers(1, 7)), k)).astype(float)
    return S, params, xi


def check_certificate(S: float, params: Params, xi: np.ndarray, solution) -> None:  # noqa: N803
    """Every field of the certificate, re-derived: the value at x, feasibility, the bound and the gap."""
    x = solution.x
    assert x.shape == (params.K + 1,)
    assert (x >= -1e-9 * S).all() and x[0] <= S * (1 + 1e-12)
    assert (x[1:] <= S - x[0] + 1e-9 * S).all() and x.sum() >= S * (1 - 1e-12)
    assert solution.objective == pytest.approx(float(sample_costs(x, xi, params, S).mean()), abs=1e-12)
    assert solution.tolerance == pytest.approx(RELATIVE_TOLERANCE * cost_scale(S, params))
    assert solution.objective - solution.lower_bound <= solution.tolerance
    certificate = solution.certificate()
    assert certificate["certified"] and certificate["method"] == solution.method
    assert certificate["gap"] == pytest.approx(solution.objective - solution.lower_bound, abs=1e-15)
    if solution.method == "lp":
        # The solver's relaxation fixes the fills it knows exactly (a_ik = 0, a_ik ≥ S), so its bound is at
        # least the textbook relaxation's; where the problem is convex the two are the same LP value.
        textbook = lp_relaxation_value(S, params, xi)
        assert solution.lower_bound >= textbook - 1e-7 * S
        if (params.lambda_o <= params.h + params.r).all():
            assert solution.lower_bound == pytest.approx(textbook, abs=1e-7 * S)


@pytest.mark.parametrize("convex", [True, False], ids=["convex", "non-convex"])
@pytest.mark.parametrize("k", [1, 2])
def test_exact_equals_brute_force_on_small_cases(k, convex):
    rng = np.random.default_rng(100 * k + convex)
    methods = []
    for _ in range(40):
        S, params, xi = random_case(rng, k, convex)  # noqa: N806
        solution = solve_exact(S, params, xi)
        best, _ = brute_force(S, params, xi)
        check_certificate(S, params, xi, solution)
        assert solution.objective == pytest.approx(best, abs=solution.tolerance), (params, xi)
        assert solution.lower_bound <= best + solution.tolerance
        methods.append(solution.method)
    if convex:
        assert set(methods) == {"lp"}  # the convex problem never needs the integer model
    elif k == 2:  # the non-convex cases exercised the integer model: its relaxation and its branching
        assert "milp" in methods and "lp-incremental" in methods, methods


def test_three_venues_are_never_worse_than_the_whole_share_grid():
    rng = np.random.default_rng(3)
    for convex in (True, False):
        for _ in range(12):
            S, params, xi = random_case(rng, 3, convex)  # noqa: N806
            solution = solve_exact(S, params, xi)
            check_certificate(S, params, xi, solution)
            best, _ = brute_force(S, params, xi)
            assert solution.objective <= best + solution.tolerance
            assert solution.lower_bound <= best + solution.tolerance


def test_the_non_convex_case_that_defeats_the_relaxation():
    # Two venues whose queues both clear with 6 shares to spare in the only sample, S = 6, λ_o far above
    # h + r: posting 6 at each fills 12 (6 over-filled at λ_o − h − r = 1.9 each), posting 3 + 3 fills
    # exactly 6. The LP can "fill less" and believes 6 + 6 costs like 3 + 3; only the integer model sees
    # the over-fill. Hand-computed optimum: no market order, L_1 + L_2 = 6, cost −(h + r)·6 = −0.6.
    params = Params(h=0.05, f=0.05, r=[0.05, 0.05], Q=[0.0, 0.0], theta=0.0, lambda_u=1.0, lambda_o=2.0)
    xi = np.array([[6.0, 6.0]])
    solution = solve_exact(6, params, xi)
    check_certificate(6, params, xi, solution)
    assert solution.objective == pytest.approx(-0.6, abs=1e-9)
    assert solution.x[0] == pytest.approx(0.0, abs=1e-9)
    assert solution.x[1:].sum() == pytest.approx(6.0, abs=1e-9)
    # and the tie rule picks the lowest venue index among the equally good splits
    np.testing.assert_allclose(solution.x, [0.0, 6.0, 0.0], atol=1e-9)


def test_ties_go_to_fewer_shares_then_less_market_then_the_lower_venue():
    # Both queues surely clear far beyond S and both venues pay the same: every split of S between the two
    # limit venues costs the same, and each share beyond S costs λ_o + θ − h − r > 0 (an over-fill).
    params = Params(
        h=0.01, f=0.003, r=[0.002, 0.002], Q=[10.0, 10.0], theta=0.001, lambda_u=0.5, lambda_o=0.5
    )
    xi = np.full((5, 2), 10_000.0)
    solution = solve_exact(100, params, xi)
    check_certificate(100, params, xi, solution)
    np.testing.assert_allclose(solution.x, [0.0, 100.0, 0.0], atol=1e-9)


def test_one_venue_agrees_with_the_closed_form():
    rng = np.random.default_rng(11)
    for _ in range(30):
        S = float(rng.integers(100, 5000))  # noqa: N806
        params = Params(
            h=0.005,
            f=0.003,
            r=[float(rng.uniform(-0.003, 0.003))],
            Q=[float(rng.integers(0, 2000))],
            theta=float(rng.uniform(0, 0.5)),
            lambda_u=float(rng.uniform(0, 1)),
            lambda_o=0.3,
        )
        xi = rng.gamma(2.0, 1500.0, size=(200, 1)).round()
        solution = solve_exact(S, params, xi)
        check_certificate(S, params, xi, solution)
        p = params
        closed = closed_form_single_venue(S, p.Q[0], p.h, p.f, p.r[0], p.theta, p.lambda_u, p.lambda_o, xi)
        closed_value = float(sample_costs(np.array(closed), xi, params, S).mean())
        assert solution.objective == pytest.approx(closed_value, abs=solution.tolerance)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    k=st.integers(1, 6),
    n=st.integers(1, 60),
    lambda_o=st.floats(0.0, 2.0),
    scale=st.sampled_from([1.0, 0.1]),
)
def test_every_answer_is_certified_and_never_beaten_by_random_points(seed, k, n, lambda_o, scale):
    rng = np.random.default_rng(seed)
    S = 5000.0  # noqa: N806
    params = Params(
        h=0.005,
        f=0.003,
        r=rng.uniform(-0.003, 0.003, k),
        Q=rng.integers(0, 3000, k).astype(float),
        theta=float(rng.uniform(0, 0.5)),
        lambda_u=float(rng.uniform(0, 1)),
        lambda_o=lambda_o,
    )
    xi = (rng.gamma(2.0, 2500.0, size=(n, k)) * scale).round()
    solution = solve_exact(S, params, xi)
    check_certificate(S, params, xi, solution)
    points = rng.dirichlet(np.ones(k + 1), size=300) * S  # random points on the face M + ΣL = S
    values = [float(sample_costs(p, xi, params, S).mean()) for p in points]
    assert solution.objective <= min(values) + solution.tolerance


def test_nothing_to_buy_is_trivial():
    params = Params(h=0.01, f=0.003, r=[0.002], Q=[1.0], theta=0.1, lambda_u=0.5, lambda_o=0.5)
    solution = solve_exact(0.0, params, np.array([[5.0]]))
    assert solution.method == "trivial" and solution.certified
    np.testing.assert_array_equal(solution.x, [0.0, 0.0])


@pytest.mark.parametrize(
    ("samples", "message"),
    [(np.empty((0, 1)), "shape"), (np.array([[np.nan]]), "finite"), (np.ones((3, 2)), "shape")],
)
def test_bad_samples_are_rejected(samples, message):
    params = Params(h=0.01, f=0.003, r=[0.002], Q=[1.0], theta=0.1, lambda_u=0.5, lambda_o=0.5)
    with pytest.raises(ValueError, match=message):
        solve_exact(10.0, params, samples)


def test_ties_follow_the_rule_over_all_minimisers_also_when_not_convex():
    # Few distinct values make ties frequent. Over every optimal whole-share point (exact for K ≤ 2), the
    # rule's point is the lexicographic minimum of (shares sent, market shares, -L_1 … i.e. lower venue
    # first); the solver must return it whether the LP or the integer model's relaxation certified it.
    # After branch-and-bound the rule is applied within its binary pattern (documented), so those cases
    # are only counted.
    rng = np.random.default_rng(21)
    checked = {"lp": 0, "lp-incremental": 0, "milp": 0}
    for _ in range(300):
        S = int(rng.integers(2, 8))  # noqa: N806
        params = Params(
            h=float(rng.choice([0.0, 0.5])),
            f=float(rng.choice([0.0, 0.5])),
            r=rng.choice([0.0, 0.5], size=2),
            Q=rng.integers(0, 3, size=2).astype(float),
            theta=float(rng.choice([0.0, 0.5])),
            lambda_u=float(rng.choice([0.0, 0.5, 1.0])),
            lambda_o=float(rng.choice([0.0, 0.5, 1.0])),
        )
        xi = rng.integers(0, S + 4, size=(int(rng.integers(1, 4)), 2)).astype(float)
        solution = solve_exact(S, params, xi)
        best, _ = brute_force(S, params, xi)
        if abs(solution.objective - best) > solution.tolerance:
            continue  # the optimum is not whole-share here: the grid cannot name the rule's point
        optimal = [
            np.array([m, a, b], dtype=float)
            for m in range(S + 1)
            for a in range(S - m + 1)
            for b in range(S - m + 1)
            if m + a + b >= S
            and float(sample_costs(np.array([m, a, b], float), xi, params, S).mean()) <= best + 1e-9
        ]
        rule = min(optimal, key=lambda p: (p.sum(), p[0], -p[1]))
        checked[solution.method] += 1
        if solution.method == "milp":  # documented: ties broken within its binary pattern only
            assert solution.ties == "within the branch-and-bound pattern"
            continue
        assert solution.ties == "all minimisers"
        np.testing.assert_allclose(solution.x, rule, atol=1e-9, err_msg=str((params, xi)))
    assert checked["lp"] > 100 and checked["lp-incremental"] > 5, checked


@pytest.mark.parametrize("scale", [1e-6, 1e-3, 1e3])
def test_the_answer_does_not_depend_on_the_units_of_money(scale):
    # The cost is linear in (h, f, r, θ, λ): measuring money in other units cannot move the minimiser.
    rng = np.random.default_rng(5)
    for _ in range(40):
        S, params, xi = random_case(rng, 2, convex=bool(rng.integers(0, 2)))  # noqa: N806
        scaled = Params(
            params.h * scale,
            params.f * scale,
            params.r * scale,
            params.Q,
            params.theta * scale,
            params.lambda_u * scale,
            params.lambda_o * scale,
        )
        base, other = solve_exact(S, params, xi), solve_exact(S, scaled, xi)
        assert other.certified
        assert other.objective == pytest.approx(base.objective * scale, rel=1e-9, abs=other.tolerance)
        np.testing.assert_allclose(other.x, base.x, atol=1e-7 * S)
