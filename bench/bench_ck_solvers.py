"""Cont–Kukanov per-decision solvers: the exact solver against SA on decision states recorded from the data.

States. The router's own decisions on data/l1_day.csv.gz (with its 92 s of history before the window)
under three configurations: the default (30 s horizon, 5,000 shares), a 10 s horizon, and 20,000 shares
(shortfall risk), each at 27 grid points (λ_o ∈ {0, 0.2, 1}, λ_u ∈ {0.05, 0.6, 5}, θ ∈ {0, 0.1, 0.5}),
the first three decisions of each run: 200 bootstrap samples × up to 6 venues per state, exactly what the
router solves. Every figure comes from one run of this module.

Printed: exact solve time per decision (median, p99, max) and the share that needed the integer model
(its incremental relaxation, or branch-and-bound), with that share's own median; SA's time per decision;
SA's excess sample cost over the certified exact minimum in bps of the decision's notional (median, p90,
max) and its market-order error. Every exact answer is checked for its certificate first, so a fast wrong
answer cannot produce a figure.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from allocator.allocation.cont_kukanov import (
    Params,
    StepSchedule,
    closed_form_single_venue,
    project,
    sample_costs,
    solve_sa,
)
from allocator.allocation.exact import solve_exact
from allocator.allocation.penalties import Penalties
from allocator.allocation.policy import SA_GAMMA0, SA_STEP
from allocator.config import SimSettings
from allocator.data.window import NS_PER_SECOND
from allocator.execution.realistic import run_ck_router
from bench.timing import median_seconds

DATASET = Path(__file__).resolve().parents[1] / "data" / "l1_day.csv.gz"
GRID = [(lo, lu, th) for lo in (0.0, 0.2, 1.0) for lu in (0.05, 0.6, 5.0) for th in (0.0, 0.1, 0.5)]
# SA_STEP as the solver's step type: a typed look-up, so this checks whether SA_STEP is annotated or not
_SCHEDULES: dict[str, StepSchedule] = {"paper": "paper", "sqrt": "sqrt", "adaptive": "adaptive"}
SA_SCHEDULE = _SCHEDULES[SA_STEP]
CONFIGS = {
    "default": (SimSettings(), 5_000),
    "10 s horizon": (SimSettings(horizon_ns=10 * NS_PER_SECOND), 5_000),
    "20,000 shares": (SimSettings(), 20_000),
}


def recorded_states() -> list[tuple[float, Params, np.ndarray, float, str]]:
    """(S, params, samples, mid, configuration) at the router's decisions, as the decision log records them."""
    from allocator.data.loader import DEFAULT_CALIBRATION_SECONDS, load
    from allocator.data.venues import load_fee_table
    from allocator.pipeline import build_sim_market_for

    data = load(DATASET, calibration_ns=int(DEFAULT_CALIBRATION_SECONDS * NS_PER_SECOND))
    fees = load_fee_table()
    states = []
    for name, (settings, order) in CONFIGS.items():
        sim_market, _ = build_sim_market_for(data, fees, settings)
        for lo, lu, th in GRID:
            for d in run_ck_router(sim_market, order, Penalties(lo, lu, th)).decisions[:3]:
                if d.solver is None:
                    continue
                assert d.f is not None and d.xi is not None and d.mid is not None  # set when it solved
                params = Params(d.half_spread, d.f, d.r, d.Q, th, lu, lo)
                states.append((float(d.remaining), params, d.xi, float(d.mid), name))
    return states


def run() -> list[tuple[str, float, str]]:
    states = recorded_states()
    exact_s, milp_s, sa_s, excess, market_error = [], [], [], [], []
    by_config: dict[str, list[float]] = {name: [] for name in CONFIGS}
    branched = 0
    for S, params, xi, mid, name in states:  # noqa: N806
        started = time.perf_counter()
        exact = solve_exact(S, params, xi)
        exact_s.append(time.perf_counter() - started)
        by_config[name].append(exact_s[-1] * 1e3)
        assert exact.certified, exact.certificate()
        if exact.method != "lp":
            milp_s.append(exact_s[-1])
            branched += exact.method == "milp"
        started = time.perf_counter()
        x, _ = solve_sa(S, params, xi, n_iter=4_000, step=SA_SCHEDULE, gamma0=SA_GAMMA0, rng=0)
        sa_s.append(time.perf_counter() - started)
        sa_value = float(sample_costs(x, xi, params, S).mean())
        assert sa_value >= exact.objective - exact.tolerance  # nothing beats the certified minimum
        excess.append((sa_value - exact.objective) / (S * mid) * 1e4)
        market_error.append(abs(x[0] - exact.x[0]) / S * 100)
    e, t = np.array(excess), np.array(exact_s) * 1e3
    venues = max(p.K for _, p, _, _, _ in states)
    figures = [
        (f"recorded decision states (200 samples × ≤{venues} venues)", len(states), "states"),
        ("exact solve per decision: median (goal ≤ 10 ms)", float(np.median(t)), "ms"),
        ("  p99 / max", float(np.quantile(t, 0.99)), f"ms / {t.max():.1f} ms"),
        *[
            (f"  median, {name} ({len(v)} states)", float(np.median(v)), "ms")
            for name, v in by_config.items()
        ],
        ("  decisions that needed the integer model", len(milp_s) / len(states) * 100, "%"),
        ("    of those, closed by branch-and-bound (the rest by its relaxation)", branched, "decisions"),
        ("  integer-model decisions: median", float(np.median(milp_s)) * 1e3 if milp_s else 0.0, "ms"),
        ("SA (4,000 adaptive steps) per decision: median", float(np.median(sa_s)) * 1e3, "ms"),
        ("  SA / exact time per decision", float(np.median(sa_s) / np.median(exact_s)), "x"),
        ("SA excess cost over the exact minimum: median", float(np.median(e)), "bps of notional"),
        ("  p90 / max", float(np.quantile(e, 0.9)), f"bps / {e.max():.3f} bps"),
        (
            "  SA market-order error: median / max",
            float(np.median(market_error)),
            f"% of S / {max(market_error):.1f} %",
        ),
    ]
    figures += closed_form_check()
    return figures


def closed_form_check() -> list[tuple[str, float, str]]:
    """One venue: SA and the exact solver against the closed form, and the projection's cost."""
    rng = np.random.default_rng(1)
    params = Params(
        h=0.005,
        f=0.003,
        r=np.array([0.002]),
        Q=np.array([1_000.0]),
        theta=0.0005,
        lambda_u=0.01,
        lambda_o=0.004,
    )
    outflows = rng.gamma(2.0, 2_500.0, size=(5_000, 1))
    p = params
    closed = closed_form_single_venue(
        5_000.0, p.Q[0], p.h, p.f, p.r[0], p.theta, p.lambda_u, p.lambda_o, outflows
    )
    exact = solve_exact(5_000.0, params, outflows)
    assert (
        abs(exact.x[0] - closed[0]) <= 1e-6 * 5_000
        or exact.objective
        <= sample_costs(np.array(closed), outflows, params, 5_000.0).mean() + exact.tolerance
    )
    seconds = median_seconds(lambda: solve_exact(5_000.0, params, outflows), repeats=3)
    y = np.random.default_rng(9).uniform(-5_000, 10_000, size=7)
    project_s = median_seconds(lambda: [project(y, 5_000.0) for _ in range(1_000)], repeats=5)
    return [
        ("exact solve, 1 venue × 5,000 samples (closed form agrees)", seconds * 1e3, "ms"),
        ("project, 6 venues (one call)", project_s * 1e3, "µs"),
    ]
