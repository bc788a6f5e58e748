"""The faithful router on a stream: the snapshot rule applied as rows arrive, each closed tick decided by the
backtest's own step (allocator.execution.faithful.faithful_step), buy or sell (cost space).

A tick is complete, and decided, when a row of a later tick arrives or the stream ends: only then can no
more first messages of that tick come. So the decisions are the offline backtest's, tick for tick.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from allocator.allocation.penalties import Penalties
from allocator.allocation.static import Quote
from allocator.data.venues import FeeTable
from allocator.execution.faithful import faithful_step, step_capacity
from allocator.snapshots.rule import IncrementalSnapshots, TickSnapshot, take_columns
from allocator.snapshots.side import Side, side_sign
from allocator.stream.events import Batch, ChildOrder, DecisionEvent, Fill

REPLAY_INDEX = "n"  # the row's position in the replay (docs/wire.md); the engine adds one offline


class FaithfulStream:
    """Decides every closed tick until the order is filled; keeps the fills (cost space) for the check."""

    def __init__(
        self,
        order_size: int,
        step: int,
        side: Side,
        penalties: Penalties,
        fees: FeeTable,
        parent: str,
        symbol: str | None,
    ) -> None:
        self.order_size, self.step, self.side, self.penalties = order_size, step, side, penalties
        self.fees, self.parent, self.symbol = fees, parent, symbol
        self.sign = side_sign(side)
        self.snapshots = IncrementalSnapshots(side)
        self.remaining = order_size
        self.ticks_seen = 0  # snapshot ticks closed so far: the index of the next one
        self.ticks_decided = 0
        self.waited = 0
        self.splits = 0
        self.fills: list[
            tuple[int, int, float, int]
        ] = []  # (tick ts_event, publisher_id, cost price, shares)

    def add(self, rows: Batch | pd.DataFrame, arrived_at: float) -> list[DecisionEvent]:
        """The ticks these rows closed, decided; each one's trigger is the first row of a later tick."""
        if self.remaining <= 0:
            return []  # filled: nothing left to decide
        ts = np.asarray(rows["ts_event"], dtype=np.int64)
        price, size = take_columns(self.side)
        closed = self.snapshots.add_arrays(
            ts,
            np.asarray(rows["publisher_id"], dtype=np.int64),
            np.asarray(rows[price], dtype=np.float64),
            np.asarray(rows[size], dtype=np.int64),
        )
        if not closed:
            return []
        index = (
            np.asarray(rows[REPLAY_INDEX], dtype=np.int64) if REPLAY_INDEX in rows else np.full(len(ts), -1)
        )
        events = []
        for snapshot in closed:
            at = min(int(np.searchsorted(ts, snapshot.ts_event, side="right")), len(ts) - 1)
            events += self._decide(snapshot, int(ts[at]), int(index[at]), arrived_at)
        return events

    def end(self, arrived_at: float) -> list[DecisionEvent]:
        """The stream ended: its last tick is complete."""
        snapshot = self.snapshots.close()
        return self._decide(snapshot, None, None, arrived_at) if snapshot is not None else []

    def _decide(
        self, snapshot: TickSnapshot, trigger_ts: int | None, trigger_n: int | None, arrived_at: float
    ) -> list[DecisionEvent]:
        tick = self.ticks_seen
        self.ticks_seen += 1
        if self.remaining <= 0:
            return []
        self.ticks_decided += 1
        quotes = [
            Quote(
                ask=seen.price,
                ask_size=seen.size,
                fee=self.fees.lookup(seen.publisher_id).taker_fee,
                rebate=self.fees.lookup(seen.publisher_id).maker_rebate,
                publisher_id=seen.publisher_id,
            )
            for seen in snapshot.quotes
        ]
        remaining = self.remaining
        executions = faithful_step(remaining, quotes, self.penalties, step=self.step)
        event = DecisionEvent(tick, snapshot.ts_event, "wait", remaining, arrived_at=arrived_at)
        if executions is None:
            self.waited += 1
            shown = int(step_capacity(np.array([[q.ask_size for q in quotes]], dtype=np.int64), self.step)[0])
            why = (
                f"{shown} shares displayed in whole steps < {remaining} remaining"
                if remaining % self.step == 0
                else f"remaining {remaining} is not a multiple of the step {self.step}"
            )
            event.detail = {"why": why, "displayed": shown}
            return [event]
        event.kind = "split"
        self.splits += 1
        for quote, done in zip(quotes, executions, strict=True):
            if not done:
                continue
            venue = self.fees.lookup(quote.publisher_id)
            order = ChildOrder(
                order_id=f"{self.parent}/d{tick}/{quote.publisher_id}/M",
                parent_id=self.parent,
                symbol=self.symbol,
                side=self.side,
                venue=venue.name,
                publisher_id=quote.publisher_id,
                type="market",
                price=self.sign * quote.ask,
                quantity=done,
                decision_index=tick,
                decision_ts_ns=snapshot.ts_event,
                tick_ts_event=snapshot.ts_event,
                trigger_ts_event=trigger_ts,
                trigger_replay_index=trigger_n,
                mode="faithful",
            )
            event.orders.append(order)
            event.fills.append(
                Fill(
                    fill_id=f"{order.order_id}/f1",
                    order_id=order.order_id,
                    parent_id=self.parent,
                    symbol=self.symbol,
                    side=self.side,
                    venue=venue.name,
                    publisher_id=quote.publisher_id,
                    liquidity="taker",
                    price=order.price,
                    quantity=done,
                    fee_per_share=quote.fee,
                    rebate=0.0,
                    ts_ns=snapshot.ts_event,
                    mode="faithful",
                )
            )
            self.fills.append((snapshot.ts_event, quote.publisher_id, quote.ask, done))
            self.remaining -= done
        return [event]
