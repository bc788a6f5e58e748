"""The snapshot rule — the one place in the code that decides what the router sees at each tick.

Rows are ordered by ts_event stably (file order kept within equal ts_event, because real exports are
sorted by ts_recv, not ts_event). A *tick* is a distinct ts_event. At a tick, a venue that sent
messages is represented by its **first** message at that tick (the trial's rule: "first message per
publisher_id per ts_event"); a venue that sent nothing keeps its latest known state, i.e. the last
message at its most recent earlier tick. So a snapshot is the consolidated top of book across venues,
and on one-venue data it is exactly the trial's snapshot sequence.

For a sell the same rule applies to the other side of the book: `ask_*` then describe the bids we would
hit and `bid_*` the asks we would join, in cost space (prices negated, allocator.snapshots.side), so every strategy
routes a sell with the buy code.

Everything is index arithmetic on arrays: `row[t, v]` is the position (in event order) of the message
representing venue v at tick t, or -1 before the venue's first message, so any column can be
gathered per tick and venue without building per-tick objects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocator.errors import UserError
from allocator.snapshots.side import Side, side_sign


def event_order(ts_event: np.ndarray) -> np.ndarray:
    """Permutation that sorts rows by ts_event, keeping file order among equal timestamps."""
    return np.argsort(ts_event, kind="stable")


@dataclass(frozen=True)
class Snapshots:
    """Per-tick, per-venue view of the consolidated top of book (arrays shaped [ticks, venues])."""

    ts_event: np.ndarray  # int64 [T] tick timestamps, increasing
    publisher_ids: np.ndarray  # int64 [V] sorted venue ids
    source_row: np.ndarray  # int64 [T, V] frame row (file order) representing the venue, -1 if none yet
    fresh: np.ndarray  # bool [T, V] the venue sent a message at this tick
    ask_px: np.ndarray  # float64 [T, V], NaN where not tradable
    ask_sz: np.ndarray  # int64 [T, V], 0 where not tradable
    bid_px: np.ndarray  # float64 [T, V], NaN where unknown
    bid_sz: np.ndarray  # int64 [T, V], 0 where unknown
    untradable_quotes: int  # venue messages (first at their tick) whose ask price or size was unusable
    crossed_quotes: int = (
        0  # venue messages (first at their tick) whose own bid ≥ ask: counted, ask still used
    )
    side: Side = "buy"  # "sell": ask_* hold −bid (what we hit), bid_* hold −ask (where we would post)

    @property
    def ticks(self) -> int:
        return len(self.ts_event)

    @property
    def venues(self) -> int:
        return len(self.publisher_ids)

    @property
    def tradable(self) -> np.ndarray:
        return self.ask_sz > 0

    def since(self, tick: int) -> Snapshots:
        """The ticks from `tick` on, each still carrying the venues' state from before it; the quote
        counts cover the kept ticks' own messages."""
        if tick <= 0:
            return self
        fresh = self.fresh[tick:]
        crossed = fresh & np.isfinite(self.ask_px[tick:]) & np.isfinite(self.bid_px[tick:])
        crossed &= self.bid_px[tick:] >= self.ask_px[tick:]
        return dataclasses.replace(
            self,
            ts_event=self.ts_event[tick:],
            source_row=self.source_row[tick:],
            fresh=fresh,
            ask_px=self.ask_px[tick:],
            ask_sz=self.ask_sz[tick:],
            bid_px=self.bid_px[tick:],
            bid_sz=self.bid_sz[tick:],
            untradable_quotes=int(np.count_nonzero(fresh & (self.ask_sz[tick:] == 0))),
            crossed_quotes=int(np.count_nonzero(crossed)),
        )


def build_snapshots(frame: pd.DataFrame, side: Side = "buy") -> Snapshots:
    """Apply the snapshot rule to a loaded frame (columns ts_event, publisher_id, ask/bid level 00)."""
    sign = side_sign(side)
    ts = frame["ts_event"].to_numpy(dtype=np.int64)
    pid = frame["publisher_id"].to_numpy(dtype=np.int64)
    order = event_order(ts)
    ts_sorted = ts[order]
    n = len(ts_sorted)
    if n == 0:
        empty2 = np.empty((0, 0))
        return Snapshots(
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            empty2.astype(np.int64),
            empty2.astype(bool),
            empty2,
            empty2.astype(np.int64),
            empty2,
            empty2.astype(np.int64),
            0,
            side=side,
        )
    new_tick = np.empty(n, dtype=bool)
    new_tick[0] = True
    np.not_equal(ts_sorted[1:], ts_sorted[:-1], out=new_tick[1:])
    tick_of = np.cumsum(new_tick) - 1
    tick_ts = ts_sorted[new_tick]
    venues = np.unique(pid)
    n_ticks, n_venues = len(tick_ts), len(venues)
    venue_of = np.searchsorted(venues, pid[order])
    key = tick_of * n_venues + venue_of

    # First and last message of each (tick, venue) in event order.
    first = np.full(n_ticks * n_venues, -1, dtype=np.int64)
    last = np.full(n_ticks * n_venues, -1, dtype=np.int64)
    unique_keys, first_pos = np.unique(key, return_index=True)  # index of each key's first occurrence
    first[unique_keys] = first_pos
    unique_keys, last_from_end = np.unique(key[::-1], return_index=True)
    last[unique_keys] = n - 1 - last_from_end
    first = first.reshape(n_ticks, n_venues)
    last = last.reshape(n_ticks, n_venues)
    fresh = first >= 0
    # Positions grow with the tick, so a running maximum carries each venue's latest state forward.
    carried = np.maximum.accumulate(last, axis=0)
    previous = np.vstack([np.full((1, n_venues), -1, dtype=np.int64), carried[:-1]])
    position = np.where(fresh, first, previous)
    source_row = np.where(position >= 0, order[np.clip(position, 0, None)], -1)

    def per_tick(name: str, fill: float | int, dtype: type) -> np.ndarray:
        if name not in frame.columns:
            return np.full((n_ticks, n_venues), fill, dtype=dtype)
        values = frame[name].to_numpy(dtype=dtype, na_value=fill)
        out = values[np.clip(source_row, 0, None)]
        out[source_row < 0] = fill
        return out

    ask_px = per_tick("ask_px_00", np.nan, np.float64)
    ask_sz = per_tick("ask_sz_00", 0, np.int64)
    bid_px = per_tick("bid_px_00", np.nan, np.float64)
    bid_sz = per_tick("bid_sz_00", 0, np.int64)
    ask_ok = np.isfinite(ask_px) & (ask_px > 0) & (ask_sz > 0) & (source_row >= 0)
    bid_ok = np.isfinite(bid_px) & (bid_px > 0)
    if "bid_sz_00" in frame.columns:  # a file with bid prices but no bid sizes still tells the spread
        bid_ok &= bid_sz > 0
    crossed_quotes = int(np.count_nonzero(fresh & ask_ok & bid_ok & (bid_px >= ask_px)))
    if side == "sell" and "bid_sz_00" not in frame.columns:
        raise UserError("selling needs bid prices and sizes (bid_px_00, bid_sz_00) in the data")
    # The side we take from must be usable to trade; the side we post on only informs.
    take_ok, post_ok = (ask_ok, bid_ok) if sign > 0 else (bid_ok & (source_row >= 0), ask_ok)
    take_px, take_sz, post_px, post_sz = (
        (ask_px, ask_sz, bid_px, bid_sz) if sign > 0 else (bid_px, bid_sz, ask_px, ask_sz)
    )
    untradable_quotes = int(np.count_nonzero(fresh & ~take_ok))
    return Snapshots(
        ts_event=tick_ts,
        publisher_ids=venues,
        source_row=source_row,
        fresh=fresh,
        ask_px=np.where(take_ok, sign * take_px, np.nan),
        ask_sz=np.where(take_ok, take_sz, 0),
        bid_px=np.where(post_ok, sign * post_px, np.nan),
        bid_sz=np.where(post_ok, post_sz, 0),
        untradable_quotes=untradable_quotes,
        crossed_quotes=crossed_quotes,
        side=side,
    )
