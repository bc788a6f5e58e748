"""The market grown tick by tick equals the one built from the whole file: every venue stream array and
every queue-outflow array, whatever the cut points, from pandas frames or from a stream's numpy batches
(Arrow's conversion: integer columns with nulls as floats, strings as objects)."""

from __future__ import annotations

import random
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocator.allocation.penalties import Penalties
from allocator.config import SimSettings
from allocator.data.loader import frame_with_history, load
from allocator.data.venues import load_fee_table
from allocator.data.window import WindowSpec
from allocator.execution.book import BookBuilder, book_depth, build_book
from allocator.execution.live_market import LiveMarket
from allocator.execution.models import queue_model
from allocator.execution.realistic import RouterSession
from allocator.execution.sim_market import cumulative_outflow
from allocator.pipeline import build_sim_market_for
from allocator.snapshots.rule import build_snapshots, event_order

REPO = Path(__file__).resolve().parents[2]
FIELDS = (
    "ts_event",
    "ts_seen",
    "take_px",
    "take_sz",
    "post_px",
    "post_sz",
    "hit_px",
    "hit_sz",
    "interesting",
)


@cache
def file_order() -> pd.DataFrame:
    data = load(
        REPO / "data" / "l1_day.csv.gz",
        WindowSpec("13:36:32", "13:37:02"),
        levels=None,
        calibration_ns=int(60e9),
    )
    return frame_with_history(data)


@cache
def recorded() -> pd.DataFrame:
    """The rows as a stream sends them: in event order (the file is in ts_recv order)."""
    frame = file_order()
    return frame.iloc[event_order(frame["ts_event"].to_numpy())].reset_index(drop=True)


def tick_cuts(ts: np.ndarray, seed: int, largest: int) -> list[int]:
    """Random cut positions that never split a tick (a stream appends complete ticks only)."""
    rng = random.Random(seed)
    cuts, at = [], 0
    while at < len(ts):
        at = min(at + rng.randint(1, largest), len(ts))
        while 0 < at < len(ts) and ts[at] == ts[at - 1]:
            at += 1
        cuts.append(at)
    return cuts


def as_stream_batch(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The columns as the Kafka edge hands them over: Arrow → numpy."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return {name: table.column(name).to_numpy() for name in table.column_names}


def assert_same_book(whole, grown) -> None:
    for v, (a, b) in enumerate(zip(whole.streams, grown.streams, strict=True)):
        for name in FIELDS:
            x, y = getattr(a, name), getattr(b, name)
            assert x.shape == y.shape, (v, name)
            assert np.array_equal(x, y, equal_nan=True), (v, name)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 10**6),
    st.sampled_from([1, 40, 2000]),
    st.sampled_from(["buy", "sell"]),
    st.booleans(),
)
def test_appending_tick_by_tick_builds_the_offline_book(
    seed: int, largest: int, side: str, arrow: bool
) -> None:
    frame = recorded()
    pids = build_snapshots(frame, side).publisher_ids  # type: ignore[arg-type]
    whole = build_book(file_order(), pids, side)  # type: ignore[arg-type]
    builder = BookBuilder(pids, side, book_depth(frame.columns, side))  # type: ignore[arg-type]
    start = 0
    for cut in tick_cuts(frame["ts_event"].to_numpy(), seed, largest if largest > 1 else 400):
        part = frame.iloc[start:cut]
        builder.append(as_stream_batch(part) if arrow else part)
        start = cut
    assert_same_book(whole, builder.book())


@pytest.mark.parametrize("queue", ["conservative", "probabilistic"])
def test_the_outflow_meter_grown_in_pieces_equals_one_pass(queue: str) -> None:
    frame = recorded()
    fees = load_fee_table()
    sim = SimSettings.from_units(queue=queue)
    pids = build_snapshots(frame, "buy").publisher_ids
    whole = build_book(frame, pids, "buy")
    first = int(frame["ts_event"].iloc[0])
    window = (int(frame["ts_event"].iloc[-1]), int(frame["ts_event"].iloc[-1]) + 1)
    live = LiveMarket(pids, fees, sim, "buy", book_depth(frame.columns, "buy"), window, first)
    start = 0
    for cut in tick_cuts(frame["ts_event"].to_numpy(), 7, 300):
        live.append(as_stream_batch(frame.iloc[start:cut]))
        start = cut
    for v, stream in enumerate(whole.streams):
        want = cumulative_outflow(stream, queue_model(queue))
        assert np.array_equal(live.sim_market.outflow[v], want), v
        assert live.sim_market.outflow[v][-1] > 0


def test_rows_must_come_in_order_and_from_known_venues() -> None:
    frame = recorded()
    pids = np.unique(frame["publisher_id"].to_numpy())
    builder = BookBuilder(pids[1:], "buy", 1)
    with pytest.raises(ValueError, match="publisher_id"):
        builder.append(frame.iloc[:500])
    builder = BookBuilder(pids, "buy", 1)
    builder.append(frame.iloc[500:600])
    with pytest.raises(ValueError, match="earlier"):
        builder.append(frame.iloc[:10])


def test_a_fork_runs_ahead_without_touching_the_session() -> None:
    """What a stream does while a horizon's rows arrive: the fork executes the horizon, the session is as
    it was, and executing on the session afterwards gives the fork's fills."""
    frame = recorded()
    data = load(
        REPO / "data" / "l1_day.csv.gz",
        WindowSpec("13:36:32", "13:37:02"),
        levels=None,
        calibration_ns=int(60e9),
    )
    sim_market, _ = build_sim_market_for(
        data, load_fee_table(), SimSettings.from_units(horizon_seconds=5, jitter_ms=2), "buy"
    )
    assert len(frame)
    session = RouterSession(sim_market, 20_000, Penalties(0.2, 0.02, 0.0))
    step = session.decide()
    assert step is not None and step.decision is not None
    fork = session.fork()
    fork.execute(step)
    assert len(fork.sim.ledger) > 0 and len(session.sim.ledger) == 0 and session.index == 0
    session.execute(step)
    assert session.sim.ledger == fork.sim.ledger
    assert session.sim.orders_sent == fork.sim.orders_sent
    assert session.sim.rng.integers(0, 10**9) == fork.sim.rng.integers(0, 10**9)


def test_a_venue_added_late_takes_its_place_in_publisher_id_order() -> None:
    frame = recorded()
    pids = np.unique(frame["publisher_id"].to_numpy())
    late = int(pids[1])
    since = int(frame["ts_event"].iloc[len(frame) // 2])
    keep = (frame["publisher_id"] != late) | (frame["ts_event"] >= since)
    frame = frame[keep.to_numpy()].reset_index(drop=True)
    fees = load_fee_table()
    settings = SimSettings.from_units(queue="probabilistic")
    first = int(frame["ts_event"].iloc[0])
    window = (since, since + 1)
    live = LiveMarket(np.delete(pids, 1), fees, settings, "buy", 10, window, first)
    start = 0
    moved = None
    for cut in tick_cuts(frame["ts_event"].to_numpy(), 3, 700):
        part = as_stream_batch(frame.iloc[start:cut])
        if not live.knows(part["publisher_id"]):
            moved = live.add_venues(part["publisher_id"])
        live.append(part)
        start = cut
    assert moved is not None and list(moved) == [0, *range(2, len(pids))]
    assert list(live.publisher_ids) == list(pids)
    assert_same_book(build_book(frame, pids, "buy"), live.sim_market.book)
    taker, _rebate = fees.arrays(pids)
    assert np.array_equal(live.sim_market.market.taker_fee, taker)
    for v, stream in enumerate(build_book(frame, pids, "buy").streams):
        assert np.array_equal(
            live.sim_market.outflow[v], cumulative_outflow(stream, queue_model("probabilistic"))
        )
