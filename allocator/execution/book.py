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

import math
from collections.abc import Iterable, Mapping
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


Rows = pd.DataFrame | Mapping[str, np.ndarray]  # a file's frame, or a stream's batch of numpy columns


def _has(rows: Rows, name: str) -> bool:
    return name in rows.columns if isinstance(rows, pd.DataFrame) else name in rows


def _values(rows: Rows, name: str, dtype: type, na_value: float) -> np.ndarray:
    """Column `name` as `dtype`, missing cells as `na_value`: a frame's (nullable) column, or a batch's numpy
    column (an integer column with nulls arrives as floats with NaN)."""
    if isinstance(rows, pd.DataFrame):
        return rows[name].to_numpy(dtype=dtype, na_value=na_value)
    values = np.asarray(rows[name])
    if values.dtype.kind == "O":
        return pd.Series(values).to_numpy(dtype=dtype, na_value=na_value)
    if values.dtype.kind == "f" and np.dtype(dtype).kind != "f":
        return np.where(np.isnan(values), na_value, values).astype(dtype)
    return values.astype(dtype, copy=False)


def _row_count(rows: Rows) -> int:
    return len(rows) if isinstance(rows, pd.DataFrame) else len(rows["ts_event"])


def _quote_column(rows: Rows, field: str, level: int) -> tuple[np.ndarray, np.ndarray]:
    """(price, size) of one book level per row; an unusable level (NaN or non-positive price or size, or a
    missing column) offers nothing: NaN and 0."""
    px_name, sz_name = level_column(f"{field}_px", level), level_column(f"{field}_sz", level)
    n = _row_count(rows)
    px = _values(rows, px_name, np.float64, np.nan).copy() if _has(rows, px_name) else np.full(n, np.nan)
    sz = _values(rows, sz_name, np.int64, 0).copy() if _has(rows, sz_name) else np.zeros(n, np.int64)
    bad = ~(np.isfinite(px) & (px > 0) & (sz > 0))
    px[bad] = np.nan
    sz[bad] = 0
    return px, sz


def _hits_our_side(rows: Rows, side: Side, mid_before: np.ndarray) -> np.ndarray:
    """Trades whose aggressor traded against the side we post on (sell aggressors hit bids). An unknown
    aggressor ('N') is judged by the trade price against the venue's mid *before* the trade (its previous
    row), because a row may already show the book after the trade."""
    n = _row_count(rows)
    if not (_has(rows, "action") and _has(rows, "price")):
        return np.zeros(n, dtype=bool)
    trade = _equals(rows, "action", "T")
    price = _values(rows, "price", np.float64, np.nan)
    if _has(rows, "side"):
        unknown = _equals(rows, "side", "N")
        hits_bid, hits_ask = _equals(rows, "side", "A"), _equals(rows, "side", "B")
    else:
        unknown = np.ones(n, dtype=bool)
        hits_bid, hits_ask = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    hits_bid = hits_bid | (unknown & (price <= mid_before))
    hits_ask = hits_ask | (unknown & (price > mid_before))
    return trade & (hits_bid if side == "buy" else hits_ask) & np.isfinite(price)


def _equals(rows: Rows, name: str, value: str) -> np.ndarray:
    """Rows whose `name` is `value` (an empty cell is not), compared on the column as it is (a categorical
    compares its codes): no per-row string array for a full day's frame."""
    if isinstance(rows, pd.DataFrame):
        return (rows[name] == value).to_numpy(dtype=bool, na_value=False)
    return np.asarray(np.asarray(rows[name]) == value, dtype=bool)


def _mid_before(mid: np.ndarray, venue_rows: list[np.ndarray], tails: list[_VenueTail]) -> np.ndarray:
    """Per frame row, the venue's mid on its previous row in event order: the previous append's last row
    for a venue's first row here, its own mid on the venue's first row ever."""
    before = mid.copy()
    for rows, tail in zip(venue_rows, tails, strict=True):
        before[rows[1:]] = mid[rows[:-1]]
        if len(rows) and tail.started:
            before[rows[0]] = tail.mid
    return before


def _size_dtype(rows: Rows, columns: list[str]) -> type:
    """int32 for the take side's sizes when every one fits (they fill [rows, levels] blocks), else int64."""
    if not _row_count(rows):
        return np.int32
    present = [c for c in columns if _has(rows, c)]
    if isinstance(rows, pd.DataFrame):
        largest = max((float(np.nan_to_num(rows[c].max(), nan=0.0)) for c in present), default=0.0)
    else:
        largest = max((float(np.nanmax(_values(rows, c, np.float64, 0.0))) for c in present), default=0.0)
    return np.int32 if largest < np.iinfo(np.int32).max else np.int64


def book_depth(columns: Iterable[str], side: Side) -> int:
    """The depth of the file (its ask levels), or of the side we take from when only that side was loaded
    below the top (the loader's `depth_side`): the same count on any export, which has both sides."""
    names = list(columns)
    take = "ask" if side == "buy" else "bid"
    return max(book_levels(names), book_levels(names, f"{take}_px"))


def build_book(frame: pd.DataFrame, publisher_ids: np.ndarray, side: Side = "buy") -> Book:
    """Split the frame into per-venue streams in event order and convert to cost space for `side`."""
    builder = BookBuilder(publisher_ids, side, book_depth(frame.columns, side))
    venue_of_row, stream_row_of_row = builder.append(frame)
    return builder.book(venue_of_row, stream_row_of_row)


class GrowingArray:
    """An array that rows are appended to (capacity doubling), read as a view of its filled rows: a stream
    that grows tick by tick costs O(new rows) per append, and one append of a known size allocates
    exactly that size (the offline build holds no spare copy of a full day's book)."""

    def __init__(self, dtype: type, width: int | None = None) -> None:
        self.width = width
        self.data: np.ndarray = np.empty((0,) if width is None else (0, width), dtype=dtype)
        self.n = 0

    def reserve(self, extra: int, dtype: type | None = None) -> None:
        """Room for `extra` more rows (and a dtype that holds `dtype`'s values)."""
        wanted = np.promote_types(self.data.dtype, dtype) if dtype is not None else self.data.dtype
        if self.n + extra <= len(self.data) and wanted == self.data.dtype:
            return
        size = max(self.n + extra, 2 * len(self.data)) if self.n + extra > len(self.data) else len(self.data)
        grown = np.empty((size,) if self.width is None else (size, self.width), dtype=wanted)
        grown[: self.n] = self.data[: self.n]
        self.data = grown

    def put(self, values: np.ndarray) -> None:
        """Append rows (after `reserve`)."""
        self.data[self.n : self.n + len(values)] = values
        self.n += len(values)

    def view(self) -> np.ndarray:
        return self.data[: self.n]


@dataclass
class _VenueTail:
    """What a venue's next appended row needs from the rows before it (its previous row's mid, best posting
    level and seen time), so appending tick by tick gives exactly the arrays of one build."""

    mid: float = math.nan
    post_px: float = math.nan
    post_sz: int = 0
    ts_seen: int = np.iinfo(np.int64).min
    started: bool = False


class BookBuilder:
    """Every venue's stream built by appending rows in event order: once for a file (`build_book`), or tick
    by tick as a stream arrives (allocator.execution.live_market).

    Only the side we take from is kept at every level (the other side's best level is all a resting order
    needs), and the level blocks are filled one level at a time, so a full day never holds a second
    [rows, levels] copy of the book."""

    def __init__(self, publisher_ids: np.ndarray, side: Side, levels: int) -> None:
        self.publisher_ids = np.asarray(publisher_ids, dtype=np.int64)
        self.side = side
        self.sign = side_sign(side)
        self.levels = levels
        n = len(self.publisher_ids)
        self.tails = [_VenueTail() for _ in range(n)]
        self.columns = [self._empty_columns() for _ in range(n)]
        self.last_ts = np.iinfo(np.int64).min

    def _empty_columns(self) -> dict[str, GrowingArray]:
        levels = self.levels
        return {
            "ts_event": GrowingArray(np.int64),
            "ts_seen": GrowingArray(np.int64),
            "take_px": GrowingArray(np.float64, levels),
            "take_sz": GrowingArray(np.int32, levels),
            "post_px": GrowingArray(np.float64),
            "post_sz": GrowingArray(np.int64),
            "hit_px": GrowingArray(np.float64),
            "hit_sz": GrowingArray(np.int64),
            "interesting": GrowingArray(np.int64),
        }

    def add_venue(self, publisher_id: int) -> int:
        """A venue with no rows yet, at its place in publisher_id order (which later venues' indices follow,
        as in a build from the whole file); returns its index."""
        at = int(np.searchsorted(self.publisher_ids, publisher_id))
        if at < len(self.publisher_ids) and self.publisher_ids[at] == publisher_id:
            return at
        self.publisher_ids = np.insert(self.publisher_ids, at, publisher_id)
        self.tails.insert(at, _VenueTail())
        self.columns.insert(at, self._empty_columns())
        return at

    def rows(self) -> int:
        return sum(c["ts_event"].n for c in self.columns)

    def append(self, frame: Rows) -> tuple[np.ndarray, np.ndarray]:
        """Add rows at or after every row added so far (any order within them: they are put in event order,
        file order kept among equal ts_event). Returns, per frame row, its venue index and its row in that
        venue's stream."""
        sign, levels = self.sign, self.levels
        ts = _values(frame, "ts_event", np.int64, 0)
        if len(ts) and int(ts.min()) < self.last_ts:
            raise ValueError("BookBuilder.append: rows must not be earlier than the rows already added")
        recv = _values(frame, "ts_recv", np.int64, 0) if _has(frame, "ts_recv") else ts
        order = event_order(ts)
        pids = _values(frame, "publisher_id", np.int64, 0)
        venue_of_row = np.searchsorted(self.publisher_ids, pids)
        if len(pids) and not np.array_equal(
            self.publisher_ids[np.clip(venue_of_row, 0, len(self.publisher_ids) - 1)], pids
        ):
            raise ValueError("BookBuilder.append: a row's publisher_id is not among the builder's venues")
        # each venue's frame rows in event order
        in_order = venue_of_row[order]
        venue_rows = [order[in_order == v] for v in range(len(self.publisher_ids))]
        del order, in_order  # a full day's [rows] temporaries, not kept while the book is filled
        ask0_px, ask0_sz = _quote_column(frame, "ask", 0)
        bid0_px, bid0_sz = _quote_column(frame, "bid", 0)
        mids = (bid0_px + ask0_px) / 2
        hits = _hits_our_side(frame, self.side, _mid_before(mids, venue_rows, self.tails))
        if self.side == "buy":
            take_field, post_px, post_sz = "ask", bid0_px, bid0_sz
        else:
            take_field, post_px, post_sz = "bid", -ask0_px, ask0_sz
        del ask0_px, ask0_sz, bid0_px, bid0_sz
        size_dtype = _size_dtype(frame, [level_column(f"{take_field}_sz", lvl) for lvl in range(levels)])
        starts = []
        for v, rows in enumerate(venue_rows):
            columns = self.columns[v]
            for name, column in columns.items():
                column.reserve(len(rows), size_dtype if name == "take_sz" else None)
            starts.append(columns["ts_event"].n)
        for lvl in range(levels):
            px, sz = _quote_column(frame, take_field, lvl)
            for v, rows in enumerate(venue_rows):
                at = starts[v]
                self.columns[v]["take_px"].data[at : at + len(rows), lvl] = sign * px[rows]
                self.columns[v]["take_sz"].data[at : at + len(rows), lvl] = sz[rows]
        price = _values(frame, "price", np.float64, np.nan) if _has(frame, "price") else None
        size = _values(frame, "size", np.int64, 0) if _has(frame, "size") else None
        stream_row_of_row = np.empty(len(ts), dtype=np.int64)
        for v, rows in enumerate(venue_rows):
            if not len(rows):
                continue
            columns, tail, at = self.columns[v], self.tails[v], starts[v]
            stream_row_of_row[rows] = np.arange(at, at + len(rows))
            t_event = ts[rows]
            t_seen = np.maximum.accumulate(np.maximum(np.maximum(recv[rows], t_event), tail.ts_seen))
            hit = hits[rows]
            hit_px = (
                np.where(hit, sign * price[rows], np.nan) if price is not None else np.full(len(rows), np.nan)
            )
            hit_sz = np.where(hit, size[rows], 0) if size is not None else np.zeros(len(rows), np.int64)
            p_px, p_sz = post_px[rows], post_sz[rows]
            # A resting order at the best posting price changes only where a trade hits our side or the best
            # posting level changes; the simulator visits just those rows.
            before_px = np.concatenate(([tail.post_px], p_px[:-1]))
            before_sz = np.concatenate(([tail.post_sz], p_sz[:-1]))
            same_px = (p_px == before_px) | (np.isnan(p_px) & np.isnan(before_px))
            changed = ~same_px | (p_sz != before_sz)
            if not tail.started:
                changed[0] = True
            columns["take_px"].n += len(rows)
            columns["take_sz"].n += len(rows)
            for name, values in (
                ("ts_event", t_event),
                ("ts_seen", t_seen),
                ("post_px", p_px),
                ("post_sz", p_sz),
                ("hit_px", hit_px),
                ("hit_sz", hit_sz),
                ("interesting", np.flatnonzero(changed | hit) + at),
            ):
                columns[name].put(values)
            last = rows[-1]
            self.tails[v] = _VenueTail(
                float(mids[last]), float(p_px[-1]), int(p_sz[-1]), int(t_seen[-1]), True
            )
        if len(ts):
            self.last_ts = max(self.last_ts, int(ts.max()))
        return venue_of_row, stream_row_of_row

    def stream(self, venue: int) -> VenueStream:
        """The venue's stream so far (views of the builder's arrays: valid until the next append)."""
        c = self.columns[venue]
        return VenueStream(**{name: column.view() for name, column in c.items()})

    def book(
        self, venue_of_row: np.ndarray | None = None, stream_row_of_row: np.ndarray | None = None
    ) -> Book:
        """The streams so far as a Book (`venue_of_row`, `stream_row_of_row` relate a file's rows to them;
        empty for a stream's book)."""
        empty = np.empty(0, np.int64)
        return Book(
            self.side,
            self.publisher_ids,
            [self.stream(v) for v in range(len(self.publisher_ids))],
            self.levels,
            empty if venue_of_row is None else venue_of_row,
            empty if stream_row_of_row is None else stream_row_of_row,
        )
