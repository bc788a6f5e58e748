"""The snapshot rule — the one place in the code that decides what the router sees at each tick.

Rows are ordered by ts_event stably (file order kept within equal ts_event, because real exports are
sorted by ts_recv, not ts_event). A *tick* is a distinct ts_event. At a tick, a venue that sent
messages is represented by its **first** message at that tick (the trial's rule: "first message per
publisher_id per ts_event"); a venue that sent nothing keeps its latest known state, i.e. the last
message at its most recent earlier tick. So a snapshot is the consolidated top of book across venues,
and on one-venue data it is exactly the trial's snapshot sequence.

For a sell the same rule applies to the other side of the book: `take_*` then describe the bids we would
hit and `post_*` the asks we would join, in cost space (prices negated, allocator.snapshots.side), so every strategy
routes a sell with the buy code.

The rule has two forms, both here: `build_snapshots` applies it to a whole frame with index arithmetic
(`row[t, v]` is the position, in event order, of the message representing venue v at tick t, or -1
before the venue's first message, so any column is gathered per tick and venue without per-tick
objects); `IncrementalSnapshots` applies it as rows arrive from a stream (`--live`), closing each tick
when the next one begins. Both use `quote_is_tradable` and `take_columns`, and a property test checks
that they agree on random streams.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import NamedTuple, overload

import numpy as np
import pandas as pd

from allocator.errors import UserError
from allocator.snapshots.side import Side, side_sign


def event_order(ts_event: np.ndarray) -> np.ndarray:
    """Permutation that sorts rows by ts_event, keeping file order among equal timestamps."""
    return np.argsort(ts_event, kind="stable")


@overload
def quote_is_tradable(price: float, size: int) -> bool: ...
@overload
def quote_is_tradable(price: np.ndarray, size: np.ndarray) -> np.ndarray: ...
def quote_is_tradable(price: float | np.ndarray, size: int | np.ndarray) -> bool | np.ndarray:
    """A quote one can take from: a finite positive price and a positive size (scalars or arrays)."""
    ok = np.isfinite(price) & (price > 0) & (size > 0)
    return ok if isinstance(ok, np.ndarray) else bool(ok)


def take_columns(side: Side) -> tuple[str, str]:
    """The level-0 price and size columns a strategy takes from: the asks for a buy, the bids for a sell."""
    return ("ask_px_00", "ask_sz_00") if side_sign(side) > 0 else ("bid_px_00", "bid_sz_00")


@dataclass(frozen=True)
class Snapshots:
    """Per-tick, per-venue view of the consolidated top of book (arrays shaped [ticks, venues]).

    The arrays strategies read at every tick (`take_*`) are stored dense; the side we would post on is kept
    per frame row and gathered on demand (`post_px`, `post_sz`), since only the realistic mode's setup and
    the quote counts read it. Integers are int32 where they fit: a 6.5 h day has ~4M ticks.
    """

    ts_event: np.ndarray  # int64 [T] tick timestamps, increasing
    publisher_ids: np.ndarray  # int64 [V] sorted venue ids
    source_row: np.ndarray  # int32/int64 [T, V] frame row (file order) representing the venue, -1 if none yet
    fresh: np.ndarray  # bool [T, V] the venue sent a message at this tick
    # Cost space (allocator.snapshots.side): for a buy the asks we take and the bids we would join; for a
    # sell the bids we hit and the asks we would join, prices negated, so one code path routes both.
    take_px: np.ndarray  # float64 [T, V], NaN where not tradable
    take_sz: np.ndarray  # int32/int64 [T, V], 0 where not tradable
    # The post side per frame row plus one last entry (NaN / 0), the one source_row -1 selects.
    row_post_px: np.ndarray  # float64 [rows + 1], NaN where unknown
    row_post_sz: np.ndarray  # int [rows + 1], 0 where unknown
    untradable_quotes: int  # venue messages (first at their tick) whose take price or size was unusable
    crossed_quotes: int = (
        0  # venue messages (first at their tick) whose own bid ≥ ask: counted, ask still used
    )
    side: Side = "buy"

    @property
    def ticks(self) -> int:
        return len(self.ts_event)

    @property
    def venues(self) -> int:
        return len(self.publisher_ids)

    @property
    def tradable(self) -> np.ndarray:
        return self.take_sz > 0

    @property
    def post_px(self) -> np.ndarray:
        """float64 [T, V] best price on the side we would post on (cost space), NaN where unknown."""
        return self.row_post_px[self.source_row]

    @property
    def post_sz(self) -> np.ndarray:
        """[T, V] size at `post_px`, 0 where unknown."""
        return self.row_post_sz[self.source_row]

    def since(self, tick: int) -> Snapshots:
        """The ticks from `tick` on, each still carrying the venues' state from before it; the quote
        counts cover the kept ticks' own messages."""
        if tick <= 0:
            return self
        fresh = self.fresh[tick:]
        take = self.take_px[tick:][fresh]
        post = self.row_post_px[self.source_row[tick:][fresh]]
        crossed = np.isfinite(take) & np.isfinite(post) & (post >= take)
        return dataclasses.replace(
            self,
            ts_event=self.ts_event[tick:],
            source_row=self.source_row[tick:],
            fresh=fresh,
            take_px=self.take_px[tick:],
            take_sz=self.take_sz[tick:],
            untradable_quotes=int(np.count_nonzero(fresh & (self.take_sz[tick:] == 0))),
            crossed_quotes=int(np.count_nonzero(crossed)),
        )


def build_snapshots(frame: pd.DataFrame, side: Side = "buy") -> Snapshots:
    """Apply the snapshot rule to a loaded frame (columns ts_event, publisher_id, ask/bid level 00).

    Tradability is decided once per frame row, then gathered per tick and venue through `source_row`, so
    no [ticks, venues] temporary is built beyond the arrays kept.
    """
    sign = side_sign(side)
    if len(frame) == 0:
        return empty_snapshots(side)
    ts = frame["ts_event"].to_numpy(dtype=np.int64)
    tick_ts, venues, fresh, source_row = _representatives(ts, frame["publisher_id"].to_numpy(dtype=np.int64))
    ask_px = _column(frame, "ask_px_00", np.nan, np.float64)
    ask_sz = _column(frame, "ask_sz_00", 0, np.int64)
    bid_px = _column(frame, "bid_px_00", np.nan, np.float64)
    bid_sz = _column(frame, "bid_sz_00", 0, np.int64)
    ask_ok = quote_is_tradable(ask_px, ask_sz)
    bid_ok = np.isfinite(bid_px) & (bid_px > 0)
    if "bid_sz_00" in frame.columns:  # a file with bid prices but no bid sizes still tells the spread
        bid_ok &= bid_sz > 0
    first_rows = source_row[fresh]  # each venue's first message at each tick: the messages counted
    crossed_quotes = int(np.count_nonzero((ask_ok & bid_ok & (bid_px >= ask_px))[first_rows]))
    if side == "sell" and "bid_sz_00" not in frame.columns:
        raise UserError("selling needs bid prices and sizes (bid_px_00, bid_sz_00) in the data")
    # The side we take from must be usable to trade; the side we post on only informs.
    take_ok, post_ok = (ask_ok, bid_ok) if sign > 0 else (bid_ok, ask_ok)
    take_px, take_sz, post_px, post_sz = (
        (ask_px, ask_sz, bid_px, bid_sz) if sign > 0 else (bid_px, bid_sz, ask_px, ask_sz)
    )
    return Snapshots(
        ts_event=tick_ts,
        publisher_ids=venues,
        source_row=source_row,
        fresh=fresh,
        take_px=_by_row(np.where(take_ok, sign * take_px, np.nan), np.nan)[source_row],
        take_sz=_by_row(_compact(np.where(take_ok, take_sz, 0)), 0)[source_row],
        row_post_px=_by_row(np.where(post_ok, sign * post_px, np.nan), np.nan),
        row_post_sz=_by_row(_compact(np.where(post_ok, post_sz, 0)), 0),
        untradable_quotes=int(np.count_nonzero(~take_ok[first_rows])),
        crossed_quotes=crossed_quotes,
        side=side,
    )


def empty_snapshots(side: Side) -> Snapshots:
    """Snapshots of no rows: an empty file's, or a live market's (allocator.execution.live_market keeps none)."""
    empty2 = np.empty((0, 0))
    return Snapshots(
        ts_event=np.empty(0, np.int64),
        publisher_ids=np.empty(0, np.int64),
        source_row=empty2.astype(np.int64),
        fresh=empty2.astype(bool),
        take_px=empty2,
        take_sz=empty2.astype(np.int64),
        row_post_px=np.full(1, np.nan),
        row_post_sz=np.zeros(1, np.int64),
        untradable_quotes=0,
        side=side,
    )


def _index_dtype(n: int) -> type:
    """int32 for positions and sizes below 2**31 (all real data), int64 otherwise."""
    return np.int32 if n < np.iinfo(np.int32).max else np.int64


def _compact(values: np.ndarray) -> np.ndarray:
    """Non-negative integers as int32 when they fit: sizes are read at every tick, so half the bytes count."""
    return values.astype(_index_dtype(int(values.max(initial=0))), copy=False)


def _by_row(values: np.ndarray, fill: float) -> np.ndarray:
    """Per-row values plus a final `fill`, so gathering with source_row −1 (no message yet) yields `fill`."""
    return np.append(values, np.array([fill], dtype=values.dtype))


def _representatives(
    ts: np.ndarray, pid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rule itself, on a non-empty frame: tick timestamps, venues, `fresh[t, v]` and `source_row[t, v]`
    (the frame row representing venue v at tick t: its first message there, else its last earlier one).

    Worked venue by venue on [ticks] columns, so the temporaries stay one column long however many venues.
    """
    n = len(ts)
    in_order = bool(np.all(ts[1:] >= ts[:-1]))  # exports are nearly always sorted: skip the sort then
    order = None if in_order else event_order(ts)
    ts_sorted = ts if order is None else ts[order]
    new_tick = np.empty(n, dtype=bool)
    new_tick[0] = True
    np.not_equal(ts_sorted[1:], ts_sorted[:-1], out=new_tick[1:])
    tick_of = np.cumsum(new_tick) - 1
    tick_ts = ts_sorted[new_tick]
    venues = np.unique(pid)
    venue_of = np.searchsorted(venues, pid if order is None else pid[order])
    n_ticks, n_venues = len(tick_ts), len(venues)
    row_dtype = _index_dtype(n)
    fresh = np.zeros((n_ticks, n_venues), dtype=bool)
    source_row: np.ndarray = np.empty((n_ticks, n_venues), dtype=row_dtype)
    for v in range(n_venues):
        positions = np.flatnonzero(venue_of == v)  # the venue's messages, in event order
        ticks = tick_of[positions]
        starts = np.empty(len(ticks), dtype=bool)  # first message of the venue at its tick
        starts[0] = True
        np.not_equal(ticks[1:], ticks[:-1], out=starts[1:])
        ends = np.append(starts[1:], True)  # last message of the venue at its tick
        first, last = positions[starts], positions[ends]
        column = fresh[:, v]
        column[ticks[starts]] = True
        # The venue's latest tick with a message at or before each tick (-1: none yet).
        latest = np.cumsum(column) - 1
        # Fresh: its first message there; otherwise the last message of that earlier tick.
        position = np.where(column, first[latest], last[latest])
        position[latest < 0] = -1
        if order is not None:
            position = np.where(position >= 0, order[position], -1)
        source_row[:, v] = position
    return tick_ts, venues, fresh, source_row


def _column(frame: pd.DataFrame, name: str, fill: float, dtype: type) -> np.ndarray:
    """Column `name` per frame row as `dtype` (`fill` for missing values or a missing column)."""
    if name not in frame.columns:
        return np.full(len(frame), fill, dtype=dtype)
    return frame[name].to_numpy(dtype=dtype, na_value=fill)


class VenueQuote(NamedTuple):
    """A venue's tradable quote at a tick, in cost space (allocator.snapshots.side)."""

    publisher_id: int
    price: float
    size: int


class TickSnapshot(NamedTuple):
    """One tick of `IncrementalSnapshots`: a row of `Snapshots.take_px/take_sz`, tradable venues only."""

    ts_event: int
    quotes: list[VenueQuote]  # sorted by publisher id, as `Snapshots.publisher_ids`


class IncrementalSnapshots:
    """The snapshot rule as rows arrive in event order (a stream): each tick is closed, and returned, when
    the first row of a later tick arrives, or by `close()` at the end of the stream.

    Per venue it keeps the first and last message of the open tick and the latest known quote before it,
    so the snapshot of a tick is the known state overlaid with the tick's first messages, the same rows
    `build_snapshots` picks. Quotes that are not tradable are left out and counted like its
    `untradable_quotes`.
    """

    def __init__(self, side: Side = "buy") -> None:
        self.side: Side = side
        self.sign = side_sign(side)
        self.price_column, self.size_column = take_columns(side)
        self.tick_ts: int | None = None
        self.ticks = 0
        self.untradable_quotes = 0
        self._first: dict[int, tuple[float, int]] = {}
        self._last: dict[int, tuple[float, int]] = {}
        self._known: dict[int, tuple[float, int]] = {}

    def add(self, frame: pd.DataFrame) -> list[TickSnapshot]:
        """Take the next rows of the stream; return the ticks they closed, in order."""
        return self.add_arrays(
            frame["ts_event"].to_numpy(dtype=np.int64),
            frame["publisher_id"].to_numpy(dtype=np.int64),
            frame[self.price_column].to_numpy(dtype=np.float64),
            frame[self.size_column].to_numpy(dtype=np.int64),
        )

    def add_arrays(
        self, ts: np.ndarray, pid: np.ndarray, price: np.ndarray, size: np.ndarray
    ) -> list[TickSnapshot]:
        """`add` on the columns themselves (ts_event, publisher_id, take price and size), as a stream has them."""
        closed: list[TickSnapshot] = []
        for i in range(len(ts)):
            if ts[i] != self.tick_ts:
                if (snapshot := self.close()) is not None:
                    closed.append(snapshot)
                self.tick_ts = int(ts[i])
            quote = (float(price[i]), int(size[i]))
            self._first.setdefault(int(pid[i]), quote)
            self._last[int(pid[i])] = quote
        return closed

    def close(self) -> TickSnapshot | None:
        """Close the open tick (if any) and return its snapshot; the next row starts a new tick."""
        if self.tick_ts is None or not self._first:
            return None
        merged = self._known | self._first
        self._known.update(self._last)
        fresh = self._first
        self._first, self._last = {}, {}
        self.ticks += 1
        self.untradable_quotes += sum(not _scalar_tradable(*fresh[p]) for p in fresh)
        quotes = [
            VenueQuote(p, self.sign * px, sz)
            for p, (px, sz) in sorted(merged.items())
            if _scalar_tradable(px, sz)
        ]
        return TickSnapshot(self.tick_ts, quotes)


def _scalar_tradable(price: float, size: int) -> bool:
    """quote_is_tradable for one Python quote, without numpy's per-call cost (a stream closes every tick)."""
    return math.isfinite(price) and price > 0 and size > 0
