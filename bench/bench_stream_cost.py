"""What streaming costs the cont-kukanov router, in process (no broker): the recorded window fed in batches
to the streaming engine against the offline router on the same rows, and whether a decision's simulation
costs more as rows accumulate (it should not: each horizon is simulated once, over its own rows).

One run, one machine: read the ratios, not the absolute times.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from allocator.config import PenaltyGrid, RunConfig, SimSettings
from allocator.data.loader import frame_with_history, load
from allocator.data.venues import load_fee_table
from allocator.data.window import WindowSpec
from allocator.execution.realistic import RouterSession
from allocator.kafka.producer import event_frame
from allocator.pipeline import build_sim_market_for
from allocator.stream.ck import CkStream
from allocator.stream.engine import StreamEngine, live_point

REPO = Path(__file__).resolve().parents[1]
BATCH = int(os.environ.get("BENCH_STREAM_BATCH", "500"))
Figure = tuple[str, float, str]


def run() -> list[Figure]:
    fees = load_fee_table()
    config = RunConfig(
        mode="cont-kukanov",
        order_size=1_000_000,  # never completes in the window, so every horizon re-decides
        grid=PenaltyGrid((0.2,), (0.002,), (0.0,)),
        sim=SimSettings.from_units(horizon_seconds=10.0),
    )
    data = load(
        REPO / "data" / "l1_day.csv.gz",
        WindowSpec("13:36:32", "13:45:14"),
        levels=None,
        calibration_ns=config.calibration_ns,
    )
    rows = event_frame(frame_with_history(data))
    batch = {name: rows[name].to_numpy() for name in rows.columns}

    started = time.perf_counter()
    sim_market, _ = build_sim_market_for(data, fees, config.sim, config.side)
    session = RouterSession(sim_market, config.order_size, config.grid.points()[0])
    offline_execute = []
    while (step := session.decide()) is not None:
        executing = time.perf_counter()
        session.execute(step)
        offline_execute.append(time.perf_counter() - executing)
    session.finish()
    offline = time.perf_counter() - started

    engine = StreamEngine(config, fees, live_point(config.grid), parent="bench", window=data.window)
    started = time.perf_counter()
    for at in range(0, len(rows), BATCH):
        engine.feed({name: values[at : at + BATCH] for name, values in batch.items()})
    engine.end()
    streamed = time.perf_counter() - started
    router = engine.router
    assert isinstance(router, CkStream)
    execute = np.asarray(router.execute_seconds) * 1000
    same = np.asarray(offline_execute) * 1000
    third = max(len(execute) // 3, 1)
    early, late = float(np.median(execute[:third])), float(np.median(execute[-third:]))
    early_ratio = early / float(np.median(same[:third]))
    late_ratio = late / float(np.median(same[-third:]))
    return [
        (f"rows fed ({BATCH} per batch, 8.7 min window + 120 s history)", len(rows), "n"),
        ("decisions (10 s horizon), each executed once", len(router.known), "n"),
        ("offline: build the market + run the router", offline, "s"),
        ("streamed: every batch in, every decision and fill out", streamed, "s"),
        ("streamed / offline", streamed / offline, "x"),
        ("decide (solve) per decision, p50", float(np.median(router.decide_seconds)) * 1000, "ms"),
        ("execute per decision, first third p50", early, "ms"),
        ("execute per decision, last third p50", late, "ms"),
        ("execute streamed / offline, first third (same horizons)", early_ratio, "x"),
        ("execute streamed / offline, last third (no growth: ≈ first)", late_ratio, "x"),
        ("fill refreshes on a fork", len(router.refresh_seconds), "n"),
        ("market restarts (new venues after the first rows)", router.restarts, "n"),
    ]
