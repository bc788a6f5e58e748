"""The realistic mode's market grown tick by tick, for a router that runs while the stream arrives.

It holds what the router reads (allocator.execution.realistic): every venue's message stream
(allocator.execution.book.BookBuilder), each venue's cumulative queue outflow (OutflowMeter), the fees and
the common arrival. Appending rows extends them in place, so a SimMarket built once stays current and the
simulator advances with the data instead of being rebuilt from every row so far. The arrays equal the ones
the offline build makes from the same rows (tests/execution/test_live_market.py).

Snapshots are not kept: the router never reads them (the baselines do, offline, at the end).
"""

from __future__ import annotations

import numpy as np

from allocator.config import SimSettings
from allocator.data.venues import FeeTable
from allocator.execution.book import BookBuilder, Rows
from allocator.execution.faithful import Market
from allocator.execution.sim_market import OutflowMeter, SimMarket, common_arrival
from allocator.snapshots.rule import empty_snapshots
from allocator.snapshots.side import Side


class LiveMarket:
    """A SimMarket over the rows appended so far, for venues `publisher_ids` (sorted; a row of another venue
    is refused: the caller starts a new LiveMarket with it, since venue indices must follow the offline
    order)."""

    def __init__(
        self,
        publisher_ids: np.ndarray,
        fees: FeeTable,
        settings: SimSettings,
        side: Side,
        levels: int,
        window: tuple[int, int],
        first_row_ns: int,
    ) -> None:
        self.publisher_ids = np.asarray(publisher_ids, dtype=np.int64)
        self.builder = BookBuilder(self.publisher_ids, side, levels)
        self.meters = [OutflowMeter(settings.queue) for _ in self.publisher_ids]
        taker, rebate = fees.arrays(self.publisher_ids)
        book = self.builder.book()
        self.sim_market = SimMarket(
            market=Market(empty_snapshots(side), taker, rebate, window[0], window[1]),
            book=book,
            settings=settings,
            tick_seen=np.empty(0, np.int64),
            outflow=[meter.cumulative.view() for meter in self.meters],
            arrival_mid=None,
            arrival=common_arrival(window[0], first_row_ns, settings),
        )

    def knows(self, publisher_ids: np.ndarray) -> bool:
        """Whether every id is one of this market's venues."""
        return bool(np.isin(publisher_ids, self.publisher_ids).all())

    def append(self, frame: Rows) -> None:
        """Rows at or after every row appended so far (complete ticks: a tick's rows in one append)."""
        self.builder.append(frame)
        book = self.sim_market.book
        for v, meter in enumerate(self.meters):
            book.streams[v] = self.builder.stream(v)
            meter.extend(book.streams[v])
            self.sim_market.outflow[v] = meter.cumulative.view()

    @property
    def last_ts(self) -> int | None:
        """The latest ts_event appended (the last snapshot tick), None before any row."""
        return None if self.builder.rows() == 0 else self.builder.last_ts

    def tick_at(self, t: int) -> int | None:
        """The snapshot tick in force at t: the latest ts_event ≤ t among the rows appended."""
        best = None
        for stream in self.sim_market.book.streams:
            row = stream.row_at(t)
            if row >= 0:
                best = int(stream.ts_event[row]) if best is None else max(best, int(stream.ts_event[row]))
        return best
