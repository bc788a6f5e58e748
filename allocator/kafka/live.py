"""`--live`: the router's decision at each tick, printed as the quotes arrive from Kafka.

The snapshot rule is applied incrementally (allocator.snapshots.rule.IncrementalSnapshots) and each
closed tick is decided by the faithful router's own step (allocator.execution.faithful.faithful_step),
so the lines it prints are the decisions the final report's router makes. In the faithful model the
penalties cannot change a decision, so the first grid point's parameters are used.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from allocator.allocation.static import Quote
from allocator.data.venues import FeeTable
from allocator.data.window import format_ns
from allocator.execution.faithful import faithful_step, step_capacity
from allocator.snapshots.rule import IncrementalSnapshots, TickSnapshot

if TYPE_CHECKING:  # the one import of the run configuration's home
    from allocator.config import RunConfig

log = logging.getLogger(__name__)
WAIT_REPORT_SECONDS = 1.0


class LiveRouter:
    """Feeds streamed rows through the snapshot rule and routes the remaining quantity at each tick."""

    def __init__(self, config: RunConfig, fees: FeeTable) -> None:
        self.order_size = config.order_size
        self.remaining = config.order_size
        self.step = config.step
        self.penalties = config.grid.points()[0]
        self.fees = fees
        self.snapshots = IncrementalSnapshots("buy")  # --live is the faithful buy router's
        self.waited = 0
        self.fills: list[tuple[int, int, float, int]] = []  # (ts_event, publisher_id, price, shares)
        self.last_wait_report = time.monotonic()

    @property
    def ticks(self) -> int:
        return self.snapshots.ticks

    def on_rows(self, frame: pd.DataFrame) -> None:
        for snapshot in self.snapshots.add(frame):
            self._decide(snapshot)

    def finish(self) -> None:
        if (snapshot := self.snapshots.close()) is not None:
            self._decide(snapshot)
        state = "filled" if self.remaining == 0 else f"{self.remaining} shares still unfilled"
        log.info("live: %d ticks, waited %d, %s", self.ticks, self.waited, state)

    def _decide(self, snapshot: TickSnapshot) -> None:
        if self.remaining <= 0:
            return
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
        executions = faithful_step(self.remaining, quotes, self.penalties, step=self.step)
        when = format_ns(snapshot.ts_event)
        if executions is None:
            self._wait(when, quotes)
            return
        parts = []
        for quote, done in zip(quotes, executions, strict=True):
            if done:
                parts.append(f"{self.fees.lookup(quote.publisher_id).name} {done}@{quote.ask:g}")
                self.fills.append((snapshot.ts_event, quote.publisher_id, quote.ask, done))
                self.remaining -= done
        log.info("%s fill: %s; remaining %d of %d", when, ", ".join(parts), self.remaining, self.order_size)

    def _wait(self, when: str, quotes: list[Quote]) -> None:
        """No split covers the remainder: count the tick, and say so at most once a second."""
        self.waited += 1
        now = time.monotonic()
        if now - self.last_wait_report >= WAIT_REPORT_SECONDS:
            self.last_wait_report = now
            shown = int(step_capacity(np.array([[q.ask_size for q in quotes]], dtype=np.int64), self.step)[0])
            log.info(
                "%s wait: %d shares displayed in whole steps < %d remaining (%d ticks waited)",
                when,
                shown,
                self.remaining,
                self.waited,
            )
