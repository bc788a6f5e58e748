"""The streaming engine decides what the offline router decides, however the rows are cut into batches.

Faithful buy/sell on random streams is tests/kafka/test_live.py; here the engine end to end on the recorded
data (its window handling, history, both modes and sides), the cont-kukanov router advancing with the data
(each horizon simulated once, fills refreshed on a fork, a late venue, an open end) with decisions and
fills checked against the offline run, ids independent of the batching, and the --live lines.
"""

from __future__ import annotations

import dataclasses
import random
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocator.config import PenaltyGrid, RunConfig, SimSettings
from allocator.data.loader import MarketData, frame_with_history, load
from allocator.data.venues import FeeTable, load_fee_table
from allocator.data.window import WindowSpec
from allocator.kafka.producer import event_frame
from allocator.pipeline import RunResult, run
from allocator.stream import ck
from allocator.stream.engine import StreamEngine, live_point
from allocator.stream.events import DecisionEvent, Fill
from allocator.stream.printer import LivePrinter

REPO = Path(__file__).resolve().parents[2]
WINDOW = WindowSpec("13:36:32", "13:37:31")
# (mode, side, order size, horizon s, λ_under): the ck cases make several decisions (small λ_u, short horizon)
CASES = [
    ("faithful", "buy", 3000, 30.0, 0.2),
    ("faithful", "sell", 3000, 30.0, 0.2),
    ("cont-kukanov", "buy", 30_000, 3.0, 0.01),
    ("cont-kukanov", "sell", 30_000, 3.0, 0.01),
    ("cont-kukanov", "buy", 3000, 30.0, 0.2),
]


class Collect:
    """A sink that keeps everything."""

    def __init__(self) -> None:
        self.events: list[DecisionEvent] = []
        self.fill_batches: list[list[Fill]] = []
        self.closed = False

    def decision(self, event: DecisionEvent) -> None:
        self.events.append(event)

    def fills(self, fills: list[Fill]) -> None:
        self.fill_batches.append(fills)

    def close(self) -> None:
        self.closed = True

    def all_fills(self) -> list[Fill]:
        return [f for e in self.events for f in e.fills] + [f for b in self.fill_batches for f in b]


def config_for(mode: str, side: str, order: int, horizon: float, lambda_under: float) -> RunConfig:
    return RunConfig(
        mode=mode,
        side=side,  # type: ignore[arg-type]
        order_size=order,
        grid=PenaltyGrid((0.2,), (lambda_under,), (0.0,)),
        sim=SimSettings.from_units(horizon_seconds=horizon),
    )


@cache
def fees() -> FeeTable:
    return load_fee_table()


@cache
def data_for(realistic: bool) -> MarketData:
    levels = None if realistic else 1
    calibration = int(120e9) if realistic else 0
    return load(REPO / "data" / "l1_day.csv.gz", WINDOW, levels=levels, calibration_ns=calibration)


@cache
def offline(case: tuple) -> RunResult:
    config = config_for(*case)
    return run(data_for(config.realistic), fees(), config)


def stream(case: tuple, seed: int, largest: int, sink: Collect | None = None) -> tuple[StreamEngine, Collect]:
    """The data's rows in replay order, in random batches of 1..largest rows (into `sink`, default a new
    Collect)."""
    config = config_for(*case)
    data = data_for(config.realistic)
    return stream_rows(config, data, replay_rows(data), seed, largest, sink)


def stream_rows(
    config: RunConfig,
    data: MarketData,
    rows: pd.DataFrame,
    seed: int,
    largest: int,
    sink: Collect | None = None,
) -> tuple[StreamEngine, Collect]:
    sink = sink if sink is not None else Collect()
    engine = StreamEngine(
        config, fees(), live_point(config.grid), parent="P", sinks=[sink], window=data.window
    )
    rng = random.Random(seed)
    at = 0
    while at < len(rows):
        size = rng.randint(1, largest)
        engine.feed(rows.iloc[at : at + size])
        at += size
    engine.end()
    return engine, sink


@cache
def _replay_rows(realistic: bool) -> pd.DataFrame:
    rows = event_frame(frame_with_history(data_for(realistic)))
    return rows.assign(n=np.arange(len(rows)))  # the replay index the wire carries


def replay_rows(data: MarketData) -> pd.DataFrame:
    return _replay_rows(data.history is not None)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}-h{c[3]:g}")
def test_streamed_decisions_and_fills_equal_the_offline_run(case: tuple) -> None:
    engine, sink = stream(case, seed=1, largest=4000)
    result = offline(case)
    assert engine.mismatch(result) is None
    live, latency, mismatch = engine.summary(result)
    assert mismatch is None and live["equals_offline"]
    router = result.search.best.execution
    assert live["shares_filled"] == router.shares_filled == sum(f.quantity for f in sink.all_fills())
    assert sink.closed
    assert latency["tick_to_decision_ms"]["count"] == engine.decisions > 0
    if case[0] == "cont-kukanov":
        assert [e.ts_ns for e in sink.events if e.kind == "solve"] == [d.t for d in router.decisions]
        if case[2] == 30_000:
            assert len(router.decisions) >= 3  # a case that really re-decides
            # every decision but those after the last row was taken while rows were still arriving
            assert engine.decisions_before_end >= len(router.decisions) - 1


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6), st.sampled_from([1, 50, 3000, 20_000]), st.sampled_from(CASES[2:4]))
def test_ck_streaming_is_exact_for_any_batching(seed: int, largest: int, case: tuple) -> None:
    """Whatever the batch boundaries, the decisions and fills are the offline run's,
    and so are the child order and fill ids."""
    if largest == 1:
        largest = 400  # one-row batches are the same logic, 28k feeds slower
    engine, sink = stream(case, seed, largest)
    assert engine.mismatch(offline(case)) is None
    reference = reference_ids(case)
    assert ids_of(sink) == reference


def test_each_horizon_is_simulated_once_with_jitter_and_fills_refreshed_at_every_batch(monkeypatch) -> None:
    """The simulator advances with the data: every decision is solved once and executed once (no replay of
    the session), latency jitter draws stay in step with the offline run's, and fills worked out on a fork
    while a horizon's rows arrive are the final ones."""
    monkeypatch.setattr(ck, "FILL_REFRESH_SECONDS", 0.0)
    config = RunConfig(
        mode="cont-kukanov",
        order_size=30_000,
        grid=PenaltyGrid((0.2,), (0.01,), (0.0,)),
        sim=SimSettings.from_units(horizon_seconds=3.0, jitter_ms=2.0, queue="probabilistic"),
    )
    data = data_for(True)
    engine, sink = stream_rows(config, data, replay_rows(data), seed=11, largest=300)
    offline_run = run(data, fees(), config)
    assert engine.mismatch(offline_run) is None
    router = engine.router
    assert isinstance(router, ck.CkStream)
    decisions = len(router.known)
    assert decisions == len(offline_run.search.best.execution.decisions) >= 3
    assert len(router.decide_seconds) == len(router.execute_seconds) == decisions
    assert len(router.refresh_seconds) > decisions  # fills went out while the horizons' rows arrived
    whole, _ = stream_rows(config, data, replay_rows(data), seed=0, largest=10**9)
    assert ids_of(sink) == ids_of(_sink_of(whole))


def _sink_of(engine: StreamEngine) -> Collect:
    sink = engine.sinks[0]
    assert isinstance(sink, Collect)
    return sink


def test_a_venue_that_first_appears_mid_window_renumbers_the_decisions() -> None:
    """A venue whose first row comes after the first decision shifts the venue order (venues are sorted
    by publisher_id): the market is rebuilt once and every decision and fill is still the offline run's."""
    config = config_for(*CASES[2])
    data = data_for(True)
    pids = np.unique(data.frame["publisher_id"].to_numpy())
    late = int(pids[1])  # a venue with others after it, so their indices move
    since = int(data.frame["ts_event"].iloc[0]) + 5 * 10**9
    assert data.history is not None

    def without_early(frame: pd.DataFrame) -> pd.DataFrame:
        keep = (frame["publisher_id"] != late) | (frame["ts_event"] >= since)
        return frame[keep.to_numpy()].reset_index(drop=True)

    changed = dataclasses.replace(data, frame=without_early(data.frame), history=without_early(data.history))
    rows = event_frame(frame_with_history(changed))
    rows = rows.assign(n=np.arange(len(rows)))
    engine, _sink = stream_rows(config, changed, rows, seed=2, largest=500)
    router = engine.router
    assert isinstance(router, ck.CkStream) and router.restarts >= 1
    offline_run = run(changed, fees(), config)
    decisions = offline_run.search.best.execution.decisions
    assert any(d.t < since for d in decisions) and any(
        d.t >= since and late_index(d, pids, late) for d in decisions
    )
    assert engine.mismatch(offline_run) is None


def late_index(decision, pids: np.ndarray, late: int) -> bool:
    """Whether the decision names a venue after the late one (an index the late venue shifted)."""
    after = {int(np.searchsorted(pids, p)) for p in pids if p > late}
    return bool(after & (set(decision.limits) | {decision.market_venue}))


def test_an_open_ended_window_decides_while_rows_arrive() -> None:
    """--end all: a horizon is decided only once its length is known (a row a horizon later has come),
    the last one at the end message; all as offline."""
    config = config_for(*CASES[2])
    data = load(
        REPO / "data" / "l1_day.csv.gz", WindowSpec("13:44:40", None), levels=None, calibration_ns=int(120e9)
    )
    rows = event_frame(frame_with_history(data))
    rows = rows.assign(n=np.arange(len(rows)))
    engine, _sink = stream_rows(config, data, rows, seed=4, largest=700)
    offline_run = run(data, fees(), config)
    assert engine.mismatch(offline_run) is None
    assert len(offline_run.search.best.execution.decisions) >= 3
    assert engine.decisions_before_end >= 2


@cache
def reference_ids(case: tuple) -> tuple[list[str], list[str]]:
    return ids_of(stream(case, seed=0, largest=10**9)[1])


def ids_of(sink: Collect) -> tuple[list[str], list[str]]:
    orders = [o.order_id for e in sink.events for o in e.orders]
    return orders, sorted(f.fill_id for f in sink.all_fills())


def test_ids_are_unique_and_fills_name_their_orders() -> None:
    _engine, sink = stream(CASES[2], seed=3, largest=2000)
    orders, fills = ids_of(sink)
    assert len(set(orders)) == len(orders) and len(set(fills)) == len(fills)
    known = set(orders)
    assert all(f.order_id in known for f in sink.all_fills())
    assert all(f.parent_id == "P" and f.side == "buy" for f in sink.all_fills())


def test_a_point_outside_the_grid_is_checked_against_its_own_offline_run() -> None:
    from allocator.allocation.penalties import Penalties

    case = CASES[2]
    config = config_for(*case)
    data = data_for(True)
    point = live_point(config.grid, Penalties(0.0, 5.0, 0.1))
    engine = StreamEngine(config, fees(), point, parent="P", window=data.window)
    rows = replay_rows(data)
    for at in range(0, len(rows), 5000):
        engine.feed(rows.iloc[at : at + 5000])
    engine.end()
    assert engine.mismatch(offline(case)) is None
    assert point.source == "--live-penalties"


def test_live_point_choice() -> None:
    one = PenaltyGrid((0.2,), (0.3,), (0.4,))
    assert live_point(one).penalties.as_tuple() == (0.2, 0.3, 0.4)
    assert live_point(one).source == "the grid's only point"
    many = PenaltyGrid((0.2, 0.5), (0.3,), (0.4,))
    assert live_point(many).penalties.as_tuple() == (0.2, 0.3, 0.4)
    assert "first of the grid's 2 points" in live_point(many).source


# ------------------------------------------------------------------------------------------- --live lines


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def printed(case: tuple, largest: int = 3000) -> list[str]:
    config = config_for(*case)
    data = data_for(config.realistic)
    lines: list[str] = []
    printer = LivePrinter(config.order_size, config.side, emit=lines.append)
    engine = StreamEngine(
        config, fees(), live_point(config.grid), parent="P", sinks=[printer], window=data.window
    )
    rows = replay_rows(data)
    for at in range(0, len(rows), largest):
        engine.feed(rows.iloc[at : at + largest])
    engine.end()
    return lines


def test_live_lines_faithful_buy() -> None:
    lines = printed(CASES[0])
    assert lines[0].startswith("live 13:36:32.004–") and "waited" in lines[0] and "remaining" in lines[0]
    split = [line for line in lines if " split: " in line]
    assert len(split) == 1
    assert split[0].startswith(
        "live 13:36:32.610 split: Nasdaq BX 300@222.84, Cboe EDGX 400@222.83, IEX 2300@222.84"
    )
    assert split[0].endswith("remaining 0 of 3000")


def test_live_lines_cont_kukanov_sell() -> None:
    lines = printed(CASES[3])
    decisions = [line for line in lines if " decision " in line]
    assert decisions[0].startswith("live 13:36:32.000 decision 1: remaining 30000; market ")
    assert any("filled: " in line and " maker" in line for line in lines)
    assert lines[-1].endswith("filled 30000 of 30000")
    for line in decisions:  # every price shown is a market price (positive), a sell's IOC cap is a floor
        assert "@-" not in line and "≤" not in line


def test_waits_are_summarised_at_most_once_a_second() -> None:
    clock = Clock()
    lines: list[str] = []
    printer = LivePrinter(1000, emit=lines.append, now=clock)
    base = 1_722_519_392_000_000_000
    for i in range(100):  # 100 waits over 2.5 s of wall clock
        clock.t = i * 0.025
        printer.decision(DecisionEvent(i, base + i * 1_000_000, "wait", 1000, detail={"why": "thin"}))
    printer.close()
    assert len(lines) == 3  # at 1.0 s, 2.0 s, and the rest at close
    assert lines[0] == "live 13:36:32.000–13:36:32.040 waited 41 ticks: thin"
    assert sum(int(line.split("waited ")[1].split(" ")[0]) for line in lines) == 100


class Ordered(Collect):
    """A sink that also keeps the order of everything it was told: (what, ts)."""

    def __init__(self) -> None:
        super().__init__()
        self.told: list[tuple[str, int]] = []

    def decision(self, event: DecisionEvent) -> None:
        super().decision(event)
        if event.kind != "fills":
            self.told.append(("decision", event.ts_ns))
        self.told += [("fill", f.ts_ns) for f in event.fills]

    def fills(self, fills: list[Fill]) -> None:
        super().fills(fills)
        self.told += [("fill", f.ts_ns) for f in fills]


@pytest.mark.parametrize("largest", [10**9, 2000])
@pytest.mark.parametrize("case", [CASES[2], ("cont-kukanov", "buy", 5000, 30.0, 0.05)])
def test_ck_fills_come_before_the_decisions_after_them(case: tuple, largest: int) -> None:
    """A decision at t knows of the fills before t, so they are told (and printed) ahead of it, in time
    order, however the rows were batched."""
    sink = Ordered()
    stream(case, seed=5, largest=largest, sink=sink)
    told = sink.told
    assert sum(what == "decision" for what, _ in told) >= 2 and any(what == "fill" for what, _ in told)
    for position, (what, ts) in enumerate(told):
        if what == "fill":
            assert all(ts < t for w, t in told[position + 1 :] if w == "decision"), (position, told)
    fills = [ts for what, ts in told if what == "fill"]
    assert fills == sorted(fills)
