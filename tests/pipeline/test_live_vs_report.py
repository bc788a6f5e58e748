"""--live prints the decisions the report's router makes."""

from __future__ import annotations

import math
from pathlib import Path

from allocator.config import PenaltyGrid

REPO = Path(__file__).resolve().parents[2]
nan = math.nan


def test_live_decisions_are_the_reports_decisions():
    """--live applies the snapshot rule incrementally; its fills must be the batch router's, tick for tick."""
    from allocator.config import RunConfig
    from allocator.data.loader import load
    from allocator.data.venues import load_fee_table
    from allocator.data.window import WindowSpec
    from allocator.kafka.producer import event_frame
    from allocator.pipeline import run
    from allocator.stream.faithful import FaithfulStream

    data = load(REPO / "data" / "l1_day.csv.gz", WindowSpec("13:36:32", "13:38:00"), levels=1)
    fees = load_fee_table()
    for order in (3000, 5000, 12_000):
        config = RunConfig(order_size=order, grid=PenaltyGrid((0.5,), (0.5,), (0.1,)))
        result = run(data, fees, config)
        router = result.search.best.execution
        snaps = result.market.snapshots
        batch = [
            (int(snaps.ts_event[t]), int(snaps.publisher_ids[v]), float(p), int(q))
            for t, v, p, q in zip(router.tick, router.venue, router.price, router.shares, strict=True)
        ]
        live = FaithfulStream(order, config.step, "buy", config.grid.points()[0], fees, "parent", None)
        rows = event_frame(data.frame)
        for start in range(0, len(rows), 777):  # arbitrary batch boundaries, as Kafka delivers them
            live.add(rows.iloc[start : start + 777], 0.0)
        live.end(0.0)
        assert live.fills == batch
        assert live.waited == router.ticks_waited
