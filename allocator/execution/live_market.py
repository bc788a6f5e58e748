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
    """A SimMarket over the rows appended so far, for venues `publisher_ids` (sorted, as offline; a row of
    another venue is refused until `add_venues` takes it in)."""

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
        self.fees, self.settings, self.side = fees, settings, side
        self.builder = BookBuilder(np.asarray(publisher_ids, dtype=np.int64), side, levels)
        self.meters = [OutflowMeter(settings.queue) for _ in self.builder.publisher_ids]
        self.window = window
        self.arrival = common_arrival(window[0], first_row_ns, settings)
        self.sim_market = self._sim_market()

    def _sim_market(self) -> SimMarket:
        taker, rebate = self.fees.arrays(self.publisher_ids)
        return SimMarket(
            market=Market(empty_snapshots(self.side), taker, rebate, self.window[0], self.window[1]),
            book=self.builder.book(),
            settings=self.settings,
            tick_seen=np.empty(0, np.int64),
            outflow=[meter.cumulative.view() for meter in self.meters],
            arrival_mid=None,
            arrival=self.arrival,
        )

    @property
    def publisher_ids(self) -> np.ndarray:
        return self.builder.publisher_ids

    def add_venues(self, publisher_ids: np.ndarray) -> np.ndarray:
        """Venues first seen now, each at its place in publisher_id order. The SimMarket is a new one (the
        venue indices moved; its streams are the same arrays); returns each old index's new index."""
        old = self.publisher_ids.copy()
        for pid in np.unique(np.asarray(publisher_ids, dtype=np.int64)):
            if pid not in old:
                self.meters.insert(self.builder.add_venue(int(pid)), OutflowMeter(self.settings.queue))
        self.sim_market = self._sim_market()
        return np.searchsorted(self.publisher_ids, old)

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
