"""The live faithful router without a broker: the incremental snapshot rule equals build_snapshots, and the
streaming router's fills equal the faithful backtest's, buy and sell, on random streams cut into random
batches."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.config import PenaltyGrid, RunConfig
from allocator.data.venues import load_fee_table
from allocator.execution.faithful import Market, run_faithful_router
from allocator.kafka.producer import event_frame
from allocator.snapshots.rule import IncrementalSnapshots, build_snapshots
from allocator.snapshots.side import Side
from allocator.stream.faithful import FaithfulStream

PRICES = [np.nan, 0.0, -1.0, np.inf, 10.0, 10.01, 10.02, 9.99]
SIZES = [0, -3, 100, 150, 300, 1000]
VENUES = [1, 2, 39, 41]  # ids from the fee table and one it does not know


@st.composite
def streams(draw: st.DrawFn) -> tuple[pd.DataFrame, list[int]]:
    """Rows in file order (ts_event not sorted: equal and earlier timestamps happen) and batch cuts."""
    n = draw(st.integers(1, 40))
    row = st.tuples(
        st.integers(0, 6),
        st.sampled_from(VENUES),
        st.sampled_from(PRICES),
        st.sampled_from(SIZES),
        st.sampled_from(PRICES),
        st.sampled_from(SIZES),
    )
    rows = draw(st.lists(row, min_size=n, max_size=n))
    frame = pd.DataFrame(
        rows, columns=["ts_event", "publisher_id", "ask_px_00", "ask_sz_00", "bid_px_00", "bid_sz_00"]
    )
    frame["ts_event"] = frame["ts_event"].astype(np.int64) * 1_000 + 1_722_519_392_000_000_000
    cuts = sorted(set(draw(st.lists(st.integers(0, n), max_size=6))))
    return frame, cuts


def batches(frame: pd.DataFrame, cuts: list[int]) -> list[pd.DataFrame]:
    """The stream as Kafka would deliver it: event order, cut at arbitrary places."""
    rows = event_frame(frame)
    bounds = [0, *cuts, len(rows)]
    return [rows.iloc[a:b] for a, b in pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(streams(), st.sampled_from(["buy", "sell"]))
def test_incremental_snapshots_equal_build_snapshots(stream: tuple[pd.DataFrame, list[int]], side: Side):
    frame, cuts = stream
    expected = build_snapshots(frame, side)
    incremental = IncrementalSnapshots(side)
    ticks = [tick for batch in batches(frame, cuts) for tick in incremental.add(batch)]
    last = incremental.close()
    assert last is not None
    ticks.append(last)
    assert incremental.close() is None  # closing twice adds nothing
    assert [t.ts_event for t in ticks] == expected.ts_event.tolist()
    for t, tick in enumerate(ticks):
        tradable = np.flatnonzero(expected.take_sz[t] > 0)
        want = [
            (int(expected.publisher_ids[v]), float(expected.take_px[t, v]), int(expected.take_sz[t, v]))
            for v in tradable
        ]
        assert [tuple(q) for q in tick.quotes] == want
    assert incremental.ticks == expected.ticks
    assert incremental.untradable_quotes == expected.untradable_quotes


def test_no_rows_no_tick():
    snapshots = IncrementalSnapshots()
    assert (
        snapshots.add(pd.DataFrame({c: [] for c in ("ts_event", "publisher_id", "ask_px_00", "ask_sz_00")}))
        == []
    )
    assert snapshots.close() is None
    assert snapshots.ticks == 0


def _config(order_size: int) -> RunConfig:
    """One grid point, the default step."""
    return RunConfig(order_size=order_size, step=100, grid=PenaltyGrid((0.4,), (0.6,), (0.3,)))


@settings(max_examples=150, deadline=None)
@given(streams(), st.sampled_from([100, 300, 500, 1200]), st.sampled_from(["buy", "sell"]))
def test_live_fills_equal_the_faithful_backtest(
    stream: tuple[pd.DataFrame, list[int]], order_size: int, side: Side
):
    frame, cuts = stream
    fees = load_fee_table()
    snaps = build_snapshots(frame, side)
    taker, rebate = fees.arrays(snaps.publisher_ids)
    market = Market(snaps, taker, rebate, int(snaps.ts_event[0]), int(snaps.ts_event[-1]) + 1)
    config = _config(order_size)
    backtest = run_faithful_router(market, order_size, config.grid.points()[0])
    live = FaithfulStream(order_size, config.step, side, config.grid.points()[0], fees, "parent", None)
    for batch in batches(frame, cuts):
        live.add(batch, 0.0)
    live.end(0.0)
    assert live.fills == [
        (int(snaps.ts_event[t]), int(snaps.publisher_ids[v]), float(p), int(q))
        for t, v, p, q in zip(backtest.tick, backtest.venue, backtest.price, backtest.shares, strict=True)
    ]
    assert live.waited == backtest.ticks_waited
    assert live.remaining == backtest.unfilled
