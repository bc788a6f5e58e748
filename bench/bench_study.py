"""The study engine: orders per second per core, Dask's overhead over a plain loop, and the 2-worker speed-up.

One workload, run three ways in one run: the in-process loop (no Dask), a LocalCluster of one worker and one
of two. 6 synthetic 10-minute paths × 4 arrivals × both sides = 48 orders at the study's default settings
(12-point grid, 10 s horizon, 120 s orders, 4 arrivals per task: 6 tasks). The paths are generated into
the cache first, so no run pays for generating them; each run reads them itself, as a study does. The
loop runs first and last, and their mean is the reference (this machine's speed drifts by several %
within a run). Wall times include starting and stopping the cluster, which is what a user waits for.
Goals: overhead ≤ 10 %, speed-up ≥ 1.7× (2 cores).
"""

from __future__ import annotations

import time
from pathlib import Path

from allocator.config import PenaltyGrid, RunConfig, SimSettings
from allocator.data.venues import load_fee_table
from allocator.study.engine import DaskEngine, Engine, InProcessEngine, available_cores
from allocator.study.paths import DEFAULT_PATH_MINUTES, load_path, synthetic_sources
from allocator.study.plan import (
    STUDY_HORIZON_SECONDS,
    STUDY_LAMBDA_OVER,
    STUDY_LAMBDA_UNDER,
    STUDY_THETA_QUEUE,
    OrderPlan,
)
from allocator.study.run import run_study

CACHE = Path(__file__).resolve().parent / "out" / "study-paths"
PATHS, ARRIVALS = 6, 4


def run() -> list[tuple[str, float, str]]:
    sources = synthetic_sources(PATHS, 101, DEFAULT_PATH_MINUTES, CACHE)
    for source in sources:
        source.ensure_file()
    config = RunConfig(
        mode="cont-kukanov",
        grid=PenaltyGrid(STUDY_LAMBDA_OVER, STUDY_LAMBDA_UNDER, STUDY_THETA_QUEUE),
        sim=SimSettings.from_units(horizon_seconds=STUDY_HORIZON_SECONDS),
    )
    orders = OrderPlan(arrivals=ARRIVALS)
    fees = load_fee_table()

    def timed(engine: Engine) -> tuple[float, dict[str, object]]:
        load_path.cache_clear()  # every run reads its paths, as a fresh worker would
        started = time.perf_counter()
        result = run_study(sources, orders, config, fees, engine=engine, resamples=1000)
        return time.perf_counter() - started, result.answer

    loop_first, answer = timed(InProcessEngine())
    one, answer_one = timed(DaskEngine(workers=1))
    two, answer_two = timed(DaskEngine(workers=2))
    loop_last, _ = timed(
        InProcessEngine()
    )  # again, so the run's drift in machine speed shows and averages out
    if not answer == answer_one == answer_two:
        raise AssertionError("the engines disagree")
    loop = (loop_first + loop_last) / 2
    count = int(str(answer["orders"]))
    return [
        ("orders (paths × arrivals × sides), 12 grid points + 3 baselines each", count, "orders"),
        ("cores available", available_cores(), "cores"),
        ("in-process loop (no Dask), first and last run", loop_first, "s"),
        ("", loop_last, "s"),
        ("  their mean", loop, "s"),
        ("  orders per second per core", count / loop, "orders/s"),
        ("Dask LocalCluster, 1 worker (incl. cluster start/stop)", one, "s"),
        ("  Dask overhead over the loop (goal ≤ 10 %)", (one / loop - 1) * 100, "%"),
        ("Dask LocalCluster, 2 workers", two, "s"),
        ("  speed-up of 2 workers over 1 (goal ≥ 1.7×)", one / two, "x"),
    ]
