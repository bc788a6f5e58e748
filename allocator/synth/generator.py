"""Synthetic multi-venue Databento MBP-10 day: the project's recorded dataset and its generator.

Why synthetic: the public trial file (`l1_day.csv`) is one venue (Nasdaq only) and we may not
redistribute it, yet a smart order router is only worth testing when venues compete. This module
writes a file in exactly the trial file's CSV format (see `allocator.data.schema`) with six real
Databento publishers quoting around ONE shared latent price, so allocation decisions matter.

Model, in one paragraph: a latent "efficient" mid price moves in half-tick jumps around a rising
trend (pinned so the main venue's best ask is 222.83 at 13:36:32.5, like the trial file). Each
venue keeps its own 10+ level book, learns of each latent move after a venue-specific delay (so
the NBBO is locked/crossed only briefly), removes its stale side by trades or cancels, re-quotes at
a target 1-3 ticks wide, and in between emits background adds, cancels, modifies, trades and
hidden fills in bursts. Every row shows the book after its message, as Databento MBP does.

Usage:
    python -m allocator.synth --out data/l1_day.csv.gz [--seed N] [--start HH:MM:SS --end HH:MM:SS]
    python -m allocator.synth --stats data/l1_day.csv.gz     # the table in data/README.md
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from allocator.data.schema import LEVEL_FIELDS, MAX_LEVELS, MBP10_COLUMNS, RTYPE_MBP10, level_column
from allocator.data.venues import DEFAULT_VENUES_FILE, load_fee_table
from allocator.errors import UserError

DEFAULT_SEED = 20240801
DEFAULT_DATE = "2024-08-01"
DEFAULT_START = "13:35:00"
DEFAULT_END = "13:46:00"
# The trial window; the latent path is pinned at its start and its trend spans it.
WINDOW_START = "13:36:32.5"
WINDOW_END = "13:45:15"
SYMBOL = "AAPL"
INSTRUMENT_ID = 38  # AAPL's id in the trial file; kept on every venue so loaders need no mapping
TICK = 0.01
PIN_ASK_TICKS = 22283  # main venue's best ask at the window start: 222.83
TREND_RISE_TICKS = 38.0  # latent rise over the window; concave, so the window average is ~+0.2
TOP_ASK_THRESHOLD = 5000  # the default parent order: top-of-book liquidity below/above it matters
MAIN_PUBLISHER = 2
GZIP_LEVEL = 6  # level 9 saves ~5% size for 3-4x the time; tests regenerate the file

# Approximate 2024 taker fees ($/share); used only when allocator/data/venues.toml is absent.
FALLBACK_TAKER_FEES: dict[int, float] = {2: 0.0030, 43: 0.0030, 5: 0.0030, 8: 0.0030, 38: 0.0009, 3: 0.0}

_NS = 1_000_000_000
_SEP = ","
_NO_PX = -1  # internal "undefined price" (an empty level); written as an empty field
_KEEP_LEVELS = 16  # hidden depth behind the 10 shown, so a vanished top level shifts a real one in
_MAX_LEVELS_KEPT = 30
_MAX_HIDDEN_GAP = 4  # ticks between hidden levels at most


@dataclass(frozen=True)
class VenueSpec:
    """How one venue behaves; numbers are tuned so rates/spreads/sizes look like 2024 AAPL."""

    publisher_id: int
    name: str
    bg_rate: float  # background messages per second (latent-move reactions come on top)
    packet_mean: float  # mean messages per background burst (share ts_event or µs apart)
    react_ms: float  # mean delay before the venue reflects a latent move
    react_min_ms: float
    latency_us: float  # median ts_recv - ts_event
    tight_prob: float  # share of time a side quotes at the tight (1-tick-market) target
    occupancy: float  # probability that a tick behind the top holds a level
    mean_orders: float  # mean resting orders per level
    mix: tuple[float, float, float, float, float]  # background A, C, M, T, F probabilities
    take_prob: float  # a stale level is traded through (else cancelled)
    block_prob: float  # an add is a block of thousands of shares
    seq_start: int
    seq_gap: float  # mean sequence numbers used by other symbols between our packets


# Field order: publisher_id, name, bg_rate, packet_mean, react_ms, react_min_ms, latency_us,
# tight_prob, occupancy, mean_orders, mix (A, C, M, T, F), take_prob, block_prob, seq_start, seq_gap.
VENUES: tuple[VenueSpec, ...] = (
    VenueSpec(2, "Nasdaq", 78.0, 1.35, 0.6, 0.05, 170.0, 0.85, 0.85, 3.2,
              (0.44, 0.41, 0.05, 0.08, 0.02), 0.45, 0.0015, 45_112_807, 11.0),
    VenueSpec(43, "NYSE Arca", 26.0, 1.3, 3.0, 0.4, 260.0, 0.60, 0.70, 2.2,
              (0.45, 0.42, 0.04, 0.07, 0.02), 0.35, 0.0015, 187_420_116, 25.0),
    VenueSpec(5, "Cboe BZX", 23.0, 1.3, 1.8, 0.2, 120.0, 0.62, 0.70, 2.2,
              (0.45, 0.42, 0.04, 0.07, 0.02), 0.40, 0.0015, 98_305_442, 23.0),
    VenueSpec(8, "Cboe EDGX", 21.0, 1.3, 2.0, 0.2, 130.0, 0.55, 0.65, 2.0,
              (0.45, 0.42, 0.04, 0.07, 0.02), 0.35, 0.0015, 91_877_301, 23.0),
    VenueSpec(38, "IEX", 9.0, 1.2, 4.0, 0.4, 300.0, 0.80, 0.55, 1.6,
              (0.40, 0.38, 0.04, 0.08, 0.10), 0.30, 0.0012, 3_904_118, 40.0),
    VenueSpec(3, "Nasdaq BX", 13.0, 1.25, 2.5, 0.3, 180.0, 0.75, 0.55, 1.8,
              (0.45, 0.42, 0.04, 0.06, 0.03), 0.35, 0.0012, 12_650_904, 30.0),
)  # fmt: skip


# ----------------------------------------------------------------------------------------------
# time helpers


def _parse_clock(text: str, flag: str) -> float:
    """Seconds after midnight for "HH:MM:SS[.fff]"; a UserError names the flag otherwise."""
    try:
        hh, mm, ss = text.split(":")
        value = int(hh) * 3600 + int(mm) * 60 + float(ss)
    except ValueError as exc:
        raise UserError(f"{flag} {text!r}: expected HH:MM:SS (UTC), e.g. 13:36:32") from exc
    if not 0 <= value < 86400:
        raise UserError(f"{flag} {text!r}: time of day out of range")
    return value


def _midnight_ns(date: str) -> int:
    return int(pd.Timestamp(date, tz="UTC").value)


# ----------------------------------------------------------------------------------------------
# shared latent price and market activity


class _Uniforms:
    """Pre-drawn numpy uniforms handed out one by one: Generator scalar calls are ~30x slower."""

    def __init__(self, rng: np.random.Generator, batch: int = 1 << 18) -> None:
        self._rng = rng
        self._batch = batch
        self._buf: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        if self._i >= len(self._buf):
            self._buf = self._rng.random(self._batch).tolist()
            self._i = 0
        u = self._buf[self._i]
        self._i += 1
        return u

    def expo(self, mean: float) -> float:
        return -mean * math.log(1.0 - self())

    def randint(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi]."""
        return lo + int(self() * (hi - lo + 1))


def _trend_ticks(t: np.ndarray | float, t_pin: float, span: float) -> np.ndarray | float:
    """Concave rise over the window (fast early, like the trial file), gentler outside it."""
    k = 1.0
    u = (np.asarray(t, dtype=float) - t_pin) / span
    inside = (1.0 - np.exp(-k * np.clip(u, 0.0, 1.0))) / (1.0 - math.exp(-k))
    slope0 = k / (1.0 - math.exp(-k))
    slope1 = k * math.exp(-k) / (1.0 - math.exp(-k))
    before = 0.5 * slope0 * np.minimum(u, 0.0)
    after = slope1 * np.maximum(u - 1.0, 0.0)
    return TREND_RISE_TICKS * (inside + before + after)


def _activity(rng: np.random.Generator, n: int, dt: float, tau: float, sigma: float) -> np.ndarray:
    """Mean-one lognormal OU factor on a grid: message rates come in waves, not a flat Poisson."""
    phi = math.exp(-dt / tau)
    eps = rng.standard_normal(n) * sigma * math.sqrt(1.0 - phi * phi)
    x = np.empty(n)
    x[0] = rng.standard_normal() * sigma
    for i in range(1, n):
        x[i] = phi * x[i - 1] + eps[i]
    return np.exp(x - 0.5 * sigma * sigma)


def _latent_path(
    u: _Uniforms, t_lo: float, t_hi: float, t_pin: float, span: float, act: np.ndarray, grid: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Jump times (s after midnight) and the latent mid in half ticks after each jump.

    The mid lives on half ticks: an odd value is a 1-tick market, an even value a short-lived
    2-tick transition. It mean-reverts to the trend and is generated forward and backward from
    `t_pin`, where it is pinned, so the main venue's ask at the trial window's start is 222.83
    whatever [t_lo, t_hi] is. Returns (times, m2, m2_at_t_lo).
    """
    m2_pin = 2 * PIN_ASK_TICKS - 1
    base2 = m2_pin  # trend in half ticks relative to the pin
    width = 14.0  # half ticks of deviation at which reversion is strong
    rate_half, rate_int = 0.75, 4.0

    def act_at(t: float) -> float:
        i = min(max(int((t - t_lo) / grid), 0), len(act) - 1)
        return float(act[i])

    def trend2(t: float) -> float:
        return base2 + 2.0 * float(_trend_ticks(t, t_pin, span))

    def step() -> int:
        return 2 if u() < 0.08 else 1

    fwd_t: list[float] = []
    fwd_m: list[int] = []
    t, m, last = t_pin, m2_pin, 1
    while True:
        rate = (rate_half if m % 2 else rate_int) * act_at(t)
        t += u.expo(1.0 / rate)
        if t >= t_hi:
            break
        pull = (trend2(t) - m) / width
        if m % 2 == 0:
            pull += 0.5 * last
        up = u() < 0.5 + 0.5 * math.tanh(pull)
        s = 1 if m % 2 == 0 else step()
        last = 1 if up else -1
        m += last * s
        fwd_t.append(t)
        fwd_m.append(m)

    bwd_t: list[float] = []
    bwd_m: list[int] = []  # value AFTER the jump at bwd_t[i]
    t, m, last = t_pin, m2_pin, 1
    while True:
        # the state m held since the previous jump; its duration depends on its parity
        rate = (rate_half if m % 2 else rate_int) * act_at(t)
        t -= u.expo(1.0 / rate)
        if t <= t_lo:
            break
        pull = (m - trend2(t)) / width  # going back, move toward the trend
        if m % 2 == 0:
            pull += 0.5 * last
        down = u() < 0.5 + 0.5 * math.tanh(pull)
        s = 1 if m % 2 == 0 else step()
        bwd_t.append(t)
        bwd_m.append(m)
        last = 1 if down else -1
        m -= last * s
    m_lo = m
    times = np.array(bwd_t[::-1] + fwd_t, dtype=float)
    m2 = np.array(bwd_m[::-1] + fwd_m, dtype=np.int64)
    return times, m2, m_lo


# ----------------------------------------------------------------------------------------------
# one venue's book


class _VenueBook:
    """One venue's price-level book and the MBP-10 rows its messages produce.

    Levels are [price_ticks, size, count] lists, best first. Sizes are sums of resting orders,
    so size >= count and count == 0 <=> size == 0 always hold; orders themselves are not tracked.
    """

    def __init__(self, spec: VenueSpec, u: _Uniforms, m2: int) -> None:
        self.spec = spec
        self.u = u
        self.m2 = m2
        self.tight = [u() < spec.tight_prob, u() < spec.tight_prob]  # bid, ask
        self.bids: list[list[int]] = []
        self.asks: list[list[int]] = []
        self.last_ts = 0
        # output columns
        self.ts: list[int] = []
        self.action: list[str] = []
        self.side: list[str] = []
        self.depth: list[int] = []
        self.price: list[int] = []
        self.size: list[int] = []
        self.book: list[int] = []
        tb, ta = self.targets()
        self.bids.append(self.new_level(tb))
        self.asks.append(self.new_level(ta))
        self.replenish()

    # --- sizes -----------------------------------------------------------------------------
    def order_size(self) -> int:
        """Odd lots, round lots, mixed lots, and now and then a block of thousands of shares."""
        u = self.u
        r = u()
        if r < self.spec.block_prob:
            return u.randint(2000, 9600)
        if r < 0.33:
            return 1 + int(99 * u() ** 1.6)
        if r < 0.93:
            k = u()
            lots = 1 if k < 0.55 else 2 if k < 0.75 else 3 if k < 0.85 else 5 if k < 0.95 else 10
            return 100 * lots
        return 100 * u.randint(1, 4) + u.randint(1, 99)

    def quote_size(self) -> int:
        """A market maker's new quote at the touch: mostly round lots."""
        u = self.u
        r = u()
        if r < self.spec.block_prob:
            return u.randint(2000, 9600)
        if r < 0.15:
            return u.randint(10, 99)
        if r < 0.85:
            return 100 * u.randint(1, 5)
        return 100 * u.randint(1, 3) + u.randint(1, 99)

    def take_size(self) -> int:
        """Aggressor quantity of a background marketable order."""
        u = self.u
        r = u()
        if r < 0.45:
            return 1 + int(99 * u() ** 1.4)
        if r < 0.75:
            return 100
        if r < 0.95:
            return 100 * u.randint(2, 5)
        return 100 * u.randint(6, 20)

    def new_level(self, px: int) -> list[int]:
        count = 1
        while self.u() < 1.0 - 1.0 / self.spec.mean_orders and count < 12:
            count += 1
        return [px, sum(self.order_size() for _ in range(count)), count]

    # --- targets ---------------------------------------------------------------------------
    def targets(self) -> tuple[int, int]:
        """Where this venue wants its best bid/ask given the latent mid it knows about."""
        wb = 1 if self.tight[0] else 2
        wa = 1 if self.tight[1] else 2
        return (self.m2 - wb) // 2, -((-(self.m2 + wa)) // 2)

    def tight_targets(self) -> tuple[int, int]:
        """The tightest non-stale quotes: anything better is stale and gets removed."""
        return (self.m2 - 1) // 2, -((-(self.m2 + 1)) // 2)

    # --- recording -------------------------------------------------------------------------
    def emit(self, ts: int, action: str, side: str, depth: int, px: int, size: int) -> None:
        ts = max(ts, self.last_ts)
        self.last_ts = ts
        self.ts.append(ts)
        self.action.append(action)
        self.side.append(side)
        self.depth.append(depth)
        self.price.append(px)
        self.size.append(size)
        out = self.book
        bids, asks = self.bids, self.asks
        nb, na = len(bids), len(asks)
        for i in range(MAX_LEVELS):
            b = bids[i] if i < nb else None
            a = asks[i] if i < na else None
            out.append(b[0] if b else _NO_PX)
            out.append(a[0] if a else _NO_PX)
            out.append(b[1] if b else 0)
            out.append(a[1] if a else 0)
            out.append(b[2] if b else 0)
            out.append(a[2] if a else 0)

    # --- book operations (each emits one row) ----------------------------------------------
    def levels(self, is_bid: bool) -> list[list[int]]:
        return self.bids if is_bid else self.asks

    def add(self, ts: int, is_bid: bool, px: int, qty: int) -> None:
        book = self.levels(is_bid)
        if is_bid:
            assert not self.asks or px < self.asks[0][0], "bid add would cross the venue"
        else:
            assert not self.bids or px > self.bids[0][0], "ask add would cross the venue"
        i = 0
        while i < len(book) and (book[i][0] > px if is_bid else book[i][0] < px):
            i += 1
        if i < len(book) and book[i][0] == px:
            book[i][1] += qty
            book[i][2] += 1
        else:
            book.insert(i, [px, qty, 1])
        self.emit(ts, "A", "B" if is_bid else "A", i, px, qty)

    def front_order(self, level: list[int]) -> int:
        """Size of one resting order of a level (the remainder when it is the last one)."""
        size, count = level[1], level[2]
        if count == 1:
            return size
        cap = size - (count - 1)
        o = self.order_size()
        if o > cap or size - o < 5 * (count - 1):  # would leave dust behind: take a fair share
            o = max(1, size // count)
        return min(o, cap)

    def cancel(self, ts: int, is_bid: bool, i: int) -> None:
        book = self.levels(is_bid)
        level = book[i]
        px = level[0]
        q = self.front_order(level)
        level[1] -= q
        level[2] -= 1
        if level[2] == 0:
            del book[i]
        self.emit(ts, "C", "B" if is_bid else "A", i, px, q)

    def modify(self, ts: int, is_bid: bool, i: int) -> None:
        level = self.levels(is_bid)[i]
        old = self.front_order(level)
        new = max(1, min(self.order_size(), 2 * old + 100)) if self.u() < 0.5 else max(1, old // 2)
        level[1] += new - old
        self.emit(ts, "M", "B" if is_bid else "A", i, level[0], new)

    def trade(self, ts: int, buy: bool, qty: int, whole_level: bool) -> None:
        """A marketable order at the touch; one T row per resting order it fills."""
        book = self.asks if buy else self.bids
        if not book:
            return
        level = book[0]
        px = level[0]
        aggressor = "B" if buy else "A"
        while level[2] > 0 and (qty > 0 or whole_level):
            o = self.front_order(level)
            fill = o if whole_level else min(o, qty)
            qty -= fill
            level[1] -= fill
            if fill == o:
                level[2] -= 1
            if level[2] == 0:
                del book[0]
            side = "N" if self.u() < 0.03 else aggressor
            self.emit(ts, "T", side, 0, px, fill)

    def hidden_fill(self, ts: int) -> None:
        """Execution against non-displayed liquidity at the touch: aggressor unknown, book unchanged."""
        buy = self.u() < 0.5
        book = self.asks if buy else self.bids
        if book:
            self.emit(ts, "F", "N", 0, book[0][0], self.take_size())

    # --- maintenance -----------------------------------------------------------------------
    def replenish(self) -> None:
        """Keep hidden depth behind level 10 close behind it (no rows: MBP-10 does not show it).

        Hidden levels are rebuilt freely, so a level that shifts into view when a top level empties
        is always a plausible few ticks behind the old 10th level.
        """
        u, occ = self.u, self.spec.occupancy
        for book, direction in ((self.bids, -1), (self.asks, 1)):
            for i in range(MAX_LEVELS, len(book)):
                if abs(book[i][0] - book[i - 1][0]) > _MAX_HIDDEN_GAP:
                    del book[i:]
                    break
            while len(book) < _KEEP_LEVELS:
                gap = 1
                while u() > occ and gap < _MAX_HIDDEN_GAP:
                    gap += 1
                book.append(self.new_level(book[-1][0] + direction * gap))
            del book[_MAX_LEVELS_KEPT:]

    def pick_order_level(self, book: list[list[int]]) -> int:
        """Level of a random resting order among the shown ones, favouring the touch.

        Cancelling per order (not per level) keeps busy levels busy and lets thin far levels
        live long, so the shown depth neither thins out nor clumps.
        """
        n = min(MAX_LEVELS, len(book))
        weights = [book[i][2] / (1.0 + 0.2 * i) for i in range(n)]
        x = self.u() * sum(weights)
        for i, w in enumerate(weights):
            x -= w
            if x < 0:
                return i
        return n - 1

    def spread_ok_without_top(self, is_bid: bool) -> bool:
        book = self.levels(is_bid)
        if len(book) < 2 or not self.bids or not self.asks:
            return False
        if is_bid:
            return self.asks[0][0] - book[1][0] <= 3
        return book[1][0] - self.bids[0][0] <= 3

    def remove_stale(self, ts: int) -> int:
        """Take out quotes the latent price has moved through; returns the next free ts."""
        tb, ta = self.tight_targets()
        u = self.u
        for is_bid in (True, False):
            book = self.levels(is_bid)
            while book and (book[0][0] > tb if is_bid else book[0][0] < ta):
                if u() < self.spec.take_prob:
                    self.trade(ts, not is_bid, 0, whole_level=True)
                else:
                    while book and book[0][2] > 0 and (book[0][0] > tb if is_bid else book[0][0] < ta):
                        self.cancel(ts, is_bid, 0)
                        ts += 0 if u() < 0.5 else 1000 + int(u.expo(20_000))
                ts += 2000 + int(u.expo(40_000))
        return ts

    def improve(self, ts: int, is_bid: bool) -> int:
        """Join/lead at the target price on one side if the venue is behind it."""
        tb, ta = self.targets()
        u = self.u
        if is_bid and (not self.bids or self.bids[0][0] < tb):
            self.add(ts, True, tb, self.quote_size())
            ts += 1000 + int(u.expo(60_000))
        elif not is_bid and (not self.asks or self.asks[0][0] > ta):
            self.add(ts, False, ta, self.quote_size())
            ts += 1000 + int(u.expo(60_000))
        return ts

    def fix_spread(self, ts: int) -> int:
        """A venue never rests wider than 3 ticks for long: re-quote within microseconds."""
        while self.asks[0][0] - self.bids[0][0] > 3:
            tb, ta = self.targets()
            if self.bids[0][0] < tb:
                self.add(ts, True, tb, self.quote_size())
            else:
                self.add(ts, False, ta, self.quote_size())
            ts += 500 + int(self.u.expo(20_000))
        return ts

    # --- events ----------------------------------------------------------------------------
    def react(self, ts: int, m2: int) -> None:
        """The venue learns of a latent move: stale side traded/cancelled, then re-quoted."""
        self.m2 = m2
        ts = self.remove_stale(ts)
        first = self.u() < 0.5
        for is_bid in (first, not first):
            if self.u() < 0.9:
                ts = self.improve(ts, is_bid)
        self.fix_spread(ts)
        self.replenish()

    def background(self, ts: int) -> None:
        """One ordinary message: mostly adds/cancels near the top, some trades and modifies."""
        u, spec = self.u, self.spec
        # quoting style drifts: each side flips between tight and wide now and then
        for s in (0, 1):
            if u() < 0.02:
                self.tight[s] = u() < spec.tight_prob
        tb, ta = self.targets()
        behind_bid = self.bids[0][0] < tb
        behind_ask = self.asks[0][0] > ta
        if (behind_bid or behind_ask) and u() < 0.35:
            end = self.improve(ts, behind_bid and (not behind_ask or u() < 0.5))
            self.fix_spread(end)
            self.replenish()
            return
        r = u()
        a_p, c_p, m_p, t_p, _ = spec.mix
        is_bid = u() < 0.5
        book = self.levels(is_bid)
        depth = self.pick_order_level(book)
        if r < a_p:
            # orders are placed a few ticks behind the touch, which also refills empty ticks
            behind = min(int(u.expo(2.0)), 15) if u() < 0.55 else u.randint(0, 16)
            px = book[0][0] - behind if is_bid else book[0][0] + behind
            shown_last = book[min(MAX_LEVELS, len(book)) - 1][0]
            px = max(px, shown_last) if is_bid else min(px, shown_last)
            self.add(ts, is_bid, px, self.order_size())
        elif r < a_p + c_p:
            if depth == 0 and book[0][2] == 1 and not self.spread_ok_without_top(is_bid):
                depth = 1
            self.cancel(ts, is_bid, depth)
        elif r < a_p + c_p + m_p:
            self.modify(ts, is_bid, depth)
        elif r < a_p + c_p + m_p + t_p:
            self.trade(ts, u() < 0.5, self.take_size(), whole_level=False)
        else:
            self.hidden_fill(ts)
        self.fix_spread(ts + 500 + int(u.expo(30_000)))
        self.replenish()


# ----------------------------------------------------------------------------------------------
# generation


@dataclass
class _VenueRows:
    spec: VenueSpec
    ts_event: np.ndarray
    action: list[str]
    side: list[str]
    depth: np.ndarray
    price: np.ndarray
    size: np.ndarray
    book: np.ndarray  # (n, 60) in schema level order, prices in ticks (-1 = empty)


def _simulate_venue(
    spec: VenueSpec,
    rng: np.random.Generator,
    t_lo: float,
    t_hi: float,
    jumps: tuple[np.ndarray, np.ndarray, int],
    market_act: np.ndarray,
    grid: float,
) -> _VenueRows:
    """Run one venue through the window; venues interact only through the shared latent path."""
    u = _Uniforms(rng)
    jump_t, jump_m2, m2_lo = jumps
    n_bins = len(market_act)
    own_act = _activity(rng, n_bins, grid, tau=8.0, sigma=0.45)
    intensity = spec.bg_rate / spec.packet_mean * market_act**0.7 * own_act * grid
    counts = rng.poisson(intensity)
    bg_t = np.repeat(t_lo + np.arange(n_bins) * grid, counts) + rng.random(int(counts.sum())) * grid
    # a latent move also excites follow-up activity for a fraction of a second
    n_follow = rng.poisson(0.6, len(jump_t))
    follow_t = np.repeat(jump_t, n_follow) + rng.exponential(0.15, int(n_follow.sum()))
    bg_t = np.sort(np.concatenate([bg_t, follow_t[follow_t < t_hi]]))
    # reaction delays: mostly milliseconds, now and then a slow (stale) venue
    delay = spec.react_min_ms + rng.exponential(spec.react_ms, len(jump_t))
    slow = rng.random(len(jump_t)) < 0.03
    delay[slow] += rng.exponential(60.0, int(slow.sum()))
    react_t = np.maximum.accumulate(jump_t + delay / 1000.0)
    keep = react_t < t_hi
    react_t, react_m2 = react_t[keep], jump_m2[keep]

    times = np.concatenate([react_t, bg_t])
    kinds = np.concatenate([np.arange(len(react_t)), np.full(len(bg_t), -1)])
    order = np.argsort(times, kind="stable")
    times_ns = np.round((times[order] - t_lo) * _NS).astype(np.int64)
    kinds = kinds[order]

    book = _VenueBook(spec, u, m2_lo)
    for ts, k in zip(times_ns.tolist(), kinds.tolist(), strict=True):
        if k >= 0:
            book.react(ts, int(react_m2[k]))
            continue
        n = 1
        while u() < 1.0 - 1.0 / spec.packet_mean and n < 8:
            n += 1
        for _ in range(n):
            book.background(ts)
            if u() > 0.3:
                ts = book.last_ts + 300 + int(u.expo(15_000))
    ts_event = np.asarray(book.ts, dtype=np.int64)
    # a burst that started just before the end may spill a few µs past it: drop that tail
    n = int(np.searchsorted(ts_event, round((t_hi - t_lo) * _NS), side="left"))
    return _VenueRows(
        spec=spec,
        ts_event=ts_event[:n],
        action=book.action[:n],
        side=book.side[:n],
        depth=np.asarray(book.depth[:n], dtype=np.int64),
        price=np.asarray(book.price[:n], dtype=np.int64),
        size=np.asarray(book.size[:n], dtype=np.int64),
        book=np.asarray(book.book[: n * 6 * MAX_LEVELS], dtype=np.int64).reshape(n, 6 * MAX_LEVELS),
    )


def _stamp(rows: _VenueRows, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ts_recv, flags and sequence for one venue, as its feed handler would stamp them."""
    ts_event = rows.ts_event
    n = len(ts_event)
    new_event = np.r_[True, ts_event[1:] != ts_event[:-1]]
    event_id = np.cumsum(new_event) - 1
    lat = rows.spec.latency_us * 1000.0 * np.exp(0.25 * rng.standard_normal(int(new_event.sum())))
    spikes = rng.random(len(lat)) < 0.01
    lat[spikes] *= 1.0 + rng.exponential(2.0, int(spikes.sum()))
    raw = ts_event + np.round(lat[event_id]).astype(np.int64)
    # messages a few microseconds apart leave in one packet and share ts_recv
    close = np.r_[False, np.diff(ts_event) < 3000]
    start = np.maximum.accumulate(np.where(close, 0, np.arange(n)))
    ts_recv = np.maximum(raw[start], ts_event + 15_000)
    ts_recv = np.maximum.accumulate(ts_recv)
    last_in_packet = np.r_[ts_recv[1:] != ts_recv[:-1], True]
    flags = np.where(last_in_packet, 128, 0).astype(np.int64)
    same_packet = np.r_[False, ts_recv[1:] == ts_recv[:-1]]
    gaps = rng.geometric(1.0 / rows.spec.seq_gap, n)
    sequence = rows.spec.seq_start + np.cumsum(np.where(same_packet, 1, gaps))
    return ts_recv, flags, sequence


def generate(
    seed: int = DEFAULT_SEED,
    start: str = DEFAULT_START,
    end: str = DEFAULT_END,
    date: str = DEFAULT_DATE,
    venues: Sequence[VenueSpec] = VENUES,
) -> pd.DataFrame:
    """Generate the multi-venue MBP-10 rows for [start, end) UTC, sorted by ts_recv like an export.

    Deterministic in `seed` (and the other arguments): the latent path and each venue draw from
    their own child of one numpy SeedSequence, so windows and venue sets stay reproducible.
    """
    t_lo = _parse_clock(start, "--start")
    t_hi = _parse_clock(end, "--end")
    if t_hi <= t_lo:
        raise UserError(f"--end {end} must be after --start {start}")
    t_pin = _parse_clock(WINDOW_START, "window start")
    span = _parse_clock(WINDOW_END, "window end") - t_pin
    children = np.random.SeedSequence(seed).spawn(1 + len(venues))
    rng_latent = np.random.default_rng(children[0])
    grid = 0.01
    path_lo, path_hi = min(t_lo, t_pin), max(t_hi, t_pin)
    n_bins = math.ceil((path_hi - path_lo) / grid) + 1
    act_full = _activity(rng_latent, n_bins, grid, tau=20.0, sigma=0.35)
    jumps = _latent_path(_Uniforms(rng_latent), path_lo, path_hi, t_pin, span, act_full, grid)
    # restrict the path to the requested window; m2 at t_lo is the last value before it
    jt, jm, m_lo = jumps
    before = np.searchsorted(jt, t_lo, side="right")
    m2_lo = int(jm[before - 1]) if before > 0 else m_lo
    in_window = (jt > t_lo) & (jt < t_hi)
    venue_jumps = (jt[in_window], jm[in_window], m2_lo)
    off = round((t_lo - path_lo) / grid)
    market_act = act_full[off : off + math.ceil((t_hi - t_lo) / grid)]

    base_ns = _midnight_ns(date) + round(t_lo * _NS)
    parts: list[dict[str, np.ndarray]] = []
    for i, spec in enumerate(venues):
        rng_v = np.random.default_rng(children[1 + i])
        rows = _simulate_venue(spec, rng_v, t_lo, t_hi, venue_jumps, market_act, grid)
        ts_recv, flags, sequence = _stamp(rows, rng_v)
        parts.append(
            {
                "ts_recv": ts_recv + base_ns,
                "ts_event": rows.ts_event + base_ns,
                "publisher_id": np.full(len(rows.ts_event), spec.publisher_id, dtype=np.int64),
                "action": np.asarray(rows.action, dtype="U1"),
                "side": np.asarray(rows.side, dtype="U1"),
                "depth": rows.depth,
                "price": rows.price,
                "size": rows.size,
                "flags": flags,
                "sequence": sequence,
                "book": rows.book,
            }
        )
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.lexsort((cat["sequence"], cat["publisher_id"], cat["ts_recv"]))
    cat = {k: v[order] for k, v in cat.items()}
    n = len(order)

    def px(ticks: np.ndarray) -> np.ndarray:
        return np.where(ticks >= 0, ticks / 100.0, np.nan)

    cols: dict[str, object] = {
        "ts_recv": pd.to_datetime(cat["ts_recv"], unit="ns", utc=True),
        "ts_event": pd.to_datetime(cat["ts_event"], unit="ns", utc=True),
        "rtype": np.full(n, RTYPE_MBP10, dtype=np.int64),
        "publisher_id": cat["publisher_id"],
        "instrument_id": np.full(n, INSTRUMENT_ID, dtype=np.int64),
        "action": cat["action"],
        "side": cat["side"],
        "depth": cat["depth"],
        "price": px(cat["price"]),
        "size": cat["size"],
        "flags": cat["flags"],
        "ts_in_delta": cat["ts_recv"] - cat["ts_event"],
        "sequence": cat["sequence"],
    }
    book = cat["book"]
    for lvl in range(MAX_LEVELS):
        for j, field in enumerate(LEVEL_FIELDS):
            values = book[:, 6 * lvl + j]
            cols[level_column(field, lvl)] = px(values) if field.endswith("_px") else values
    cols["symbol"] = np.full(n, SYMBOL)
    df = pd.DataFrame(cols)
    assert tuple(df.columns) == MBP10_COLUMNS
    return df


# ----------------------------------------------------------------------------------------------
# writing


def _price_strings(values: np.ndarray) -> pa.Array:
    """Prices as the trial file writes them: shortest decimal ("222.8"), empty when undefined."""
    valid = ~np.isnan(values)
    ticks = np.where(valid, np.rint(np.nan_to_num(values) * 100.0), 0).astype(np.int64)
    uniq, inverse = np.unique(ticks, return_inverse=True)
    text = np.array([f"{t // 100}.{t % 100:02d}".rstrip("0").rstrip(".") for t in uniq.tolist()])
    return pa.array(text[inverse], type=pa.string(), mask=~valid)


def _ts_strings(series: pd.Series) -> pa.Array:
    """ISO-8601 UTC with exactly 9 fractional digits and a Z, e.g. 2024-08-01T13:36:32.491911683Z."""
    ns = pd.to_datetime(series, utc=True).array.asi8
    text = np.datetime_as_string(ns.view("datetime64[ns]"), unit="ns")
    return pa.array(np.char.add(text, "Z"), type=pa.string())


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    """The uncompressed CSV text of `df` in the Databento MBP-10 layout (vectorised, no row loop)."""
    missing = [c for c in MBP10_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"cannot write CSV: columns missing: {', '.join(missing[:5])}")
    arrays: list[pa.Array] = []
    for col in MBP10_COLUMNS:
        s = df[col]
        if col in ("ts_recv", "ts_event"):
            arrays.append(_ts_strings(s))
        elif col == "price" or col.startswith(("bid_px_", "ask_px_")):
            arrays.append(_price_strings(s.to_numpy(dtype=float, na_value=np.nan)))
        elif col in ("action", "side", "symbol"):
            arrays.append(pa.array(s.astype(str).to_numpy(), type=pa.string()))
        else:
            arrays.append(pa.array(s.to_numpy(dtype=np.int64)))
    table = pa.Table.from_arrays(arrays, names=list(MBP10_COLUMNS))
    sink = pa.BufferOutputStream()
    # pyarrow quotes header names even with quoting_style="none"; the export does not
    sink.write((_SEP.join(MBP10_COLUMNS) + "\n").encode())
    pacsv.write_csv(
        table, sink, pacsv.WriteOptions(include_header=False, quoting_style="none", batch_size=65536)
    )
    return sink.getvalue().to_pybytes()


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """Write `df` as CSV; a .gz path gets a reproducible gzip header (mtime 0, no file name)."""
    path = Path(path)
    data = to_csv_bytes(df)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with (
            open(path, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL) as gz,
        ):
            gz.write(data)
    else:
        path.write_bytes(data)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, to check the shipped dataset against a fresh generation."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------
# reading and statistics


def read_mbp_csv(path: str | Path) -> pd.DataFrame:
    """Read an MBP CSV (plain or .gz) for statistics; the project's loader is allocator.data."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    ts_type = pa.timestamp("ns", tz="UTC")
    types = {"ts_recv": ts_type, "ts_event": ts_type, "action": pa.string(), "side": pa.string()}
    for lvl in range(MAX_LEVELS):
        types[level_column("bid_px", lvl)] = pa.float64()
        types[level_column("ask_px", lvl)] = pa.float64()
    types["price"] = pa.float64()
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"{path}: not a readable MBP CSV ({str(exc).splitlines()[0]})") from exc
    return table.to_pandas()


def load_taker_fees(path: Path | None = None) -> dict[int, float]:
    """Taker fees by publisher id from the project's fee table (allocator/data/venues.toml).

    Falls back to typical 2024 fees only when the table file is missing, so `--stats` still works
    on a bare checkout.
    """
    path = path or DEFAULT_VENUES_FILE
    if not Path(path).exists():
        return dict(FALLBACK_TAKER_FEES)
    table = load_fee_table(path)
    fees = {pid: info.taker_fee for pid, info in table.venues.items()}
    for pid in FALLBACK_TAKER_FEES:
        fees.setdefault(pid, table.default.taker_fee)
    return fees


def _snapshots(df: pd.DataFrame) -> pd.DataFrame:
    """What the router sees: the first row per (ts_event, publisher_id), stably sorted by ts_event."""
    first = ~df.duplicated(subset=["ts_event", "publisher_id"], keep="first")
    snap = df.loc[first]
    return snap.sort_values("ts_event", kind="stable").reset_index(drop=True)


def _consolidated(snap: pd.DataFrame, fees: dict[int, float]) -> dict[str, float]:
    """Per-tick cross-venue facts from each venue's latest snapshot (ticks after all venues quoted)."""
    pubs = sorted(snap["publisher_id"].unique().tolist())
    n = len(snap)
    pid = snap["publisher_id"].to_numpy()
    ask = np.full((n, len(pubs)), np.nan)
    bid = np.full((n, len(pubs)), np.nan)
    asz = np.full((n, len(pubs)), np.nan)
    for j, p in enumerate(pubs):
        mine = pid == p
        for arr, col in ((ask, "ask_px_00"), (bid, "bid_px_00"), (asz, "ask_sz_00")):
            arr[mine, j] = snap[col].to_numpy(dtype=float)[mine]
            arr[:, j] = pd.Series(arr[:, j]).ffill().to_numpy()
    ready = ~np.isnan(ask).any(axis=1) & ~np.isnan(bid).any(axis=1)
    ask, bid, asz = ask[ready], bid[ready], asz[ready]
    nbo = ask.min(axis=1)
    nbb = bid.max(axis=1)
    fee = np.array([fees.get(p, 0.003) for p in pubs])
    by_ask = ask.argmin(axis=1)  # ties go to the lowest publisher id
    by_cost = (ask + fee).argmin(axis=1)
    top = asz.sum(axis=1)
    ticks = int(ready.sum())
    return {
        "ticks": ticks,
        "locked_or_crossed_share": float((nbb >= nbo - 1e-9).mean()) if ticks else float("nan"),
        "crossed_ticks": int((nbb > nbo + 1e-9).sum()),
        "top_ask_below_threshold_share": float((top < TOP_ASK_THRESHOLD).mean()) if ticks else float("nan"),
        "top_ask_total_p5": float(np.percentile(top, 5)) if ticks else float("nan"),
        "top_ask_total_p50": float(np.percentile(top, 50)) if ticks else float("nan"),
        "top_ask_total_p95": float(np.percentile(top, 95)) if ticks else float("nan"),
        "cheapest_fee_differs_ticks": int((by_ask != by_cost).sum()),
        "nbbo_spread_p50_ticks": float(np.percentile((nbo - nbb) / TICK, 50)) if ticks else float("nan"),
    }


def describe(df: pd.DataFrame, fees: dict[int, float] | None = None) -> dict[str, object]:
    """Measured statistics of an MBP-10 frame: the numbers data/README.md quotes."""
    fees = load_taker_fees() if fees is None else fees
    ts_event = pd.to_datetime(df["ts_event"], utc=True)
    ts_recv = pd.to_datetime(df["ts_recv"], utc=True)
    ev = ts_event.array.asi8
    out: dict[str, object] = {
        "rows": len(df),
        "distinct_ts_event": int(pd.Series(ev).nunique()),
        "first_ts_event": str(ts_event.min()),
        "last_ts_event": str(ts_event.max()),
        "ts_recv_sorted": bool((np.diff(ts_recv.array.asi8) >= 0).all()),
        "ts_event_out_of_order_rows": int((np.diff(ev) < 0).sum()),
        "price_min": float(df[["bid_px_00", "ask_px_00"]].min().min()),
        "price_max": float(df[["bid_px_00", "ask_px_00"]].max().max()),
        "actions": {k: int(v) for k, v in df["action"].value_counts().sort_index().items()},
        "sides": {k: int(v) for k, v in df["side"].value_counts().sort_index().items()},
    }
    duration = (ev.max() - ev.min()) / _NS if len(df) > 1 else float("nan")
    venues: dict[int, dict[str, float]] = {}
    for pid_, g in df.groupby("publisher_id", sort=True):
        spread = ((g["ask_px_00"] - g["bid_px_00"]) / TICK).round().to_numpy()
        secs = pd.to_datetime(g["ts_event"], utc=True).array.asi8 // _NS
        per_sec = np.bincount(secs - secs.min()) if len(secs) else np.zeros(1)
        top = g["ask_sz_00"].to_numpy()
        venues[int(pid_)] = {
            "rows": len(g),
            "msg_per_s": len(g) / duration,
            "msg_per_s_p95": float(np.percentile(per_sec, 95)),
            "spread_p5": float(np.percentile(spread, 5)),
            "spread_p50": float(np.percentile(spread, 50)),
            "spread_p95": float(np.percentile(spread, 95)),
            "spread_1_to_3_share": float(((spread >= 1) & (spread <= 3)).mean()),
            "top_ask_sz_p5": float(np.percentile(top, 5)),
            "top_ask_sz_p50": float(np.percentile(top, 50)),
            "top_ask_sz_p95": float(np.percentile(top, 95)),
            "top_ask_sz_max": float(top.max()),
        }
    out["venues"] = venues
    snap = _snapshots(df)
    out["snapshots"] = len(snap)
    out.update(_consolidated(snap, fees))
    # "buy evenly over the trial window": the main venue's best ask on a 1-second grid
    main = snap[snap["publisher_id"] == MAIN_PUBLISHER]
    if len(main):
        day = _midnight_ns(str(ts_event.iloc[0].date()))
        grid = day + np.round(
            np.arange(_parse_clock(WINDOW_START, "w"), _parse_clock(WINDOW_END, "w"), 1.0) * _NS
        ).astype(np.int64)
        mev = pd.to_datetime(main["ts_event"], utc=True).array.asi8
        idx = np.searchsorted(mev, grid, side="right") - 1
        ok = idx >= 0
        asks = main["ask_px_00"].to_numpy()[idx[ok]]
        out["main_first_ask_in_window"] = float(asks[0]) if len(asks) else float("nan")
        out["main_avg_ask_in_window"] = float(asks.mean()) if len(asks) else float("nan")
        out["main_last_ask_in_window"] = float(asks[-1]) if len(asks) else float("nan")
    return out


def stats_markdown(stats: dict[str, object], names: dict[int, str] | None = None) -> str:
    """The statistics as the Markdown tables pasted into data/README.md."""
    names = names or {v.publisher_id: v.name for v in VENUES}
    venues: dict[int, dict[str, float]] = stats["venues"]  # type: ignore[assignment]
    lines = [
        "| venue (publisher_id) | rows | msg/s | msg/s p95 (1 s bins) | spread p5/p50/p95 (ticks) "
        "| rows with spread 1-3 ticks | top ask size p5/p50/p95 | top ask size max |",
        "|---|---:|---:|---:|---|---:|---|---:|",
    ]
    for pid_, v in venues.items():
        lines.append(
            f"| {names.get(pid_, '?')} ({pid_}) | {v['rows']:,} | {v['msg_per_s']:.1f} | "
            f"{v['msg_per_s_p95']:.0f} | {v['spread_p5']:.0f} / {v['spread_p50']:.0f} / "
            f"{v['spread_p95']:.0f} | {100 * v['spread_1_to_3_share']:.2f}% | "
            f"{v['top_ask_sz_p5']:.0f} / {v['top_ask_sz_p50']:.0f} / {v['top_ask_sz_p95']:.0f} | "
            f"{v['top_ask_sz_max']:,.0f} |"
        )
    actions = ", ".join(f"{k} {n:,}" for k, n in stats["actions"].items())  # type: ignore[union-attr]
    sides = ", ".join(f"{k} {n:,}" for k, n in stats["sides"].items())  # type: ignore[union-attr]
    rows = [
        ("rows", f"{stats['rows']:,}"),
        ("distinct ts_event", f"{stats['distinct_ts_event']:,}"),
        ("snapshots (first row per ts_event, publisher_id)", f"{stats['snapshots']:,}"),
        ("ts_event range", f"{stats['first_ts_event']} … {stats['last_ts_event']}"),
        ("rows sorted by ts_recv", str(stats["ts_recv_sorted"])),
        (
            "rows whose ts_event is earlier than the previous row's",
            f"{stats['ts_event_out_of_order_rows']:,}",
        ),
        ("actions", actions),
        ("sides", sides),
        ("price range (best bid/ask, all venues)", f"{stats['price_min']:.2f} … {stats['price_max']:.2f}"),
        ("main venue best ask at 13:36:32.5", f"{stats.get('main_first_ask_in_window', float('nan')):.2f}"),
        (
            "main venue best ask averaged over 13:36:32.5–13:45:15 (1 s grid)",
            f"{stats.get('main_avg_ask_in_window', float('nan')):.3f}",
        ),
        ("main venue best ask at 13:45:14.5", f"{stats.get('main_last_ask_in_window', float('nan')):.2f}"),
        ("ticks with all venues quoted", f"{stats['ticks']:,}"),
        ("share of ticks with NBBO locked or crossed", f"{100 * stats['locked_or_crossed_share']:.2f}%"),
        ("ticks with NBBO crossed", f"{stats['crossed_ticks']:,}"),
        ("NBBO spread p50 (ticks)", f"{stats['nbbo_spread_p50_ticks']:.0f}"),
        (
            "consolidated top ask size (sum of ask_sz_00) p5/p50/p95",
            f"{stats['top_ask_total_p5']:,.0f} / {stats['top_ask_total_p50']:,.0f} / "
            f"{stats['top_ask_total_p95']:,.0f}",
        ),
        (
            f"share of ticks with consolidated top ask size < {TOP_ASK_THRESHOLD:,}",
            f"{100 * stats['top_ask_below_threshold_share']:.1f}%",
        ),
        (
            "ticks where cheapest venue by ask+taker fee ≠ by ask alone",
            f"{stats['cheapest_fee_differs_ticks']:,}",
        ),
    ]
    summary = ["| statistic | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows]]
    return "\n".join([*summary, "", *lines])


# ----------------------------------------------------------------------------------------------
# CLI


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m allocator.synth",
        description="Generate the synthetic multi-venue MBP-10 dataset, or print statistics of one.",
    )
    p.add_argument("--out", help="output CSV path (.csv.gz for reproducible gzip)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"RNG seed (default {DEFAULT_SEED})")
    p.add_argument("--start", default=DEFAULT_START, help=f"UTC HH:MM:SS (default {DEFAULT_START})")
    p.add_argument("--end", default=DEFAULT_END, help=f"UTC HH:MM:SS (default {DEFAULT_END})")
    p.add_argument("--date", default=DEFAULT_DATE, help=f"trade date (default {DEFAULT_DATE})")
    p.add_argument("--stats", metavar="CSV", help="print the README statistics table of an MBP CSV")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        if args.stats:
            print(stats_markdown(describe(read_mbp_csv(args.stats))))
            return 0
        if not args.out:
            raise UserError("give --out PATH to generate, or --stats PATH to describe a file")
        t0 = time.perf_counter()
        df = generate(seed=args.seed, start=args.start, end=args.end, date=args.date)
        t1 = time.perf_counter()
        write_csv(df, args.out)
        t2 = time.perf_counter()
        print(
            f"{args.out}: {len(df):,} rows, {Path(args.out).stat().st_size / 1e6:.2f} MB, "
            f"sha256 {sha256_file(args.out)} (generate {t1 - t0:.1f} s, write {t2 - t1:.1f} s)"
        )
        return 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "DEFAULT_SEED",
    "VENUES",
    "VenueSpec",
    "describe",
    "generate",
    "load_taker_fees",
    "read_mbp_csv",
    "sha256_file",
    "stats_markdown",
    "to_csv_bytes",
    "write_csv",
]
