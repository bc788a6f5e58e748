"""The offline faithful-mode run on data/l1_day.csv.gz: load, snapshots, the full 125-point grid, baselines.

Target: the whole run (load + grid + baselines + report) under 3 s on this 2-core machine.
"""

from __future__ import annotations

import time
from pathlib import Path

from allocator.baselines.snapshot import BASELINES
from allocator.config import RunConfig
from allocator.data.loader import load
from allocator.data.venues import load_fee_table
from allocator.pipeline import build_market
from allocator.pipeline import run as run_pipeline

DATASET = Path(__file__).resolve().parents[1] / "data" / "l1_day.csv.gz"


def run() -> list[tuple[str, float, str]]:
    fees = load_fee_table()
    t0 = time.perf_counter()
    data = load(DATASET, levels=1)
    t1 = time.perf_counter()
    market, _ = build_market(data, fees)
    t2 = time.perf_counter()
    for fn in BASELINES.values():
        fn(market, 5000)
    t3 = time.perf_counter()
    result = run_pipeline(data, fees, RunConfig(jobs=1))
    t4 = time.perf_counter()
    total_start = time.perf_counter()
    run_pipeline(load(DATASET, levels=1), fees, RunConfig())
    total = time.perf_counter() - total_start
    return [
        ("rows in window / ticks", data.rows_in_window / market.snapshots.ticks, "rows per tick"),
        ("load (gzip CSV, 142k rows, top level only)", t1 - t0, "s"),
        ("snapshot rule (104k ticks x 6 venues)", t2 - t1, "s"),
        ("three baselines", t3 - t2, "s"),
        ("snapshots + 125-point grid + baselines + report (serial)", t4 - t3, "s"),
        ("grid points evaluated", len(result.search.points), "points"),
        ("whole offline run incl. load (target < 3 s)", total, "s"),
    ]
