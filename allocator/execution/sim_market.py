"""The realistic mode's market: every venue's message stream, the common arrival of every strategy, what the
router could observe at a decision, and the session steps every simulated strategy shares (clean-up, and
turning a simulator ledger into an Execution).

ξ is measured consistently with the queue model: when cancellations advance a queue (the probabilistic model)
the outflow counts them at the best posting level as well as the traded volume; otherwise only trades.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from allocator.allocation.outflow import block_bootstrap, block_length, increment_step, increment_times
from allocator.allocation.policy import Decision
from allocator.config import SimSettings
from allocator.data.window import NS_PER_SECOND, format_ns
from allocator.execution.book import Book, GrowingArray, VenueStream
from allocator.execution.faithful import Execution, Market
from allocator.execution.models import PerShareFees, QueueModel
from allocator.execution.simulator import Ledger, Simulator, split_decrease
from allocator.snapshots.rule import Snapshots

PRICE_DECIMALS = 9


@dataclass(frozen=True)
class Arrival:
    """When every strategy starts: the window start, or later by the same delay for all when the data holds
    less than `warmup` of history before it (the router needs some outflow history to decide)."""

    ts_ns: int
    window_start_ns: int
    history_start_ns: int  # the earliest row the outflow estimator may use (window start − lookback at most)

    @property
    def delay_ns(self) -> int:
        return self.ts_ns - self.window_start_ns

    @property
    def history_seconds(self) -> float:
        """History seen before the window (what the file held, up to the lookback)."""
        return max(self.window_start_ns - self.history_start_ns, 0) / NS_PER_SECOND

    def report(self) -> dict[str, Any]:
        return {
            "ts": format_ns(self.ts_ns),
            "window_start": format_ns(self.window_start_ns),
            "delay_seconds": self.delay_ns / NS_PER_SECOND,
            "history_seconds_before_window": self.history_seconds,
            "note": (
                None
                if self.delay_ns == 0
                else "the data holds too little history before the window, so every strategy (router and "
                "baselines) arrives this much later, after observing the delay's rows"
            ),
        }


def common_arrival(window_start_ns: int, first_row_ns: int | None, settings: SimSettings) -> Arrival:
    """The one arrival of every strategy: at the window start when `warmup` of history precedes it."""
    history_start = window_start_ns if first_row_ns is None else min(int(first_row_ns), window_start_ns)
    history_start = max(history_start, window_start_ns - settings.calibration_ns)
    have = window_start_ns - history_start
    # The estimator never looks back further than the calibration lookback, so waiting for more than
    # that buys nothing: the need is the warmup, capped at the lookback.
    need = min(settings.warmup_ns, settings.calibration_ns)
    delay = max(need - have, 0)
    return Arrival(window_start_ns + delay, window_start_ns, history_start)


@dataclass(frozen=True)
class SimMarket:
    """The faithful Market (snapshots and fees) plus the full message streams and the model settings."""

    market: Market
    book: Book
    settings: SimSettings
    tick_seen: np.ndarray  # int64 [T]: when each snapshot tick could be known (its rows' latest ts_seen)
    outflow: list[np.ndarray]  # per venue, cumulative queue outflow at the best posting level, per row
    arrival_mid: float | None  # cost-space consolidated mid seen at the arrival: the benchmark price
    arrival: Arrival
    # Observations by (time, our depletion state): grid points that reach the same state at the same time
    # (all of them at the arrival) share the quote and the outflow samples instead of recomputing them.
    observations: dict = field(default_factory=dict, compare=False, repr=False)

    def observe(self, sim: Simulator, t: int, horizon_ns: int | None = None) -> Observation | None:
        key = (t, horizon_ns, sim.depletion.state())
        if key not in self.observations:
            self.observations[key] = observe(self, sim, t, horizon_ns)
        return self.observations[key]

    def simulator(self, seed_offset: int = 0) -> Simulator:
        return Simulator(
            self.book,
            PerShareFees(self.market.taker_fee, self.market.maker_rebate),
            self.settings.latency,
            self.settings.queue,
            seed=self.settings.seed + seed_offset,
        )

    @property
    def arrival_ns(self) -> int:
        return self.arrival.ts_ns

    @property
    def cleanup_time(self) -> int:
        """When strategies send their clean-up: one round trip after the window closes, so every fill of
        an order cancelled at the close has been reported."""
        return self.market.window_end_ns + 2 * self.settings.latency.max_ns


def cumulative_outflow(stream: VenueStream, queue_model: QueueModel) -> np.ndarray:
    """Cumulative shares that left the best posting level by row (see OutflowMeter)."""
    meter = OutflowMeter(queue_model)
    meter.extend(stream)
    return meter.cumulative.view()


class OutflowMeter:
    """One venue's cumulative queue outflow at the best posting level, row by row, extended as the stream
    grows: traded volume, plus (probabilistic model) the level's decreases that the printed trades do not
    explain, matched exactly as the simulator matches them (`split_decrease`), so the router's ξ and its
    fills measure the same thing. Shares are whole numbers, so the float sums are exact whatever the
    appends."""

    def __init__(self, queue_model: QueueModel) -> None:
        self.cancels_advance = queue_model.cancels_advance
        self.cumulative = GrowingArray(np.float64)
        self.pending = 0.0
        self.previous = -1  # the last row where the best level or a trade changed
        self.total = 0.0

    def extend(self, stream: VenueStream) -> None:
        """Take in the stream's rows after those already measured."""
        start = self.cumulative.n
        if start >= stream.rows:
            return
        out = stream.hit_sz[start:].astype(np.float64)
        if self.cancels_advance:
            interesting = stream.interesting[np.searchsorted(stream.interesting, start) :]
            pending, previous = self.pending, self.previous
            for r in interesting.tolist():
                traded = float(stream.hit_sz[r]) if stream.hit_px[r] == stream.post_px[r] else 0.0
                if previous >= 0 and stream.post_px[r] == stream.post_px[previous]:
                    drop = float(stream.post_sz[previous] - stream.post_sz[r])
                    cancelled, pending = split_decrease(drop, pending, traded)
                    out[r - start] += cancelled
                else:
                    pending = traded
                previous = r
            self.pending, self.previous = pending, previous
        cumulative = np.cumsum(out)
        cumulative += self.total
        self.cumulative.reserve(len(out))
        self.cumulative.put(cumulative)
        self.total = float(cumulative[-1])


def outflow_increments(
    sim_market: SimMarket, venues: list[int], t: int, horizon_ns: int | None = None
) -> np.ndarray:
    """Per-interval outflow (m, K) at each venue over the history before t, from rows seen by t only;
    the intervals divide `horizon_ns` (default: the settings' horizon)."""
    settings = sim_market.settings
    step, _ = increment_step(horizon_ns or settings.horizon_ns)
    edges = increment_times(t, sim_market.arrival.history_start_ns, step, settings.calibration_ns)
    out = np.empty((max(len(edges) - 1, 0), len(venues)))
    for k, v in enumerate(venues):
        cum = _cum_at(sim_market.book.streams[v], sim_market.outflow[v], edges)
        out[:, k] = np.diff(cum)
    return out


def outflow_samples(
    sim_market: SimMarket, venues: list[int], t: int, horizon_ns: int | None = None
) -> np.ndarray:
    """ξ samples (n, K) for a decision at t: the block bootstrap of allocator.allocation.outflow over the history seen
    by t. Seeded by (seed, t), so every grid point deciding at t sees the same samples (common random
    numbers: grid differences are the parameters', not the sampler's). `horizon_ns` is how long the
    orders will rest (the last decision's is cut by the window end). No history yet: ξ = 0."""
    settings = sim_market.settings
    horizon_ns = horizon_ns or settings.horizon_ns
    increments = outflow_increments(sim_market, venues, t, horizon_ns)
    if increments.shape[0] == 0:
        return np.zeros((1, len(venues)))
    step, per_horizon = increment_step(horizon_ns)
    rng = np.random.default_rng([settings.seed, t])
    return block_bootstrap(increments, per_horizon, settings.outflow_samples, block_length(step), rng)


def _cum_at(stream: VenueStream, cum: np.ndarray, times: np.ndarray) -> np.ndarray:
    rows = np.searchsorted(stream.ts_seen, times, side="right") - 1
    return np.where(rows >= 0, cum[np.clip(rows, 0, None)], 0.0)


@dataclass(frozen=True)
class SeenBook:
    """What the router sees at a decision: per venue best take / post prices and sizes (cost space)."""

    take_px: np.ndarray
    take_sz: np.ndarray
    post_px: np.ndarray
    post_sz: np.ndarray


def seen_book(sim: Simulator, t: int) -> SeenBook:
    n = len(sim.book.streams)
    take_px, post_px = np.full(n, np.nan), np.full(n, np.nan)
    take_sz, post_sz = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for v, stream in enumerate(sim.book.streams):
        row = stream.row_seen(t)
        if row < 0:
            continue
        prices, sizes = sim.seen_take_levels(v, t)
        live = np.flatnonzero((sizes > 0) & np.isfinite(prices))
        if live.size:
            take_px[v], take_sz[v] = prices[live[0]], sizes[live[0]]
        post_px[v], post_sz[v] = stream.post_px[row], stream.post_sz[row]
    return SeenBook(take_px, take_sz, post_px, post_sz)


@dataclass(frozen=True)
class Observation:
    """What the router knows at a decision: the quote it sees and, for the venues it may post at, the
    model's market inputs (everything in Params except the grid's penalties) and the outflow samples."""

    t: int
    book: SeenBook
    market_venue: int  # cheapest ask + fee: where M goes first, and whose fee is f
    limit_venues: list[int]  # venues quoting the best posting price (below the best ask)
    post_px: float | None
    half_spread: float
    samples: np.ndarray  # (n, K) outflow samples, all seen before t

    @property
    def mid(self) -> float | None:
        """The consolidated cost-space mid seen at t (best take and best posting price)."""
        if self.post_px is None:
            return None
        return round((float(np.nanmin(self.book.take_px)) + self.post_px) / 2, PRICE_DECIMALS)


def observe(
    sim_market: SimMarket, sim: Simulator, t: int, horizon_ns: int | None = None
) -> Observation | None:
    """The decision inputs at time t for orders resting `horizon_ns` (default: the settings' horizon),
    from rows seen by t only; None when no venue offers anything."""
    market = sim_market.market
    book = seen_book(sim, t)
    if not np.isfinite(book.take_px).any():
        return None
    all_in = np.where(np.isfinite(book.take_px), book.take_px + market.taker_fee, np.inf)
    best_take = float(np.nanmin(book.take_px))
    postable = np.isfinite(book.post_px) & (book.post_sz > 0) & (book.post_px < best_take)
    limit_venues: list[int] = []
    h, best_post = 0.0, None
    if postable.any():
        best_post = float(np.max(book.post_px[postable]))
        limit_venues = [int(v) for v in np.flatnonzero(postable & (book.post_px == best_post))]
        # Prices live on Databento's 1e-9 grid, so the half-spread does too; rounding removes the float noise
        # of the subtraction (which differs between a market and its mirror image).
        h = round((best_take - best_post) / 2, PRICE_DECIMALS)
    samples = outflow_samples(sim_market, limit_venues, t, horizon_ns) if limit_venues else np.zeros((1, 0))
    return Observation(t, book, int(np.argmin(all_in)), limit_venues, best_post, h, samples)


def cleanup(sim_market: SimMarket, sim: Simulator, order_size: int) -> None:
    """Buy whatever is missing at the close, marketable across venues' depth, priced like any taker order."""
    missing = order_size - sim.ledger.filled()
    if missing > 0:
        sim.sweep(sim_market.cleanup_time, missing, kind="cleanup")


def to_execution(
    ledger: Ledger, name: str, order_size: int, sim_market: SimMarket, decisions: list[Decision]
) -> Execution:
    """Ledger → Execution in time order, with `tick` the snapshot in force at each fill (for the ledger CSV)
    and the arrival mid as the price at which extra or missing shares are valued."""
    market = sim_market.market
    ts = np.asarray(ledger.ts, dtype=np.int64)
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    tick = np.clip(np.searchsorted(market.snapshots.ts_event, ts, side="right") - 1, 0, None)
    return Execution(
        name=name,
        order_size=order_size,
        tick=tick.astype(np.int64),
        venue=np.asarray(ledger.venue, dtype=np.int64)[order],
        price=np.asarray(ledger.price, dtype=np.float64)[order],
        shares=np.asarray(ledger.shares, dtype=np.int64)[order],
        fee=np.asarray(ledger.fee, dtype=np.float64)[order],
        rebate=np.asarray(ledger.rebate, dtype=np.float64)[order],
        side=market.snapshots.side,
        ts=ts,
        kind=np.asarray(ledger.kind, dtype="<U7")[order],
        queue_ahead=np.asarray(ledger.queue_ahead, dtype=np.float64)[order],
        order_id=np.asarray(ledger.order_id, dtype=np.int64)[order],
        decisions=decisions,
        mark_px=sim_market.arrival_mid,
    )


def tick_seen_times(frame_ts_event: np.ndarray, frame_ts_seen: np.ndarray, tick_ts: np.ndarray) -> np.ndarray:
    """When each snapshot tick becomes known: the latest ts_seen among rows up to and including it."""
    seen = np.full(len(tick_ts), np.iinfo(np.int64).min, dtype=np.int64)
    tick_of = np.searchsorted(tick_ts, frame_ts_event)
    np.maximum.at(seen, tick_of, frame_ts_seen)
    return np.maximum.accumulate(np.maximum(seen, tick_ts))


def build_sim_market(
    snapshots: Snapshots,
    taker_fee: np.ndarray,
    maker_rebate: np.ndarray,
    window: tuple[int, int],
    book: Book,
    frame_ts_event: np.ndarray,
    frame_ts_recv: np.ndarray,
    settings: SimSettings,
) -> SimMarket:
    """The realistic mode's market from snapshots and streams over history + window rows.

    The snapshots keep the tick in force at the arrival and every later one, so the baselines start from
    the same seen state as the router; earlier ticks (history) are used only through the outflow
    estimator, never traded against."""
    seen = np.maximum(frame_ts_recv, frame_ts_event)
    tick_seen = tick_seen_times(frame_ts_event, seen, snapshots.ts_event)
    first_row = int(frame_ts_event.min()) if len(frame_ts_event) else None
    arrival = common_arrival(window[0], first_row, settings)
    first_tick = max(int(np.searchsorted(tick_seen, arrival.ts_ns, side="right")) - 1, 0)
    market = Market(snapshots.since(first_tick), taker_fee, maker_rebate, window[0], window[1])
    outflow = [cumulative_outflow(s, settings.queue) for s in book.streams]
    sim_market = SimMarket(
        market=market,
        book=book,
        settings=settings,
        tick_seen=tick_seen[first_tick:],
        outflow=outflow,
        arrival_mid=None,
        arrival=arrival,
    )
    return dataclasses.replace(sim_market, arrival_mid=arrival_mid(sim_market))


def arrival_mid(sim_market: SimMarket) -> float | None:
    """Cost-space mid of the consolidated best prices seen at the arrival: the arrival price benchmark."""
    return mid_seen_at(sim_market, sim_market.arrival_ns)


def mid_seen_at(sim_market: SimMarket, t: int) -> float | None:
    """Cost-space mid of the consolidated best prices seen at t (None while either side is empty)."""
    quote = seen_book(sim_market.simulator(), t)
    if not (np.isfinite(quote.take_px).any() and np.isfinite(quote.post_px).any()):
        return None
    return round(float((np.nanmin(quote.take_px) + np.nanmax(quote.post_px)) / 2), PRICE_DECIMALS)
