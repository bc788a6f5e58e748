"""The streaming engine: rows in as they arrive, decisions out at once, and proof at the end that they were
the offline router's.

It takes frames of rows in event order (calibration history and window rows alike; the Kafka edge,
allocator.kafka.live, feeds it from the consumer's polls) with the time each arrived, routes one parent
order at one penalty point (`live_point`), hands every decision, child order and fill to its sinks (the
--live printer, the orders/fills topics), and measures the time from a decision's triggering poll to its
emission. `summary` compares what it did with the offline router's run on the same rows at the same
point: the report's `run.live` and `run.latency` sections.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from allocator.allocation.penalties import Penalties
from allocator.config import PenaltyGrid, RunConfig
from allocator.data.loader import history_start
from allocator.data.venues import FeeTable
from allocator.data.window import Window
from allocator.execution.faithful import Execution, run_faithful_router
from allocator.execution.realistic import run_ck_router
from allocator.pipeline import RunResult
from allocator.snapshots.rule import take_columns
from allocator.stream.ck import CkStream, simulated
from allocator.stream.events import Batch, DecisionEvent, Fill
from allocator.stream.faithful import REPLAY_INDEX, FaithfulStream

log = logging.getLogger(__name__)
DECISION_KINDS = ("split", "wait", "solve", "no-quote", "cleanup")


class Sink(Protocol):
    """Where decisions go: the --live printer, the routing topics."""

    def decision(self, event: DecisionEvent) -> None: ...

    def fills(self, fills: list[Fill]) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class LivePoint:
    """The one penalty point the live router uses, and why that one."""

    penalties: Penalties
    source: str

    def report(self) -> dict[str, Any]:
        return {
            "lambda_over": self.penalties.lambda_over,
            "lambda_under": self.penalties.lambda_under,
            "theta_queue": self.penalties.theta_queue,
            "chosen_by": self.source,
        }


def live_point(grid: PenaltyGrid, chosen: Penalties | None = None) -> LivePoint:
    """The grid's point when it has one; else `chosen` (--live-penalties); else the first grid point (the
    best point is known only after the whole replay, so a live router cannot use it)."""
    points = grid.points()
    if chosen is not None:
        return LivePoint(chosen, "--live-penalties")
    if len(points) == 1:
        return LivePoint(points[0], "the grid's only point")
    return LivePoint(points[0], f"the first of the grid's {len(points)} points; choose with --live-penalties")


class StreamEngine:
    """One parent order routed as its rows arrive (see the module docstring)."""

    def __init__(
        self,
        config: RunConfig,
        fees: FeeTable,
        point: LivePoint,
        *,
        parent: str,
        symbol: str | None = None,
        sinks: Sequence[Sink] = (),
        window: Window | None = None,
        source: str = "stream",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config, self.fees, self.point, self.parent, self.symbol = config, fees, point, parent, symbol
        self.sinks, self.clock, self.source = list(sinks), clock, source
        self.window: Window | None = None
        self.router: FaithfulStream | CkStream | None = None
        self.pending: list[tuple[Batch, float]] = []  # rows that came before the window was known
        self.rows_fed = 0
        self.latencies_ms: list[float] = []
        self.decisions = 0
        self.decisions_before_end = 0
        self.orders = 0
        self.fills: list[Fill] = []
        self.ended = False
        if window is not None:
            self.set_window(window)

    # ------------------------------------------------------------------ input

    def set_window(self, window: Window) -> None:
        """The window to route in (the Kafka edge knows it once the replay's first window row is in)."""
        self.window = window
        config = self.config
        if config.realistic:
            self.router = CkStream(
                config, self.fees, self.point.penalties, window, self.parent, self.symbol, self.source
            )
        else:
            self.router = FaithfulStream(
                config.order_size,
                config.step,
                config.side,
                self.point.penalties,
                self.fees,
                self.parent,
                self.symbol,
            )
        pending, self.pending = self.pending, []
        for rows, arrived_at in pending:
            self._route(rows, arrived_at)

    def feed(self, rows: pd.DataFrame | Batch, arrived_at: float | None = None) -> None:
        """New rows in event order (history and window), arrived at `arrived_at` (time.monotonic()): a frame,
        or its columns as numpy arrays (what the Kafka edge hands over, without pandas per poll)."""
        arrived_at = self.clock() if arrived_at is None else arrived_at
        rows = as_batch(rows)
        length = len(rows["ts_event"])
        if REPLAY_INDEX not in rows:
            rows[REPLAY_INDEX] = np.arange(self.rows_fed, self.rows_fed + length)
        self.rows_fed += length
        if not length:
            return
        if self.router is None:
            self.pending.append((rows, arrived_at))
            return
        self._route(rows, arrived_at)

    def next_due(self) -> float | None:
        """Rows whose ts_event are all ≤ this may be held back and fed later with the next rows (no decision
        can come from them); None: feed every row now."""
        return self.router.next_due() if isinstance(self.router, CkStream) else None

    def wants(self, name: str) -> bool:
        """Whether this engine's router reads column `name` (the Kafka edge converts only those)."""
        if self.config.realistic:
            return wanted(name)
        return name in (REPLAY_INDEX, "ts_event", "publisher_id", *take_columns(self.config.side))

    def end(self, arrived_at: float | None = None) -> None:
        """Every row arrived (the end message, or the stream stopped): decide what is left."""
        if self.ended:
            return
        self.ended = True
        arrived_at = self.clock() if arrived_at is None else arrived_at
        if self.router is not None:
            self._emit(self.router.end(arrived_at), at_end=True)
        for sink in self.sinks:
            sink.close()

    def _route(self, rows: Batch, arrived_at: float) -> None:
        assert self.window is not None and self.router is not None
        ts = rows["ts_event"]
        start, end = self.window.start_ns, self.window.end_ns
        if isinstance(self.router, CkStream):
            if len(ts) > 1 and not bool(np.all(ts[1:] >= ts[:-1])):
                order = np.argsort(ts, kind="stable")  # never on a replay: it streams in event order
                rows = {name: values[order] for name, values in rows.items()}
                ts = rows["ts_event"]
            first = history_start(self.window, self.config.calibration_ns)
            h0, h1, w1 = (int(i) for i in np.searchsorted(ts, [first, start, end], side="left"))
            events = self.router.add(rows, (h0, h1), (h1, w1), arrived_at)
        else:
            events = self.router.add(_between(rows, ts, start, end), arrived_at)
        self._emit(events, at_end=False)

    def _emit(self, events: list[DecisionEvent], *, at_end: bool) -> None:
        for event in events:
            if event.kind in DECISION_KINDS:
                for sink in self.sinks:
                    sink.decision(event)
                if event.arrived_at is not None:
                    self.latencies_ms.append((self.clock() - event.arrived_at) * 1000)
                self.decisions += 1
                self.decisions_before_end += not at_end
                self.orders += len(event.orders)
            elif event.fills:
                for sink in self.sinks:
                    sink.fills(event.fills)
            self.fills += event.fills

    # ------------------------------------------------------------------ the proof

    def offline_execution(self, result: RunResult) -> Execution:
        """The offline router at the live point: the grid's run when the point is in the grid."""
        for point in result.search.points:
            if point.penalties == self.point.penalties:
                return point.execution
        config = self.config
        if config.realistic:
            assert result.sim_market is not None
            return run_ck_router(result.sim_market, config.order_size, self.point.penalties)
        return run_faithful_router(result.market, config.order_size, self.point.penalties, step=config.step)

    def mismatch(self, result: RunResult) -> str | None:
        """None when the live decisions and fills equal the offline router's at the live point; else what differs."""
        offline = self.offline_execution(result)
        router = self.router
        if router is None:
            return None if offline.shares_filled == 0 else "the live router saw no rows of the window"
        pids = (
            result.sim_market.book.publisher_ids
            if result.sim_market is not None
            else result.market.snapshots.publisher_ids
        )
        if isinstance(router, FaithfulStream):
            ts = result.market.snapshots.ts_event
            want = [
                (int(ts[t]), int(pids[v]), float(p), int(q))
                for t, v, p, q in zip(offline.tick, offline.venue, offline.price, offline.shares, strict=True)
            ]
            if router.fills != want:
                return f"live fills {_short(router.fills)} != offline {_short(want)}"
            if router.waited != offline.ticks_waited:
                return f"live waited {router.waited} ticks, offline {offline.ticks_waited}"
            return None
        live_decisions = [_decision_key(d) for d in router.known if d is not None]
        want_decisions = [_decision_key(d) for d in offline.decisions]
        if live_decisions != want_decisions:
            return f"live decisions {_short(live_decisions)} != offline {_short(want_decisions)}"
        want_fills = sorted(
            (int(t), int(pids[v]), float(p), int(q), str(k))
            for t, v, p, q, k in zip(
                offline.ts, offline.venue, offline.price, offline.shares, offline.kind, strict=True
            )
        )
        if sorted(router.fill_keys) != want_fills:
            return f"live fills {_short(sorted(router.fill_keys))} != offline {_short(want_fills)}"
        return None

    def summary(self, result: RunResult) -> tuple[dict[str, Any], dict[str, Any], str | None]:
        """(run.live, run.latency, mismatch or None)."""
        mismatch = self.mismatch(result)
        offline = self.offline_execution(result)
        router = self.router
        live: dict[str, Any] = {
            "mode": self.config.mode,
            "side": self.config.side,
            "parent_id": self.parent,
            "penalties": self.point.report(),
            "decisions": self.decisions,
            "decisions_before_end": self.decisions_before_end,
            "child_orders": self.orders,
            "fills": len(self.fills),
            "shares_filled": sum(f.quantity for f in self.fills),
            "offline_shares_filled": offline.shares_filled,
            "equals_offline": mismatch is None,
            "mismatch": mismatch,
        }
        if isinstance(router, FaithfulStream):
            live |= {"splits": router.splits, "ticks_waited": router.waited}
        elif isinstance(router, CkStream):
            live |= {
                "simulator": {
                    "decide_ms": _stats([s * 1000 for s in router.decide_seconds]),
                    "execute_ms": _stats([s * 1000 for s in router.execute_seconds]),
                    "fill_refresh_ms": _stats([s * 1000 for s in router.refresh_seconds]),
                    "restarts": router.restarts,
                    "note": "each horizon is decided once the rows seen by its time are in and executed once "
                    "its rows up to its end plus one latency are; a refresh runs the working horizon on a "
                    "fork to emit the fills already final; a restart replays the session when a new venue "
                    "appears",
                }
            }
        latency = {
            "tick_to_decision_ms": _stats(self.latencies_ms),
            "measured": "from the return of the poll that delivered the row completing the decision's input "
            "(a row of a later tick, or the end message) to the decision handed to every sink",
        }
        return live, latency, mismatch


def as_batch(rows: pd.DataFrame | Batch) -> Batch:
    """Rows as numpy columns (ts_event as int64), the columns the routers read only."""
    names = rows.columns if isinstance(rows, pd.DataFrame) else list(rows)
    out = {
        str(name): np.asarray(rows[name]) if not isinstance(rows, pd.DataFrame) else rows[name].to_numpy()
        for name in names
        if wanted(str(name))
    }
    out["ts_event"] = out["ts_event"].astype(np.int64, copy=False)
    return out


def wanted(name: str) -> bool:
    """The columns either router reads: the replay index, the faithful snapshot's and the simulator's."""
    return name == REPLAY_INDEX or simulated(name)


def _between(rows: Batch, ts: np.ndarray, lo: int, hi: int) -> Batch:
    """The rows with lo ≤ ts_event < hi: a slice, as a stream arrives in event order (a mask otherwise)."""
    if len(ts) > 1 and not bool(np.all(ts[1:] >= ts[:-1])):
        keep = (ts >= lo) & (ts < hi)
        return {name: values[keep] for name, values in rows.items()}
    a, b = np.searchsorted(ts, [lo, hi], side="left")
    if a == 0 and b == len(ts):
        return rows
    return {name: values[int(a) : int(b)] for name, values in rows.items()}


def _decision_key(d: Any) -> tuple:
    return (d.t, d.remaining, d.market, tuple(sorted(d.limits.items())), d.post_px)


def _short(items: list) -> str:
    text = repr(items[:4])
    return text if len(items) <= 4 else f"{text[:-1]}, … {len(items)} in all]"


def _stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    arr = np.asarray(values)
    return {
        "count": len(values),
        "p50": round(float(np.percentile(arr, 50)), 3),
        "p99": round(float(np.percentile(arr, 99)), 3),
        "max": round(float(arr.max()), 3),
    }
