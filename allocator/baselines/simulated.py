"""best_ask, TWAP and VWAP through the execution simulator, so `--mode cont-kukanov` compares like with like.

The decision rules are the faithful ones (allocator.baselines.rules: `best_venue`, `twap_targets`,
`proportional_split`), applied from the common arrival (the router's) at each snapshot tick as soon as that
tick could be known (its latest ts_seen), the tick in force at the arrival acting at the arrival itself, to
the displayed sizes *minus what the strategy already took* there. Orders are IOC at the seen
price; a strategy waits for the fill reports of its last orders (one round trip) before deciding again.
What the rules leave missing at the close is bought by the same clean-up sweep as the router's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from allocator.baselines.rules import (
    TWAP_BUCKET_SECONDS,
    best_venue,
    proportional_split,
    twap_buckets,
    twap_targets,
)
from allocator.execution.faithful import Execution
from allocator.execution.sim_market import SimMarket, cleanup, to_execution
from allocator.execution.simulator import Simulator

# (tick, remaining, seen ask prices, seen available sizes) -> {venue: shares}
Rule = Callable[[int, int, np.ndarray, np.ndarray], dict[int, int]]
# (tick, remaining) -> shares the rule wants now; ticks where it wants none are skipped cheaply
Wants = Callable[[int, int], int]


def seen_offers(sim_market: SimMarket, sim: Simulator, tick: int) -> tuple[np.ndarray, np.ndarray]:
    """The snapshot's asks at `tick` and their sizes after the strategy's own takes (cost space)."""
    snaps, book = sim_market.market.snapshots, sim_market.book
    prices = snaps.take_px[tick].copy()
    sizes = np.zeros(snaps.venues, dtype=np.int64)
    for v in np.flatnonzero(snaps.take_sz[tick] > 0):
        row = int(book.stream_row_of_row[snaps.source_row[tick, v]])
        stream = book.streams[v]
        if stream.take_px[row, 0] == prices[v]:
            sizes[v] = sim.depletion.available(int(v), row)[0]
    prices[sizes == 0] = np.nan
    return prices, sizes


def _run_rule(
    sim_market: SimMarket, order_size: int, name: str, rule: Rule, wants: Wants | None = None
) -> Execution:
    sim = sim_market.simulator()
    market = sim_market.market
    round_trip = 2 * sim_market.settings.latency.max_ns
    remaining = int(order_size)
    ready_at = np.iinfo(np.int64).min
    arrival = sim_market.arrival_ns
    for tick in range(market.snapshots.ticks):
        t = max(int(sim_market.tick_seen[tick]), arrival)
        if t < ready_at:
            continue
        if t >= market.window_end_ns:
            break
        if wants is not None and wants(tick, remaining) <= 0:
            continue
        prices, sizes = seen_offers(sim_market, sim, tick)
        orders = rule(tick, remaining, prices, sizes)
        if not orders:
            continue
        for v, q in orders.items():
            remaining -= sim.take(v, t, float(prices[v]), q)
        ready_at = t + round_trip
        if remaining <= 0:
            break
    cleanup(sim_market, sim, order_size)
    return to_execution(sim.ledger, name, order_size, sim_market, [])


def _cheapest(prices: np.ndarray, fee: np.ndarray) -> int:
    return int(best_venue(np.where(np.isfinite(prices), prices, np.inf)[None, :], fee)[0])


def simulated_best_ask(sim_market: SimMarket, order_size: int) -> Execution:
    fee = sim_market.market.taker_fee

    def rule(tick: int, remaining: int, prices: np.ndarray, sizes: np.ndarray) -> dict[int, int]:
        v = _cheapest(prices, fee)
        return {v: min(remaining, int(sizes[v]))} if v >= 0 and remaining > 0 else {}

    return _run_rule(sim_market, order_size, "best_ask", rule)


def simulated_twap(
    sim_market: SimMarket, order_size: int, bucket_seconds: int = TWAP_BUCKET_SECONDS
) -> Execution:
    market = sim_market.market
    fee = market.taker_fee
    arrival = sim_market.arrival_ns
    buckets, bucket_ns = twap_buckets(market.window_end_ns - arrival, bucket_seconds)
    due = np.cumsum(twap_targets(order_size, buckets))  # shares due by the end of each bucket
    acting = np.maximum(sim_market.tick_seen, arrival)  # when each tick is acted on
    bucket_of = np.clip((acting - arrival) // bucket_ns, 0, buckets - 1)

    def behind(tick: int, remaining: int) -> int:
        return int(due[bucket_of[tick]]) - (order_size - remaining)  # carries every earlier shortfall

    def rule(tick: int, remaining: int, prices: np.ndarray, sizes: np.ndarray) -> dict[int, int]:
        need = behind(tick, remaining)
        v = _cheapest(prices, fee)
        return {v: min(need, int(sizes[v]))} if v >= 0 and need > 0 else {}

    return _run_rule(sim_market, order_size, "twap", rule, wants=behind)


def simulated_vwap(sim_market: SimMarket, order_size: int) -> Execution:
    def rule(tick: int, remaining: int, prices: np.ndarray, sizes: np.ndarray) -> dict[int, int]:
        if remaining <= 0:
            return {}
        split = proportional_split(remaining, sizes)
        return {int(v): int(split[v]) for v in np.flatnonzero(split > 0)}

    return _run_rule(sim_market, order_size, "vwap", rule)


SIMULATED_BASELINES = {"best_ask": simulated_best_ask, "twap": simulated_twap, "vwap": simulated_vwap}
