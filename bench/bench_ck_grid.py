"""Whole `--mode cont-kukanov` runs on data/l1_day.csv.gz: the 125-point grid, exact solver against SA.

Reports the parts (MBP-10 load with the 92 s of history, message streams, one router run, the simulated
baselines) and the whole default grid run side by side in one run: with the exact solver (the default) and
with `--solver sa`, both on the default worker pool, and their ratio (goal ≥ 10×). Also how much the grid
shared: router decisions against distinct observations computed (every grid point decides first at the
same arrival, from the same state).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from allocator.allocation.penalties import Penalties
from allocator.baselines.simulated import SIMULATED_BASELINES
from allocator.config import RunConfig, SimSettings
from allocator.data.loader import DEFAULT_CALIBRATION_SECONDS, load
from allocator.data.venues import load_fee_table
from allocator.data.window import NS_PER_SECOND
from allocator.execution.models import ProbabilisticQueue
from allocator.execution.realistic import run_ck_router
from allocator.pipeline import build_sim_market_for
from allocator.pipeline import run as run_pipeline
from bench.timing import median_seconds

DATASET = Path(__file__).resolve().parents[1] / "data" / "l1_day.csv.gz"
CALIBRATION_NS = int(DEFAULT_CALIBRATION_SECONDS * NS_PER_SECOND)


def run() -> list[tuple[str, float, str]]:
    fees = load_fee_table()
    t0 = time.perf_counter()
    data = load(DATASET, calibration_ns=CALIBRATION_NS)
    t1 = time.perf_counter()
    sim_market, _ = build_sim_market_for(data, fees, SimSettings())
    t2 = time.perf_counter()
    one = median_seconds(
        lambda: run_ck_router(
            dataclasses.replace(sim_market, observations={}), 5000, Penalties(0.4, 0.6, 0.3)
        ),
        5,
    )
    decisions = len(run_ck_router(sim_market, 5000, Penalties(0.4, 0.6, 0.3)).decisions)
    baselines = median_seconds(lambda: [fn(sim_market, 5000) for fn in SIMULATED_BASELINES.values()], 3)
    serial_start = time.perf_counter()
    result = run_pipeline(data, fees, RunConfig(mode="cont-kukanov", jobs=1))
    serial = time.perf_counter() - serial_start
    made = sum(len(p.execution.decisions) for p in result.search.points)
    exact_start = time.perf_counter()
    run_pipeline(data, fees, RunConfig(mode="cont-kukanov"))
    exact = time.perf_counter() - exact_start
    sa_start = time.perf_counter()
    sa_result = run_pipeline(data, fees, RunConfig(mode="cont-kukanov", sim=SimSettings(solver="sa")))
    sa = time.perf_counter() - sa_start
    prob_start = time.perf_counter()
    prob = SimSettings(queue=ProbabilisticQueue())
    run_pipeline(data, fees, RunConfig(mode="cont-kukanov", sim=prob))
    probabilistic = time.perf_counter() - prob_start
    shared = build_sim_market_for(data, fees, SimSettings())[0]
    for point in result.search.points:  # serial, in one process, so the cache is the whole grid's
        run_ck_router(shared, 5000, point.penalties)
    return [
        ("load MBP-10 (all 10 levels, window + 92 s history)", t1 - t0, "s"),
        ("snapshots + per-venue message streams", t2 - t1, "s"),
        ("one router run (λo 0.4, λu 0.6, θ 0.3), exact", one, "s"),
        ("  decisions in that run", decisions, "decisions"),
        ("  per decision (observe + exact solve + simulation)", one / max(decisions, 1), "s"),
        ("three simulated baselines", baselines, "s"),
        ("grid points", len(result.search.points), "points"),
        ("distinct outcomes on the grid (exact)", result.search.distinct_outcomes, "outcomes"),
        ("distinct outcomes on the grid (SA)", sa_result.search.distinct_outcomes, "outcomes"),
        (
            "router decisions over the grid / distinct observations",
            made / max(len(shared.observations), 1),
            "x",
        ),
        ("125-point grid + baselines + report, exact, serial", serial, "s"),
        ("125-point grid + baselines + report, exact, default workers", exact, "s"),
        ("125-point grid + baselines + report, --solver sa, default workers", sa, "s"),
        ("  sa / exact (goal ≥ 10)", sa / exact, "x"),
        ("whole grid, probabilistic queue model, exact, default workers", probabilistic, "s"),
    ]
