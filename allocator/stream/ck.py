"""The Cont–Kukanov router on a stream, by causal recomputation.

A decision at horizon t reads only rows with ts_seen ≤ t (ts_seen ≥ ts_event), and rows arrive in event
order, so every row it may see has arrived once a row with a later ts_event has (or the end message).
Then the market is rebuilt from the complete ticks received so far and the router's session
(allocator.execution.realistic.RouterSession) is run to t, replaying the decisions already taken instead of
solving them again: every step of the simulator and the router is causal, so each decision equals the
offline run's, which the engine checks at the end of every run. A fill at time τ depends only on rows
with ts_event ≤ τ, so the fills before the first incomplete tick are final and are emitted as they become
known; the rest, and the clean-up, when the stream ends.

Cost: one rebuild of the market (O(rows so far)) and a replay of the earlier decisions' executions per
horizon, so a day decided every few seconds costs more than the offline run (bench stream_latency).
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import pandas as pd

from allocator.allocation.penalties import Penalties
from allocator.allocation.policy import Decision
from allocator.config import RunConfig
from allocator.data.loader import MarketData, history_start
from allocator.data.venues import FeeTable
from allocator.data.window import Window
from allocator.execution.faithful import Execution
from allocator.execution.realistic import RouterSession
from allocator.execution.sim_market import SimMarket, common_arrival
from allocator.pipeline import build_sim_market_for
from allocator.snapshots.side import side_sign
from allocator.stream.events import Batch, ChildOrder, DecisionEvent, Fill

log = logging.getLogger(__name__)
SIM_COLUMNS = {"ts_event", "ts_recv", "publisher_id", "action", "side", "price", "size"}
# Between horizons, how often (wall clock) the simulator is re-run to emit the fills that became known:
# each refresh is a rebuild, so this bounds their cost.
FILL_REFRESH_SECONDS = 5.0


class CkStream:
    """Collects history and window rows, decides each horizon once it may, emits the fills known."""

    def __init__(
        self,
        config: RunConfig,
        fees: FeeTable,
        penalties: Penalties,
        window: Window,
        parent: str,
        symbol: str | None,
        source: str = "stream",
    ) -> None:
        self.config, self.fees, self.penalties, self.window = config, fees, penalties, window
        self.parent, self.symbol, self.source = parent, symbol, source
        self.settings = config.sim
        self.side = config.side
        self.sign = side_sign(config.side)
        self.history_from = history_start(window, config.calibration_ns)
        self.history = Columns()
        self.rows = Columns()
        self.first_row: int | None = None
        self.first_window_row: int | None = None
        self.max_ts: int | None = None  # the latest ts_event received: rows before it are complete
        self.complete_max: int | None = None  # the latest ts_event among complete rows
        self.known: list[Decision | None] = []
        self.done = False  # the session stopped deciding (filled, or past the window end)
        self.ended = False
        self.emitted: set[str] = set()
        self.fills: list[Fill] = []  # every fill emitted, in order
        self.fill_keys: list[
            tuple[int, int, float, int, str]
        ] = []  # (ts, publisher_id, cost px, shares, kind)
        self.rebuilds = 0
        self.rebuild_seconds: list[float] = []
        self.final_session: RouterSession | None = None
        self.execution: Execution | None = None  # the router's whole execution, once the stream ended
        self.last_refresh = -math.inf
        self.refreshed_to: int | None = None

    # ------------------------------------------------------------------ input

    def add(
        self, rows: Batch, history: tuple[int, int], window: tuple[int, int], arrived_at: float
    ) -> list[DecisionEvent]:
        """New rows (event order): history rows at positions [history), window rows at [window); the
        decisions they make possible."""
        ts = rows["ts_event"]
        for (a, b), into in ((history, self.history), (window, self.rows)):
            if b > a:
                into.add(rows, a, b)
                self.first_row = int(ts[a]) if self.first_row is None else self.first_row
                self._advance_clock(ts[a:b])
        a, b = window
        if b > a and self.first_window_row is None:
            self.first_window_row = int(ts[a])
        if b <= a:
            a, b = history
        index = rows["n"] if "n" in rows else np.full(len(ts), -1)
        return self._decide_due((ts[a:b], index[a:b]), arrived_at)

    def end(self, arrived_at: float) -> list[DecisionEvent]:
        """The stream ended: decide the remaining horizons, clean up, emit every fill left."""
        self.ended = True
        return self._decide_due(None, arrived_at)

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

    # ------------------------------------------------------------------ the schedule

    def _bounds(self) -> tuple[int, int] | None:
        """The window in ns as window_bounds gives it once the data is in (None: no window row yet)."""
        if self.first_window_row is None:
            return None
        start = self.first_window_row if self.window.open_start else self.window.start_ns
        if self.window.open_end:
            last = self.max_ts if self.ended else self.complete_max
            end = (start if last is None else last) + 1
        else:
            end = self.window.end_ns
        return start, end

    def _due(self) -> int:
        """How many horizons may be decided now (all of them once the stream ended)."""
        bounds = self._bounds()
        if bounds is None or self.done:
            return len(self.known)
        if self.ended:
            return 1 << 40
        start, end = bounds
        arrival = common_arrival(start, self.first_row, self.settings).ts_ns
        horizon = self.settings.horizon_ns
        k = len(self.known)
        assert self.max_ts is not None
        while True:
            t = arrival + k * horizon
            if t >= end or not self.max_ts > t:
                break
            if self.window.open_end and (self.complete_max or t) + 1 < t + horizon:
                break  # the end is not known yet, so neither is this horizon's length
            k += 1
        return k

    # ------------------------------------------------------------------ deciding

    def _decide_due(
        self, rows: tuple[np.ndarray, np.ndarray] | None, arrived_at: float
    ) -> list[DecisionEvent]:
        due = self._due()
        if not self.ended and due <= len(self.known) and not self._refresh_due():
            return []
        self.last_refresh, self.refreshed_to = time.monotonic(), self.max_ts
        session = self._session(until=None if self.ended else due)
        events: list[DecisionEvent] = []
        for step in session.steps():
            if step.index < len(self.known):
                continue
            self.known.append(step.decision)
            events.append(self._event(step.index, step.t, step.decision, session, rows, arrived_at))
        if session.stopped == "filled" or (
            session.stopped == "end" and (self.ended or not self.window.open_end)
        ):
            self.done = True
        if self.ended:
            events += self._cleanup(session, arrived_at)
            self.final_session = session
        return self._with_fills(events, self._new_fills(session), arrived_at)

    def _with_fills(
        self, events: list[DecisionEvent], fills: list[Fill], arrived_at: float
    ) -> list[DecisionEvent]:
        """The new fills in time order among the decisions: those before a decision come first, as their
        own event (the decision knew of them), the rest with the last decision."""
        ordered: list[DecisionEvent] = []
        rest = fills
        for event in events:
            before = [f for f in rest if f.ts_ns < event.ts_ns]
            if before:
                ordered.append(
                    DecisionEvent(len(self.known), 0, "fills", 0, fills=before, arrived_at=arrived_at)
                )
                rest = rest[len(before) :]
            ordered.append(event)
        if rest:
            if ordered:
                ordered[-1].fills += rest
            else:
                ordered.append(
                    DecisionEvent(len(self.known), 0, "fills", 0, fills=rest, arrived_at=arrived_at)
                )
        return ordered

    def next_due(self) -> float | None:
        """Rows with ts_event ≤ this can wait (nothing is decided or refreshed until a later row comes);
        None when every row must be fed at once (the schedule is not known yet)."""
        if self.done:
            return math.inf
        bounds = self._bounds()
        if bounds is None or self.window.open_end or self._refresh_due():
            return None
        arrival = common_arrival(bounds[0], self.first_row, self.settings).ts_ns
        return float(arrival + len(self.known) * self.settings.horizon_ns)

    def _refresh_due(self) -> bool:
        """Between horizons, the fills of the orders working are refreshed every FILL_REFRESH_SECONDS."""
        return (
            any(d is not None for d in self.known)
            and self.refreshed_to != self.max_ts
            and time.monotonic() - self.last_refresh >= FILL_REFRESH_SECONDS
        )

    def _session(self, until: int | None) -> RouterSession:
        started = time.perf_counter()
        sim_market = self._sim_market()
        self.rebuilds += 1
        session = RouterSession(
            sim_market, self.config.order_size, self.penalties, known=self.known, until=until
        )
        self.rebuild_seconds.append(time.perf_counter() - started)
        return session

    def _sim_market(self) -> SimMarket:
        below = None if self.ended else self.max_ts  # only complete ticks
        history = self.history.frame(below)
        frame = self.rows.frame(below)
        ts = frame["ts_event"].to_numpy(dtype=np.int64)
        data = MarketData(
            frame=frame,
            source=self.source,
            window=self.window,
            rows_total=len(frame) + len(history),
            file_first_ts=int(ts.min()) if len(ts) else None,
            file_last_ts=int(ts.max()) if len(ts) else None,
            levels=1,
            price_format="decimal",
            history=history,
        )
        sim_market, _names = build_sim_market_for(data, self.fees, self.settings, self.side, quiet=True)
        return sim_market

    def _event(
        self,
        index: int,
        t: int,
        decision: Decision | None,
        session: RouterSession,
        rows: tuple[np.ndarray, np.ndarray] | None,
        arrived_at: float,
    ) -> DecisionEvent:
        trigger_ts = trigger_n = None
        if rows is not None and len(rows[0]):
            ts, replay_index = rows
            at = min(int(np.searchsorted(ts, t, side="right")), len(ts) - 1)
            trigger_ts, trigger_n = int(ts[at]), int(replay_index[at])
        if decision is None:
            return DecisionEvent(index, t, "no-quote", -1, arrived_at=arrived_at)
        sim_market = session.sim_market
        ticks = sim_market.market.snapshots.ts_event
        tick_ts = int(ticks[max(int(np.searchsorted(ticks, t, side="right")) - 1, 0)]) if len(ticks) else t
        pids = sim_market.book.publisher_ids
        t_next = t + decision.horizon_ns
        orders: list[ChildOrder] = []

        def child(v: int, kind: str, price: float, quantity: int) -> ChildOrder:
            pid = int(pids[v])
            return ChildOrder(
                order_id=f"{self.parent}/d{index}/{pid}/{kind}",
                parent_id=self.parent,
                symbol=self.symbol,
                side=self.side,
                venue=self.fees.lookup(pid).name,
                publisher_id=pid,
                type="market" if kind == "M" else "limit",
                price=round(self.sign * price, 9),
                quantity=int(quantity),
                decision_index=index,
                decision_ts_ns=t,
                tick_ts_event=tick_ts,
                trigger_ts_event=trigger_ts,
                trigger_replay_index=trigger_n,
                mode="cont-kukanov",
                tif="IOC" if kind == "M" else "horizon",
                expires_ns=None if kind == "M" else t_next,
            )

        if decision.market > 0:
            for v, (cap, q) in session.sim.sweep_plan(t, decision.market).items():
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

    def _cleanup(self, session: RouterSession, arrived_at: float) -> list[DecisionEvent]:
        """The marketable clean-up at the close (allocator.execution.sim_market.cleanup), as child orders."""
        sim_market, sim = session.sim_market, session.sim
        missing = self.config.order_size - sim.ledger.filled()
        events = []
        if missing > 0:
            t = sim_market.cleanup_time
            pids = sim_market.book.publisher_ids
            orders = [
                ChildOrder(
                    order_id=f"{self.parent}/cleanup/{int(pids[v])}/M",
                    parent_id=self.parent,
                    symbol=self.symbol,
                    side=self.side,
                    venue=self.fees.lookup(int(pids[v])).name,
                    publisher_id=int(pids[v]),
                    type="market",
                    price=round(self.sign * cap, 9),
                    quantity=int(q),
                    decision_index=len(self.known),
                    decision_ts_ns=t,
                    tick_ts_event=int(sim_market.market.snapshots.ts_event[-1]),
                    trigger_ts_event=None,
                    trigger_replay_index=None,
                    mode="cont-kukanov",
                )
                for v, (cap, q) in sim.sweep_plan(t, missing).items()
            ]
            events.append(
                DecisionEvent(len(self.known), t, "cleanup", missing, orders, arrived_at=arrived_at)
            )
        self.execution = session.finish()
        return events

    def _new_fills(self, session: RouterSession) -> list[Fill]:
        """The session's fills that are final (before the first incomplete tick, or all at the end) and not
        yet emitted, in time order; each named after its child order and its rank there."""
        ledger = session.sim.ledger
        pids = session.sim_market.book.publisher_ids
        label = [("cleanup", "M")] * len(ledger)
        for seg in session.segments:
            lo, hi = seg.sweep_oids
            for i in range(seg.start, seg.end):
                label[i] = (f"d{seg.index}", "M" if lo < ledger.order_id[i] <= hi else "L")
        bound = None if self.ended else self.max_ts
        ranks: dict[str, int] = {}
        out = []
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
            out.append(fill)
            self.fills.append(fill)
            self.fill_keys.append((ts, pid, ledger.price[i], ledger.shares[i], ledger.kind[i]))
        return out


class Columns:
    """Rows kept as numpy column pieces: appending a batch costs a slice per column, and the frame is joined
    only when the market is rebuilt (pandas joins many small frames, or slices wide ones, slowly)."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, rows: Batch, a: int, b: int) -> None:
        for name, values in rows.items():
            if simulated(name):
                self.parts.setdefault(name, []).append(values[a:b])

    def frame(self, below: int | None) -> pd.DataFrame:
        """Every row so far (those with ts_event < `below` when given) as one frame."""
        if not self.parts:
            return pd.DataFrame({"ts_event": np.empty(0, np.int64)})
        for name, pieces in self.parts.items():
            if len(pieces) > 1:
                self.parts[name] = [np.concatenate(pieces)]
        columns = {name: pieces[0] for name, pieces in self.parts.items()}
        if below is not None:
            keep = columns["ts_event"] < below
            if not keep.all():
                columns = {name: values[keep] for name, values in columns.items()}
        return pd.DataFrame(columns)


def simulated(name: str) -> bool:
    """The columns the simulated market is built from (allocator.execution.book, snapshots.rule)."""
    return name in SIM_COLUMNS or name[:7] in ("bid_px_", "ask_px_", "bid_sz_", "ask_sz_")
