"""Every venue's message stream as arrays, in *cost space* for the order's side: what the simulator replays.

The snapshot rule (allocator.snapshots.rule) decides what a strategy looks at when it decides; this module keeps
every message of every venue, because execution happens against the venue's true state at the moment an
order arrives, and queues move with every trade and cancel, not once per tick.

Cost space. A buy takes asks and posts at the bid; a sell takes bids and posts at the ask. Writing every
price as `sign · price` (sign +1 buy, −1 sell) makes one rule serve both: the liquidity we take is sorted
ascending (cheapest first), "better for us" is always "lower", a more aggressive resting price is always
"higher", and cash is Σ shares·(cost price + fee) − rebates, which for a sell is minus the proceeds. Only
the report turns cost prices back into market prices (allocator.snapshots.side).

Time. `ts_event` is when the venue's book changed (orders we send interact with the row in force at their
arrival); `ts_seen` is the earliest time a trader could know the row: max(ts_recv, ts_event), made
non-decreasing per venue because a row cannot be acted on before the rows in front of it arrived. Files
without ts_recv use ts_event, i.e. a zero-latency feed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocator.data.schema import book_levels, level_column
from allocator.snapshots.rule import event_order
from allocator.snapshots.side import Side, side_sign


@dataclass(frozen=True)
class VenueStream:
    """One venue's messages in event order (arrays of length n; level arrays shaped [n, levels])."""

    ts_event: np.ndarray  # int64
    ts_seen: np.ndarray  # int64, non-decreasing
    take_px: np.ndarray  # float64 [n, L] cost prices of the side we take, ascending, NaN where empty
    take_sz: np.ndarray  # int32 (int64 if a size needs it) [n, L]
    post_px: np.ndarray  # float64 [n] cost price of the best level on the side we post, NaN if none
    post_sz: np.ndarray  # int64 [n]
    hit_px: np.ndarray  # float64 [n] cost price of a trade whose aggressor hit our posting side, else NaN
    hit_sz: np.ndarray  # int64 [n]
    interesting: np.ndarray  # int64 row indices where a resting order's state can change (see below)

    @property
    def rows(self) -> int:
        return len(self.ts_event)

    def row_at(self, t: int) -> int:
        """The row in force at the venue at time t (last ts_event ≤ t), -1 before the first."""
        return int(np.searchsorted(self.ts_event, t, side="right")) - 1

    def row_seen(self, t: int) -> int:
        """The latest row a trader could know at time t (last ts_seen ≤ t), -1 if none yet."""
        return int(np.searchsorted(self.ts_seen, t, side="right")) - 1


@dataclass(frozen=True)
class Book:
    """All venues' streams for one side, aligned with `publisher_ids` (the snapshot's venue order)."""

    side: Side
    publisher_ids: np.ndarray
    streams: list[VenueStream]
    levels: int
    # frame row (file order) → (venue index, row in that venue's stream), to relate snapshots to streams
    venue_of_row: np.ndarray
    stream_row_of_row: np.ndarray

    @property
    def sign(self) -> int:
        return side_sign(self.side)


def _quote_column(frame: pd.DataFrame, field: str, level: int) -> tuple[np.ndarray, np.ndarray]:
    """(price, size) of one book level per frame row; an unusable level (NaN or non-positive price or size,
    or a missing column) offers nothing: NaN and 0."""
    px_name, sz_name = level_column(f"{field}_px", level), level_column(f"{field}_sz", level)
    n = len(frame)
    px = frame[px_name].to_numpy(dtype=np.float64, na_value=np.nan) if px_name in frame.columns else None
    sz = frame[sz_name].to_numpy(dtype=np.int64, na_value=0) if sz_name in frame.columns else None
    px = np.full(n, np.nan) if px is None else px.copy()
    sz = np.zeros(n, np.int64) if sz is None else sz.copy()
    bad = ~(np.isfinite(px) & (px > 0) & (sz > 0))
    px[bad] = np.nan
    sz[bad] = 0
    return px, sz


def _hits_our_side(frame: pd.DataFrame, side: Side, mid_before: np.ndarray) -> np.ndarray:
    """Trades whose aggressor traded against the side we post on (sell aggressors hit bids). An unknown
    aggressor ('N') is judged by the trade price against the venue's mid *before* the trade (its previous
    row), because a row may already show the book after the trade."""
    if "action" not in frame.columns or "price" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    trade = _equals(frame, "action", "T")
    price = frame["price"].to_numpy(dtype=np.float64, na_value=np.nan)
    if "side" in frame.columns:
        unknown = _equals(frame, "side", "N")
        hits_bid, hits_ask = _equals(frame, "side", "A"), _equals(frame, "side", "B")
    else:
        unknown = np.ones(len(frame), dtype=bool)
        hits_bid, hits_ask = np.zeros(len(frame), dtype=bool), np.zeros(len(frame), dtype=bool)
    hits_bid = hits_bid | (unknown & (price <= mid_before))
    hits_ask = hits_ask | (unknown & (price > mid_before))
    return trade & (hits_bid if side == "buy" else hits_ask) & np.isfinite(price)


def _equals(frame: pd.DataFrame, name: str, value: str) -> np.ndarray:
    """Rows whose `name` is `value` (an empty cell is not), compared on the column as it is (a categorical
    compares its codes): no per-row string array for a full day's frame."""
    return (frame[name] == value).to_numpy(dtype=bool, na_value=False)


def _mid_before(bid0: np.ndarray, ask0: np.ndarray, venue_rows: list[np.ndarray]) -> np.ndarray:
    """Per frame row, the venue's mid on its previous row in event order (its own mid on its first row)."""
    mid = (bid0 + ask0) / 2
    before = mid.copy()
    for rows in venue_rows:
        before[rows[1:]] = mid[rows[:-1]]
    return before


def _size_dtype(frame: pd.DataFrame, columns: list[str]) -> type:
    """int32 for the take side's sizes when every one fits (they fill [rows, levels] blocks), else int64."""
    present = [c for c in columns if c in frame.columns and len(frame)]
    largest = max((float(np.nan_to_num(frame[c].max(), nan=0.0)) for c in present), default=0.0)
    return np.int32 if largest < np.iinfo(np.int32).max else np.int64


def build_book(frame: pd.DataFrame, publisher_ids: np.ndarray, side: Side = "buy") -> Book:
    """Split the frame into per-venue streams in event order and convert to cost space for `side`.

    Only the side we take from is kept at every level (the other side's best level is all a resting order
    needs), and the level blocks are filled one level at a time, so a full day never holds a second
    [rows, levels] copy of the book.
    """
    sign = side_sign(side)
    take = "ask" if side == "buy" else "bid"
    # The depth of the file (its ask levels), or of the side we take from when only that side was loaded
    # below the top (the loader's `depth_side`): the same count on any export, which has both sides.
    levels = max(book_levels(frame.columns), book_levels(frame.columns, f"{take}_px"))
    ts = frame["ts_event"].to_numpy(dtype=np.int64)
    recv = frame["ts_recv"].to_numpy(dtype=np.int64) if "ts_recv" in frame.columns else ts
    order = event_order(ts)
    venue_of_row = np.searchsorted(publisher_ids, frame["publisher_id"].to_numpy(dtype=np.int64))
    # each venue's frame rows in event order
    in_order = venue_of_row[order]
    venue_rows = [order[in_order == v] for v in range(len(publisher_ids))]
    del order, in_order  # a full day's [rows] temporaries, not kept while the book is filled
    ask0_px, ask0_sz = _quote_column(frame, "ask", 0)
    bid0_px, bid0_sz = _quote_column(frame, "bid", 0)
    hits = _hits_our_side(frame, side, _mid_before(bid0_px, ask0_px, venue_rows))
    if side == "buy":
        take_field, post_px, post_sz = "ask", bid0_px, bid0_sz
    else:
        take_field, post_px, post_sz = "bid", -ask0_px, ask0_sz
    del ask0_px, ask0_sz, bid0_px, bid0_sz
    size_dtype = _size_dtype(frame, [level_column(f"{take_field}_sz", lvl) for lvl in range(levels)])
    take_px = [np.empty((len(rows), levels), dtype=np.float64) for rows in venue_rows]
    take_sz: list[np.ndarray] = [np.empty((len(rows), levels), dtype=size_dtype) for rows in venue_rows]
    for lvl in range(levels):
        px, sz = _quote_column(frame, take_field, lvl)
        for v, rows in enumerate(venue_rows):
            take_px[v][:, lvl] = sign * px[rows]
            take_sz[v][:, lvl] = sz[rows]
    price = frame["price"].to_numpy(dtype=np.float64, na_value=np.nan) if "price" in frame.columns else None
    size = frame["size"].to_numpy(dtype=np.int64, na_value=0) if "size" in frame.columns else None
    stream_row_of_row = np.empty(len(frame), dtype=np.int64)
    streams = []
    for v, rows in enumerate(venue_rows):
        stream_row_of_row[rows] = np.arange(len(rows))
        t_event = ts[rows]
        t_seen = np.maximum.accumulate(np.maximum(recv[rows], t_event)) if len(rows) else t_event
        hit = hits[rows]
        hit_px = (
            np.where(hit, sign * price[rows], np.nan) if price is not None else np.full(len(rows), np.nan)
        )
        hit_sz = np.where(hit, size[rows], 0) if size is not None else np.zeros(len(rows), np.int64)
        p_px, p_sz = post_px[rows], post_sz[rows]
        # A resting order at the best posting price changes only where a trade hits our side or the best
        # posting level changes; the simulator visits just those rows.
        changed = np.ones(len(rows), dtype=bool)
        if len(rows) > 1:
            same_px = (p_px[1:] == p_px[:-1]) | (np.isnan(p_px[1:]) & np.isnan(p_px[:-1]))
            changed[1:] = ~same_px | (p_sz[1:] != p_sz[:-1])
        streams.append(
            VenueStream(
                ts_event=t_event,
                ts_seen=t_seen,
                take_px=take_px[v],
                take_sz=take_sz[v],
                post_px=p_px,
                post_sz=p_sz,
                hit_px=hit_px,
                hit_sz=hit_sz,
                interesting=np.flatnonzero(changed | hit),
            )
        )
    return Book(side, publisher_ids, streams, levels, venue_of_row, stream_row_of_row)
