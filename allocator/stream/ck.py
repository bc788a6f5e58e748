"""The Cont–Kukanov router on a stream: the market grows tick by tick and the simulator advances with it.

Rows arrive in event order, so once a row with a later ts_event has arrived (or the end message) every row
before it is in: those complete ticks are appended to a LiveMarket (allocator.execution.live_market),
which extends every venue's stream and queue outflow in place. The router's session
(allocator.execution.realistic.RouterSession) then moves as far as the data allows:
- it decides horizon t once the rows seen by t are in (and, for an unbounded window end, once the
  horizon's length is known), and the decision goes out at once;
- it executes that decision once the rows up to the horizon's end plus one latency are in (the last
  cancel has landed), and the fills go out.
So each horizon is simulated once, over its own rows: the cost per decision does not grow with the rows
received. While a decision's orders work, its fills are refreshed every `fill_refresh_seconds` by running
the horizon on a fork of the simulator over the rows so far: a fill at τ depends only on rows with
ts_event ≤ τ, so those before the first incomplete tick are final. Decisions, fills and ids are the
offline run's, which the engine checks at the end of every run.

A venue that first appears after others have been appended changes the venue order (offline, venues are
sorted by publisher_id): it is inserted in its place and the session starts again on the renumbered
market, replaying the decisions taken (`restarts` in the report). No row is kept outside the market.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import numpy as np

from allocator.allocation.penalties import Penalties
from allocator.allocation.policy import Decision, renumber_venues
from allocator.config import RunConfig
from allocator.data.venues import FeeTable
from allocator.data.window import Window
from allocator.execution.book import book_depth
from allocator.execution.live_market import LiveMarket
from allocator.execution.realistic import RouterSession, RouterStep
from allocator.execution.sim_market import cleanup
from allocator.snapshots.side import side_sign
from allocator.stream.events import Batch, ChildOrder, DecisionEvent, Fill

log = logging.getLogger(__name__)
SIM_COLUMNS = {"ts_event", "ts_recv", "publisher_id", "action", "side", "price", "size"}
# While a decision's orders work, how often (wall clock) the fills known so far are worked out on a fork of
# the simulator (each costs one run of the horizon's rows so far).
FILL_REFRESH_SECONDS = 1.0
OPEN_END = np.iinfo(np.int64).max


class CkStream:
    """Grows the market with the complete ticks, decides and executes each horizon once its rows are in."""

    def __init__(
        self,
        config: RunConfig,
        fees: FeeTable,
        penalties: Penalties,
        window: Window,
        parent: str,
        symbol: str | None,
        source: str = "stream",
        fill_refresh_seconds: float | None = None,
    ) -> None:
        self.config, self.fees, self.penalties, self.window = config, fees, penalties, window
        self.parent, self.symbol, self.source = parent, symbol, source
        self.settings = config.sim
        self.side = config.side
        self.sign = side_sign(config.side)
        self.fill_refresh_seconds = (
            FILL_REFRESH_SECONDS if fill_refresh_seconds is None else fill_refresh_seconds
        )
        self.waiting = Columns()  # rows of the tick still arriving (ts_event = max_ts)
        self.first_row: int | None = None
        self.first_window_row: int | None = None
        self.max_ts: int | None = None  # the latest ts_event received: rows before it are complete
        self.complete_max: int | None = None  # the latest ts_event among complete rows
        self.live: LiveMarket | None = None
        self.session: RouterSession | None = None
        self.pending: RouterStep | None = None  # decided, waiting for its rows to execute
        self.known: list[Decision | None] = []
        self.done = False  # the session stopped deciding and its last decision executed
        self.ended = False
        self.closed = False  # the clean-up was sent
        self.emitted: set[str] = set()
        self.unsent: list[Fill] = []  # fills final but not yet handed out (they go in time order)
        self.fills: list[Fill] = []  # every fill emitted, in order
        self.fill_keys: list[
            tuple[int, int, float, int, str]
        ] = []  # (ts, publisher_id, cost px, shares, kind)
        self.restarts = 0
        self.decide_seconds: list[float] = []
        self.execute_seconds: list[float] = []
        self.refresh_seconds: list[float] = []
        self.last_refresh = -math.inf
        self.refreshed_to: int | None = None

    # ------------------------------------------------------------------ input

    def add(
        self, rows: Batch, history: tuple[int, int], window: tuple[int, int], arrived_at: float
    ) -> list[DecisionEvent]:
        """New rows (event order): history rows at positions [history), window rows at [window); the
        decisions and fills they make possible."""
        if self.done:
            return []  # every horizon has executed over rows already in; the clean-up needs no later row
        a, b = history[0] if history[1] > history[0] else window[0], window[1]
        if window[1] <= window[0]:
            b = history[1]
        if b <= a:
            return self._advance(None, arrived_at)
        ts = rows["ts_event"]
        if window[1] > window[0] and self.first_window_row is None:
            self.first_window_row = int(ts[window[0]])
        self.first_row = int(ts[a]) if self.first_row is None else self.first_row
        self.waiting.add(rows, a, b)
        self._advance_clock(ts[a:b])
        self._append_complete()
        index = rows["n"] if "n" in rows else np.full(len(ts), -1)
        return self._advance((ts[a:b], index[a:b]), arrived_at)

    def end(self, arrived_at: float) -> list[DecisionEvent]:
        """The stream ended: every row is in; decide and execute what is left, clean up, emit every fill."""
        self.ended = True
        self._append_complete()
        return self._advance(None, arrived_at)

    def _advance_clock(self, ts: np.ndarray) -> None:
        top = int(ts[-1])
        if self.max_ts is not None and top > self.max_ts:
            # every row before the new top is complete; the previous top's tick among them
            below = ts[ts < top]
            self.complete_max = max(self.max_ts, int(below[-1])) if len(below) else self.max_ts
        elif self.max_ts is None:
            below = ts[ts < top]
            self.complete_max = int(below[-1]) if len(below) else None
        self.max_ts = top if self.max_ts is None else max(self.max_ts, top)

    def _append_complete(self) -> None:
        """Move the complete rows (all of them once the stream ended) into the market."""
        below = None if self.ended else self.max_ts
        frame, self.waiting = self.waiting.split(below)
        if not frame or not len(frame["ts_event"]):
            return
        if self.live is None:
            self._start(frame)
            return
        if not self.live.knows(frame["publisher_id"]):
            self._restart(self.live.add_venues(frame["publisher_id"]))
        self.live.append(frame)

    # ------------------------------------------------------------------ the market and the session

    def _window_bounds(self) -> tuple[int, int]:
        start = self.first_window_row if self.window.open_start else self.window.start_ns
        assert start is not None
        return start, OPEN_END if self.window.open_end else self.window.end_ns

    def _new_market(self, frame: Batch) -> LiveMarket:
        pids = np.unique(np.asarray(frame["publisher_id"], dtype=np.int64))
        levels = book_depth(frame.keys(), self.side)
        assert self.first_row is not None
        live = LiveMarket(
            pids, self.fees, self.settings, self.side, levels, self._window_bounds(), self.first_row
        )
        live.append(frame)
        return live

    def _start(self, frame: Batch) -> None:
        self.live = self._new_market(frame)
        self.session = RouterSession(self.live.sim_market, self.config.order_size, self.penalties)

    def _restart(self, new_index: np.ndarray) -> None:
        """New venues moved the venue indices: the session starts again on the renumbered market, replaying
        the decisions taken (renumbered too) and executing again those already executed."""
        started = time.perf_counter()
        assert self.live is not None and self.session is not None
        self.known = [None if d is None else renumber_venues(d, new_index) for d in self.known]
        executed = self.session.index
        self.session = RouterSession(
            self.live.sim_market, self.config.order_size, self.penalties, known=self.known
        )
        for _ in range(executed):
            step = self.session.decide(self._end_bound(self.session.t))
            assert step is not None
            self.session.execute(step)
        if self.pending is not None:
            self.pending = self.session.decide(self._end_bound(self.session.t))
        self.restarts += 1
        log.info("a new venue appeared: session replayed in %.0f ms", (time.perf_counter() - started) * 1000)

    def _end_bound(self, t: int) -> int | None:
        """The window end as far as the horizon at t needs it, or None when that is not known yet: a fixed
        end; else (unbounded end, still streaming) the end is past the latest complete row, which settles
        this horizon once that is a horizon past t."""
        if not self.window.open_end:
            return self.window.end_ns
        if self.ended:
            return (self.max_ts if self.max_ts is not None else t) + 1
        if self.complete_max is None or self.complete_max + 1 < t + self.settings.horizon_ns:
            return None
        return self.complete_max + 1

    # ------------------------------------------------------------------ deciding and executing

    def _advance(self, rows: tuple[np.ndarray, np.ndarray] | None, arrived_at: float) -> list[DecisionEvent]:
        events: list[DecisionEvent] = []
        session = self.session
        if session is None or self.done:
            return self._close(events, arrived_at) if self.ended else events
        max_latency = self.settings.latency.max_ns
        while True:
            if self.pending is None:
                if session.stopped:
                    break
                end = self._end_bound(session.t)
                if end is None or not (self.ended or self._have(session.t)):
                    break
                started = time.perf_counter()
                step = session.decide(end)
                if step is None:
                    break
                self.decide_seconds.append(time.perf_counter() - started)
                self.known.append(step.decision)
                after = session.t if session.index == 0 else session.t + max_latency
                self._flush(events, before=step.t, arrived_at=arrived_at)
                events.append(self._event(step, rows, after, arrived_at))
                self.pending = step
            step = self.pending
            if not (self.ended or self._have(step.t_next + max_latency)):
                self._refresh(step)
                break
            started = time.perf_counter()
            session.execute(step)
            self.execute_seconds.append(time.perf_counter() - started)
            self.pending = None
            self._collect(session)
        if session.stopped and self.pending is None:
            self.done = True
        if self.ended:
            return self._close(events, arrived_at)
        self._flush(events, before=None, arrived_at=arrived_at)
        return events

    def _have(self, t: int) -> bool:
        """Whether every row with ts_event ≤ t is in the market."""
        return self.max_ts is not None and self.max_ts > t

    def _refresh(self, step: RouterStep) -> None:
        """The fills of the working orders known so far: the horizon run on a fork over the rows so far."""
        if step.decision is None or time.monotonic() - self.last_refresh < self.fill_refresh_seconds:
            return
        if self.max_ts is None or self.max_ts == self.refreshed_to or self.max_ts <= step.t:
            return  # no row since the last refresh, or none yet after the decision: nothing new can fill
        assert self.session is not None
        started = time.perf_counter()
        fork = self.session.fork()
        fork.execute(step)
        self._collect(fork)
        self.last_refresh, self.refreshed_to = time.monotonic(), self.max_ts
        self.refresh_seconds.append(time.perf_counter() - started)

    def _close(self, events: list[DecisionEvent], arrived_at: float) -> list[DecisionEvent]:
        """The marketable clean-up at the close (allocator.execution.sim_market.cleanup), as child orders, and
        every fill left."""
        session = self.session
        if session is not None and not self.closed:
            self.closed = True
            if self.window.open_end:  # the window end is known now: the clean-up goes one round trip after
                end = self._end_bound(session.t)
                assert end is not None
                market = session.sim_market.market
                session.sim_market = dataclasses.replace(
                    session.sim_market, market=dataclasses.replace(market, window_end_ns=end)
                )
            events += self._cleanup(session, arrived_at)
            self._collect(session)
        self._flush(events, before=None, arrived_at=arrived_at)
        return events

    def _flush(self, events: list[DecisionEvent], before: int | None, arrived_at: float) -> None:
        """Hand out the final fills (those before `before`, when given) in time order, as one event."""
        self.unsent.sort(key=lambda f: f.ts_ns)
        cut = len(self.unsent) if before is None else sum(1 for f in self.unsent if f.ts_ns < before)
        if cut:
            out, self.unsent = self.unsent[:cut], self.unsent[cut:]
            events.append(DecisionEvent(len(self.known), 0, "fills", 0, fills=out, arrived_at=arrived_at))

    def next_due(self) -> float | None:
        """Rows with ts_event ≤ this can wait (nothing is decided, executed or refreshed until a later row
        comes); None when every row must be fed at once."""
        if self.done:
            return math.inf
        session = self.session
        if session is None or self.window.open_end:
            return None
        if self.pending is not None:
            decision = self.pending.decision
            if decision is not None and time.monotonic() - self.last_refresh >= self.fill_refresh_seconds:
                return None
            return float(self.pending.t_next + self.settings.latency.max_ns)
        return float(session.t)

    # ------------------------------------------------------------------ what goes out

    def _event(
        self,
        step: RouterStep,
        rows: tuple[np.ndarray, np.ndarray] | None,
        after: int,
        arrived_at: float,
    ) -> DecisionEvent:
        """The decision as an event with its child orders; its trigger is the batch's first row after the
        time the decision waited for."""
        index, t, decision = step.index, step.t, step.decision
        trigger_ts = trigger_n = None
        if rows is not None and len(rows[0]):
            ts, replay_index = rows
            at = min(int(np.searchsorted(ts, after, side="right")), len(ts) - 1)
            trigger_ts, trigger_n = int(ts[at]), int(replay_index[at])
        if decision is None:
            return DecisionEvent(index, t, "no-quote", -1, arrived_at=arrived_at)
        assert self.live is not None
        tick = self.live.tick_at(t)
        tick_ts = t if tick is None else tick
        t_next = t + decision.horizon_ns
        orders: list[ChildOrder] = []

        def child(v: int, kind: str, price: float, quantity: int) -> ChildOrder:
            return self._child(
                f"d{index}",
                v,
                kind,
                price,
                quantity,
                decision_index=index,
                decision_ts_ns=t,
                tick_ts_event=tick_ts,
                trigger_ts_event=trigger_ts,
                trigger_replay_index=trigger_n,
                tif="IOC" if kind == "M" else "horizon",
                expires_ns=None if kind == "M" else t_next,
            )

        if decision.market > 0:
            for v, (cap, q) in step.sim.sweep_plan(t, decision.market).items():
                orders.append(child(v, "M", cap, q))
        for v, q in decision.limits.items():
            assert decision.post_px is not None
            orders.append(child(v, "L", decision.post_px, q))
        detail = {
            "market": decision.market,
            "limits": dict(decision.limits),
            "half_spread": decision.half_spread,
        }
        return DecisionEvent(
            index, t, "solve", decision.remaining, orders, arrived_at=arrived_at, detail=detail
        )

    def _child(
        self, label: str, v: int, kind: str, price: float, quantity: int, **fields: object
    ) -> ChildOrder:
        assert self.live is not None
        pid = int(self.live.publisher_ids[v])
        return ChildOrder(
            order_id=f"{self.parent}/{label}/{pid}/{kind}",
            parent_id=self.parent,
            symbol=self.symbol,
            side=self.side,
            venue=self.fees.lookup(pid).name,
            publisher_id=pid,
            type="market" if kind == "M" else "limit",
            price=round(self.sign * price, 9),
            quantity=int(quantity),
            mode="cont-kukanov",
            **fields,  # type: ignore[arg-type]
        )

    def _cleanup(self, session: RouterSession, arrived_at: float) -> list[DecisionEvent]:
        """The clean-up sweep as child orders, then executed."""
        sim_market, sim = session.sim_market, session.sim
        missing = self.config.order_size - sim.ledger.filled()
        events = []
        if missing > 0:
            assert self.live is not None
            t = sim_market.cleanup_time
            last = self.live.last_ts
            orders = [
                self._child(
                    "cleanup",
                    v,
                    "M",
                    cap,
                    q,
                    decision_index=len(self.known),
                    decision_ts_ns=t,
                    tick_ts_event=t if last is None else last,
                    trigger_ts_event=None,
                    trigger_replay_index=None,
                )
                for v, (cap, q) in sim.sweep_plan(t, missing).items()
            ]
            events.append(
                DecisionEvent(len(self.known), t, "cleanup", missing, orders, arrived_at=arrived_at)
            )
        cleanup(sim_market, sim, self.config.order_size)
        return events

    def _collect(self, session: RouterSession) -> None:
        """The session's fills that are final (before the first incomplete tick, or all at the end) and not
        yet emitted, into `unsent`; each named after its child order and its rank there."""
        ledger = session.sim.ledger
        assert self.live is not None
        pids = self.live.publisher_ids
        label = [("cleanup", "M")] * len(ledger)
        for seg in session.segments:
            lo, hi = seg.sweep_oids
            for i in range(seg.start, seg.end):
                label[i] = (f"d{seg.index}", "M" if lo < ledger.order_id[i] <= hi else "L")
        bound = None if self.ended else self.max_ts
        ranks: dict[str, int] = {}
        for i in np.argsort(np.asarray(ledger.ts, dtype=np.int64), kind="stable").tolist():
            pid = int(pids[ledger.venue[i]])
            decision, kind = label[i]
            order_id = f"{self.parent}/{decision}/{pid}/{kind}"
            ranks[order_id] = ranks.get(order_id, 0) + 1
            ts = ledger.ts[i]
            if bound is not None and not ts < bound:
                continue
            fill_id = f"{order_id}/f{ranks[order_id]}"
            if fill_id in self.emitted:
                continue
            self.emitted.add(fill_id)
            fill = Fill(
                fill_id=fill_id,
                order_id=order_id,
                parent_id=self.parent,
                symbol=self.symbol,
                side=self.side,
                venue=self.fees.lookup(pid).name,
                publisher_id=pid,
                liquidity=ledger.kind[i],
                price=round(self.sign * ledger.price[i], 9),
                quantity=ledger.shares[i],
                fee_per_share=ledger.fee[i],
                rebate=ledger.rebate[i],
                ts_ns=ts,
                mode="cont-kukanov",
            )
            self.unsent.append(fill)
            self.fills.append(fill)
            self.fill_keys.append((ts, pid, ledger.price[i], ledger.shares[i], ledger.kind[i]))


class Columns:
    """Rows kept as numpy column pieces: appending a batch costs a slice per column, and the pieces are
    joined only when rows are taken out (pandas joins many small frames, or slices wide ones, slowly)."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, rows: Batch, a: int, b: int) -> None:
        for name, values in rows.items():
            if simulated(name):
                self.parts.setdefault(name, []).append(values[a:b])

    def split(self, below: int | None) -> tuple[Batch, Columns]:
        """(the rows with ts_event < `below` (all when None), the others, still as Columns): rows arrive
        in event order, so the first is a prefix."""
        if not self.parts:
            return {}, self
        columns = {name: np.concatenate(pieces) for name, pieces in self.parts.items()}
        n = len(columns["ts_event"])
        cut = n if below is None else int(np.searchsorted(columns["ts_event"], below))
        rest = Columns()
        if cut < n:
            rest.parts = {name: [values[cut:]] for name, values in columns.items()}
        return {name: values[:cut] for name, values in columns.items()}, rest


def simulated(name: str) -> bool:
    """The columns the simulated market is built from (allocator.execution.book, snapshots.rule)."""
    return name in SIM_COLUMNS or name[:7] in ("bid_px_", "ask_px_", "bid_sz_", "ask_sz_")
