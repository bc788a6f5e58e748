"""Cont–Kukanov SA solver: wall time of one `solve_sa` at S = 5,000 for 1 and 6 venues, plus `project`.

Outflows are reproducible synthetic observations (gamma, so that fills are neither certain nor hopeless at
these queue sizes). The solver runs with its defaults (4,000 steps × 32 draws, γ_n ∝ 1/√n, tail
averaging), since those are what callers get. Every figure is the median of several timed repeats after
a warm-up. Each answer is checked first (against the closed form on one venue, for feasibility on six),
so a fast wrong answer cannot produce a figure.
"""

from __future__ import annotations

import numpy as np

from allocator.ck_model import Params, closed_form_single_venue, project, solve_sa
from bench.timing import median_seconds

S = 5_000.0


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
    y = np.random.default_rng(9).uniform(-S, 2 * S, size=7)
    seconds = median_seconds(lambda: [project(y, S) for _ in range(1_000)], repeats=5)
    figures.append(("project, 6 venues (one call)", seconds * 1e3, "µs"))
    return figures
