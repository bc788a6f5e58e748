"""`--mode cont-kukanov` on data/l1_day.csv.gz: the whole 125-point grid through the execution simulator.

Reports the parts (MBP-10 load, message streams, one router run, the simulated baselines) and the whole
run, serial and with the default worker pool, both queue models, plus the router's cost per decision.
Target: the default grid in under 60 s on this 2-core machine.
"""

from __future__ import annotations

import time
from pathlib import Path

from allocator.ck_router import SimSettings, run_ck_router
from allocator.data import load
from allocator.pipeline import RunConfig, build_market, build_sim_market_for
from allocator.pipeline import run as run_pipeline
from allocator.sim_baselines import SIMULATED_BASELINES
from allocator.simulator import QueueModel
from allocator.venues import load_fee_table
from bench.timing import median_seconds

DATASET = Path(__file__).resolve().parents[1] / "data" / "l1_day.csv.gz"


def run() -> list[tuple[str, float, str]]:
    fees = load_fee_table()
    t0 = time.perf_counter()
    data = load(DATASET)
    t1 = time.perf_counter()
    market, _ = build_market(data, fees)
    sim_market = build_sim_market_for(data, market, SimSettings())
    t2 = time.perf_counter()
    one = median_seconds(lambda: run_ck_router(sim_market, 5000, 0.4, 0.6, 0.3), 5)
    decisions = len(run_ck_router(sim_market, 5000, 0.4, 0.6, 0.3).decisions)
    baselines = median_seconds(lambda: [fn(sim_market, 5000) for fn in SIMULATED_BASELINES.values()], 3)
    serial_start = time.perf_counter()
    result = run_pipeline(data, fees, RunConfig(mode="cont-kukanov", jobs=1))
    serial = time.perf_counter() - serial_start
    whole_start = time.perf_counter()
    run_pipeline(load(DATASET), fees, RunConfig(mode="cont-kukanov"))
    whole = time.perf_counter() - whole_start
    prob_start = time.perf_counter()
    prob = SimSettings(queue_model=QueueModel("probabilistic"))
    run_pipeline(data, fees, RunConfig(mode="cont-kukanov", sim=prob))
    probabilistic = time.perf_counter() - prob_start
    return [
        ("load MBP-10 (all 10 levels, 116k rows in window)", t1 - t0, "s"),
        ("snapshots + per-venue message streams", t2 - t1, "s"),
        ("one router run (λo 0.4, λu 0.6, θ 0.3)", one, "s"),
        ("  decisions in that run", decisions, "decisions"),
        ("  per decision (SA solve + simulation)", one / max(decisions, 1), "s"),
        ("three simulated baselines", baselines, "s"),
        ("grid points", len(result.search.points), "points"),
        ("distinct outcomes on the grid", result.search.distinct_outcomes, "outcomes"),
        ("125-point grid + baselines + report, serial", serial, "s"),
        ("whole run incl. load, default workers (target < 60 s)", whole, "s"),
        ("whole run, probabilistic queue model, default workers", probabilistic, "s"),
        ("serial / parallel speed-up", serial / whole, "x"),
    ]
