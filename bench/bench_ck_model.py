"""Cont–Kukanov SA solver: wall time of one `solve_sa` at S = 5,000 for 1 and 6 venues, plus `project`.

Outflows are reproducible synthetic observations (gamma, so that fills are neither certain nor hopeless at
these queue sizes). The solver runs with its defaults (4,000 steps × 32 draws, γ_n ∝ 1/√n, tail
averaging), since those are what callers get. Every figure is the median of several timed repeats after
a warm-up. Each answer is checked first (against the closed form on one venue, for feasibility on six),
so a fast wrong answer cannot produce a figure.

Accuracy: on 140 decision states recorded from data/l1_day.csv.gz (7 times × 2 order sizes × 5 penalty
settings × observed and 10×-thinner outflows, λ_o = 0 where the problem is an LP), the excess expected cost
of each step rule over the exact optimum (tests/lp_oracle.py), in bps of notional, and the market-order
error in % of S. This is why the router uses the adaptive rule.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from allocator.ck_model import Params, closed_form_single_venue, expected_cost, project, solve_sa
from bench.timing import median_seconds

S = 5_000.0
PRICE = 222.8  # the dataset's price level, to express $ in bps of notional
DATASET = Path(__file__).resolve().parents[1] / "data" / "l1_day.csv.gz"


def market(venues: int, seed: int) -> tuple[Params, np.ndarray]:
    """Venue parameters spread over plausible ranges, and 5,000 observed outflow vectors."""
    rng = np.random.default_rng(seed)
    params = Params(
        h=0.005,
        f=0.003,
        r=np.linspace(0.0015, 0.0030, venues),
        Q=np.linspace(1_000.0, 4_000.0, venues),
        theta=0.0005,
        lambda_u=0.01,
        lambda_o=0.004,
    )
    return params, rng.gamma(2.0, 2_500.0, size=(5_000, venues))


def run() -> list[tuple[str, float, str]]:
    """One run of every figure: (name, value, unit)."""
    figures: list[tuple[str, float, str]] = []
    for venues in (1, 6):
        params, outflows = market(venues, seed=venues)
        x, info = solve_sa(S, params, outflows, rng=0)
        if venues == 1:
            p = params
            mkt, _ = closed_form_single_venue(
                S, p.Q[0], p.h, p.f, p.r[0], p.theta, p.lambda_u, p.lambda_o, outflows
            )
            assert abs(x[0] - mkt) <= 0.01 * S, (x, mkt)
        assert np.allclose(project(x, S), x, rtol=0, atol=1e-9 * S)
        seconds = median_seconds(lambda p=params, o=outflows: solve_sa(S, p, o, rng=0), repeats=5)
        plural = "s" if venues > 1 else ""
        label = (
            f"solve_sa, {venues} venue{plural} × 5,000 sh ({info['n_iter']:,} steps × {info['batch_size']})"
        )
        figures.append((label, seconds * 1e3, "ms"))
    figures += accuracy()
    y = np.random.default_rng(9).uniform(-S, 2 * S, size=7)
    seconds = median_seconds(lambda: [project(y, S) for _ in range(1_000)], repeats=5)
    figures.append(("project, 6 venues (one call)", seconds * 1e3, "µs"))
    return figures


def recorded_states() -> list[tuple[float, Params, np.ndarray]]:
    """(S, params, outflow samples) at router decision points of the recorded dataset (λ_o = 0)."""
    from allocator.ck_router import SimSettings, model_params, observe
    from allocator.data import load
    from allocator.pipeline import build_market, build_sim_market_for
    from allocator.venues import load_fee_table

    data = load(DATASET)
    market, _ = build_market(data, load_fee_table())
    sim_market = build_sim_market_for(data, market, SimSettings())
    sim = sim_market.simulator()
    states = []
    for seconds in (10, 40, 60, 100, 200, 300, 450):
        obs = observe(sim_market, sim, market.window_start_ns + seconds * 1_000_000_000)
        for order in (5_000.0, 1_000.0):
            for lambda_under, theta in ((0.2, 0.1), (1.0, 0.5), (0.01, 0.002), (5.0, 0.0), (0.6, 0.3)):
                params = model_params(obs, market, 0.0, lambda_under, theta)
                params = Params(
                    params.h, params.f, np.maximum(params.r, -params.h), params.Q, theta, lambda_under, 0.0
                )
                for thin in (1.0, 0.1):
                    states.append((order, params, obs.samples * thin))
    return states


def accuracy() -> list[tuple[str, float, str]]:
    from tests.lp_oracle import exact_optimum

    rules = {
        "sqrt, 1,000 steps (first router version)": ("sqrt", 1.0, 1_000),
        "sqrt, 4,000 steps": ("sqrt", 1.0, 4_000),
        "adaptive γ0 0.3, 4,000 steps (router)": ("adaptive", 0.3, 4_000),
    }
    excess = {name: [] for name in rules}
    market_error = {name: [] for name in rules}
    for order, params, samples in recorded_states():
        exact = exact_optimum(order, params, samples)
        best = expected_cost(exact, samples, params, order)
        for name, (step, gamma0, n_iter) in rules.items():
            x, _ = solve_sa(order, params, samples, n_iter=n_iter, step=step, gamma0=gamma0, rng=0)
            excess[name].append((expected_cost(x, samples, params, order) - best) / (order * PRICE) * 1e4)
            market_error[name].append(abs(x[0] - exact[0]) / order * 100)
    figures = []
    for name in rules:
        e, m = np.array(excess[name]), np.array(market_error[name])
        figures.append((f"excess cost vs exact, {name}: median", float(np.median(e)), "bps"))
        figures.append(("  p90 / max", float(np.quantile(e, 0.9)), f"bps / {e.max():.3f} bps"))
        figures.append(("  market order error, max", float(m.max()), "% of S"))
    return figures
