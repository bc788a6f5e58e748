"""Execution records and the faithful backtest of the router.

An `Execution` is what one strategy did: its child fills (tick, venue, price, shares, fee) and the
totals the report is made of. Every strategy — the router and each baseline — produces one, so the
report's arithmetic (cash, average price, unfilled shares) lives in one place.

The faithful backtest follows the specification literally: at each snapshot allocate the remaining
quantity with the spec's allocator, execute min(split_i, ask_size_i) at ask_i (+ fee_i), roll the rest
forward. Because the spec only accepts splits that sum exactly to the order, the router *waits* at every
snapshot whose displayed size (in whole steps) cannot cover the remainder; those ticks are counted.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from allocator.allocation.penalties import Penalties
from allocator.allocation.static import Quote, allocate

if TYPE_CHECKING:
    from allocator.allocation.policy import Decision
from allocator.snapshots.rule import Snapshots
from allocator.snapshots.side import Side


@dataclass(frozen=True)
class Market:
    """The snapshots plus per-venue fees: everything a strategy may look at, as arrays."""

    snapshots: Snapshots
    taker_fee: np.ndarray  # float64 [V] $/share paid to take
    maker_rebate: np.ndarray  # float64 [V] $/share earned to add (negative on inverted venues)
    window_start_ns: int
    window_end_ns: int
    # Per-tick arrays derived from the snapshots that every grid point (or baseline) of a run needs, kept
    # once per run: recomputing the step capacity per point was 56 % of a full day's faithful run.
    _derived: dict[Hashable, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def derived(self, key: Hashable, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """`compute()` the first time `key` is asked for, the kept array afterwards."""
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    def capacity(self, step: int) -> np.ndarray:
        """`step_capacity` of these snapshots."""
        return self.derived(("step_capacity", step), lambda: step_capacity(self.snapshots.take_sz, step))


@dataclass
class Execution:
    """Child fills of one strategy, as parallel arrays, and the totals derived from them."""

    name: str
    order_size: int
    tick: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    venue: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    price: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    shares: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    fee: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))  # $/share paid (taker fee)
    rebate: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))  # $ earned per fill
    ticks_waited: int = 0
    side: Side = "buy"  # prices above are in cost space (allocator.snapshots.side): −price for a sell
    # Filled in by the realistic simulator; the faithful mode leaves them empty (= all taker, at tick times).
    ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # ns of each fill
    kind: np.ndarray = field(default_factory=lambda: np.empty(0, dtype="<U7"))  # taker / maker / cleanup
    queue_ahead: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))  # maker fills only
    order_id: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    decisions: list[Decision] = field(
        default_factory=list
    )  # the router's per-horizon choices, when it has any
    # Realistic mode: shares bought beyond (or missing from) the order are valued at this cost-space price,
    # the arrival mid, in total_cost (see there). None = the specification's cost (the faithful mode).
    mark_px: float | None = None

    @property
    def shares_filled(self) -> int:
        return int(self.shares.sum())

    @property
    def unfilled(self) -> int:
        return max(self.order_size - self.shares_filled, 0)

    @property
    def overfill(self) -> int:
        return max(self.shares_filled - self.order_size, 0)

    def shares_of(self, kind: str) -> int:
        """Shares filled as `kind` (taker, maker or cleanup); faithful executions are all taker."""
        if not self.simulated:
            return self.shares_filled if kind == "taker" else 0
        return int(self.shares[self.kind == kind].sum())

    @property
    def rebates_earned(self) -> float:
        return float(np.sum(self.rebate))

    @property
    def simulated(self) -> bool:
        """True when the fills carry the simulator's liquidity kinds (the realistic mode)."""
        return len(self.kind) == len(self.shares)

    @property
    def fill_gross(self) -> np.ndarray:
        """shares·(price + fee) of each fill, in cost space: what it costs before any rebate."""
        return self.shares * (self.price + self.fee)

    @property
    def total_cash(self) -> float:
        """Σ shares·(price + fee) − rebates earned, in cost space: money paid for a buy, minus the proceeds
        for a sell (the report shows proceeds)."""
        return float(np.sum(self.fill_gross) - np.sum(self.rebate))

    @property
    def fees_paid(self) -> float:
        return float(np.sum(self.shares * self.fee))

    @property
    def avg_fill_px(self) -> float | None:
        """total_cash / shares_filled (fee-inclusive, cost space), None when nothing filled."""
        filled = self.shares_filled
        return self.total_cash / filled if filled else None

    def total_cost(self, penalties: Penalties) -> float:
        """total_cash plus the spec's penalty terms on what was never filled (or overfilled).

        With `mark_px` set (the realistic mode), missing shares are added and extra shares removed at that
        price first, so the cost is that of exactly order_size shares: otherwise an over-filled buy would
        pay ~$220 a share extra and an over-filled sell would *earn* it, and the grid would judge the
        inventory instead of the execution. It equals order_size·arrival_mid + shortfall + penalties."""
        under, over = self.unfilled, self.overfill
        cash = self.total_cash
        if self.mark_px is not None:
            cash += (under - over) * self.mark_px
        p = penalties
        return cash + p.theta_queue * (under + over) + p.lambda_under * under + p.lambda_over * over

    def signature(self) -> tuple:
        """A hashable summary of the fills, so the grid can count distinct outcomes."""
        return (
            self.tick.tobytes(),
            self.ts.tobytes(),
            self.venue.tobytes(),
            self.shares.tobytes(),
            self.price.tobytes(),
            self.kind.tobytes(),
        )


def make_execution(
    name: str,
    order_size: int,
    market: Market,
    ticks: np.ndarray,
    venues: np.ndarray,
    shares: np.ndarray,
    **extra: Any,
) -> Execution:
    """Build an Execution for taker fills at the snapshot ask; zero-share entries are dropped."""
    ticks = np.asarray(ticks, dtype=np.int64)
    venues = np.asarray(venues, dtype=np.int64)
    shares = np.asarray(shares, dtype=np.int64)
    keep = shares > 0
    ticks, venues, shares = ticks[keep], venues[keep], shares[keep]
    return Execution(
        name=name,
        order_size=order_size,
        tick=ticks,
        venue=venues,
        price=market.snapshots.take_px[ticks, venues],
        shares=shares,
        fee=market.taker_fee[venues],
        rebate=np.zeros(len(shares)),
        side=market.snapshots.side,
        **extra,
    )


def step_capacity(take_sz: np.ndarray, step: int) -> np.ndarray:
    """Per tick, the most shares a step-multiple split can take from the displayed sizes."""
    return ((take_sz // step) * step).sum(axis=1, dtype=np.int64)


def first_at_least(values: np.ndarray, start: int, threshold: int, first_width: int = 1024) -> int:
    """The first index ≥ `start` where `values` ≥ `threshold`, or -1: scanned in doubling windows, so the
    cost follows the distance to the answer rather than the length of a day."""
    width = first_width
    while start < len(values):
        hit = np.flatnonzero(values[start : start + width] >= threshold)
        if hit.size:
            return start + int(hit[0])
        start += width
        width *= 2
    return -1


def faithful_step(
    remaining: int,
    quotes: Sequence[Quote],
    penalties: Penalties,
    step: int,
) -> list[int] | None:
    """The router's decision at one snapshot: allocate `remaining` over the tradable quotes with the
    specification's allocator and execute min(split_i, displayed_i) on each.

    Returns the shares executed per quote (zeros included), or None when no split exists and the router
    waits. The batch backtest and `--live` both decide with it, so their fills are the same.
    """
    split, _cost = allocate(remaining, quotes, *penalties.as_tuple(), step)
    if not split:
        return None
    return [min(int(q), venue.ask_size) for venue, q in zip(quotes, split, strict=True)]


def quotes_at(market: Market, tick: int, venues: np.ndarray) -> list[Quote]:
    """The allocator's view of `venues` at one snapshot: ask, size and the venue's fees."""
    snaps = market.snapshots
    return [
        Quote(
            ask=float(snaps.take_px[tick, v]),
            ask_size=int(snaps.take_sz[tick, v]),
            fee=float(market.taker_fee[v]),
            rebate=float(market.maker_rebate[v]),
            publisher_id=int(snaps.publisher_ids[v]),
        )
        for v in venues
    ]


def run_faithful_router(
    market: Market,
    order_size: int,
    penalties: Penalties,
    step: int = 100,
) -> Execution:
    """The specification's router walked over the snapshots (see module docstring).

    A candidate split exists exactly when the remainder is a multiple of `step` and the step-rounded
    displayed sizes cover it, so ticks failing that test are skipped in one vectorised search instead
    of calling the allocator there (tests check this against calling it at every tick).
    """
    snaps = market.snapshots
    capacity = market.capacity(step)
    remaining = int(order_size)
    tick, waited = 0, 0
    ticks: list[int] = []
    venues: list[int] = []
    shares: list[int] = []
    while remaining > 0 and tick < snaps.ticks:
        if remaining % step:
            waited += snaps.ticks - tick
            break
        ready = first_at_least(capacity, tick, remaining)
        if ready < 0:
            waited += snaps.ticks - tick
            break
        waited += ready - tick
        tick = ready
        live = np.flatnonzero(snaps.take_sz[tick] > 0)
        quotes = quotes_at(market, tick, live)
        executions = faithful_step(remaining, quotes, penalties, step)
        # None cannot happen given the capacity test; kept as a guard against a wrong number.
        if executions is None:
            waited += 1
            tick += 1
            continue
        for v, executed in zip(live, executions, strict=True):
            if executed > 0:
                ticks.append(tick)
                venues.append(int(v))
                shares.append(executed)
                remaining -= executed
        tick += 1
    return make_execution(
        "optimized",
        order_size,
        market,
        np.array(ticks),
        np.array(venues),
        np.array(shares),
        ticks_waited=waited,
    )
