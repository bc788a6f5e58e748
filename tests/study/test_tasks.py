"""A study task: a block of arrivals on one path gives one row per order and strategy, reproducibly."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import pytest

from allocator.config import PenaltyGrid, RunConfig
from allocator.data.loader import load
from allocator.data.venues import load_fee_table
from allocator.data.window import FULL_FILE, NS_PER_SECOND, Window, format_ns
from allocator.study.evaluate import evaluate_order
from allocator.study.orders import arrival_times
from allocator.study.tasks import evaluate_block

REPO = Path(__file__).resolve().parents[2]
HORIZON_NS = 60 * NS_PER_SECOND
CONFIG = RunConfig(order_size=1000, mode="cont-kukanov", grid=PenaltyGrid((0.2,), (0.2, 5.0), (0.1,)), jobs=1)


@pytest.mark.slow
def test_a_block_is_every_order_and_strategy_and_reproducible():
    data = load(REPO / "data" / "l1_day.csv.gz", FULL_FILE)
    ts = data.frame["ts_event"]
    arrivals = arrival_times(
        int(ts.min()),
        int(ts.max()),
        2,
        calibration_ns=CONFIG.sim.calibration_ns,
        order_horizon_ns=HORIZON_NS,
    )
    fees = load_fee_table()
    block = functools.partial(
        evaluate_block, data, "shipped", arrivals, ["buy", "sell"], order_horizon_ns=HORIZON_NS, fees=fees
    )
    rows = block(config=CONFIG)
    assert len(rows) == 2 * 2 * (2 + 3)  # arrivals × sides × (grid points + baselines)
    assert {(r.arrival_ts, r.side) for r in rows} == {
        (format_ns(a), s) for a in arrivals for s in ("buy", "sell")
    }
    first = [r for r in rows if r.arrival_ts == format_ns(arrivals[0]) and r.side == "sell"]
    order = data.sub_window(Window(arrivals[0], arrivals[0] + HORIZON_NS), CONFIG.sim.calibration_ns)
    alone = evaluate_order(order, fees, dataclasses.replace(CONFIG, side="sell"))
    assert [(r.strategy, r.shortfall_bps) for r in first] == [(o.strategy, o.shortfall_bps) for o in alone]
    assert block(config=CONFIG) == rows
