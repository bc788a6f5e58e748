"""The three baselines the router is judged against, one function each, all vectorised.

- best_ask: at each snapshot buy min(remaining, size) at the venue with the lowest ask
  (ties: lower ask + fee, then lower publisher_id).
- twap: 60-second buckets from the window start; bucket b's target is order_size / buckets in whole
  shares (the remainder spread one share each from the first bucket); inside a bucket, buy like
  best_ask from its first snapshot on until the target is met; a shortfall carries into the next
  bucket; what is still missing at the end is reported unfilled, never filled by magic.
- vwap: at each snapshot split the remaining quantity across venues in proportion to displayed ask
  size (largest-remainder rounding, ties to the lower publisher_id), capped at each venue's size.

Like the faithful router, these take displayed liquidity at every snapshot as if it were fresh (the
specification's market model). `--mode cont-kukanov` runs the same three rules through the execution
simulator instead (allocator.baselines.simulated): depletion, latency, depth, and a clean-up at the close.
"""

from __future__ import annotations

import numpy as np

from allocator.baselines.rules import (
    TWAP_BUCKET_SECONDS,
    best_venue,
    proportional_split,
    twap_buckets,
    twap_targets,
)
from allocator.execution.faithful import Execution, Market, make_execution

# Ticks per slice of the best-venue scan: bounds its [ticks, venues] temporaries on a full day.
BEST_VENUE_CHUNK = 1 << 18


def best_venue_per_tick(market: Market) -> np.ndarray:
    """`best_venue` at every snapshot tick (computed once per market: best_ask and twap both use it)."""
    return market.derived("best_venue", lambda: _best_venue_per_tick(market))


def _best_venue_per_tick(market: Market) -> np.ndarray:
    snaps = market.snapshots
    best = np.empty(snaps.ticks, dtype=np.int64)
    for lo in range(0, snaps.ticks, BEST_VENUE_CHUNK):
        part = slice(lo, lo + BEST_VENUE_CHUNK)
        best[part] = best_venue(
            np.where(snaps.take_sz[part] > 0, snaps.take_px[part], np.inf), market.taker_fee
        )
    return best


def _take_until(available: np.ndarray, need: int) -> np.ndarray:
    """Shares taken from a sequence of offers, in order, until `need` is met (last one partial)."""
    cumulative = np.cumsum(available)
    before = cumulative - available
    return np.clip(np.minimum(available, need - before), 0, None)


def best_ask(market: Market, order_size: int) -> Execution:
    """Sweep the best-priced venue's top size at every snapshot until the order is done."""
    best = best_venue_per_tick(market)
    ticks = np.flatnonzero(best >= 0)
    venues = best[ticks]
    taken = _take_until(market.snapshots.take_sz[ticks, venues], order_size)
    return make_execution("best_ask", order_size, market, ticks, venues, taken)


def twap(market: Market, order_size: int, bucket_seconds: int = TWAP_BUCKET_SECONDS) -> Execution:
    """Time-sliced best-ask buying with carry-over of each bucket's shortfall."""
    snaps = market.snapshots
    start = market.window_start_ns
    buckets, bucket_ns = twap_buckets(market.window_end_ns - start, bucket_seconds)
    targets = twap_targets(order_size, buckets)
    best = best_venue_per_tick(market)
    quoted = np.flatnonzero(best >= 0)
    # Ticks are in time order, so each bucket's quoted ticks are one slice: found once, not per bucket
    # (a mask per bucket made a 6.5 h day cost buckets × ticks).
    bounds = np.searchsorted((snaps.ts_event[quoted] - start) // bucket_ns, np.arange(buckets + 1))
    all_ticks, all_venues, all_shares = [], [], []
    carry = 0
    for b in range(buckets):
        need = int(targets[b]) + carry
        ticks = quoted[bounds[b] : bounds[b + 1]]
        venues = best[ticks]
        taken = _take_until(snaps.take_sz[ticks, venues], need)
        carry = need - int(taken.sum())
        all_ticks.append(ticks)
        all_venues.append(venues)
        all_shares.append(taken)
    return make_execution(
        "twap",
        order_size,
        market,
        np.concatenate(all_ticks),
        np.concatenate(all_venues),
        np.concatenate(all_shares),
    )


def vwap(market: Market, order_size: int) -> Execution:
    """Size-weighted buying across all venues at each snapshot."""
    sizes = market.snapshots.take_sz
    totals = sizes.sum(axis=1)
    cumulative = np.cumsum(totals)
    # Every tick before the one where displayed size first covers the remainder takes everything shown.
    last = int(np.searchsorted(cumulative, order_size, side="left"))
    full_ticks = min(last, len(totals))
    ticks_idx, venue_idx = np.nonzero(sizes[:full_ticks] > 0)
    shares = sizes[ticks_idx, venue_idx]
    remaining = order_size - int(shares.sum())
    if last < len(totals) and remaining > 0:
        part = proportional_split(remaining, sizes[last])
        live = np.flatnonzero(part > 0)
        ticks_idx = np.concatenate([ticks_idx, np.full(len(live), last)])
        venue_idx = np.concatenate([venue_idx, live])
        shares = np.concatenate([shares, part[live]])
    return make_execution("vwap", order_size, market, ticks_idx, venue_idx, shares)


BASELINES = {"best_ask": best_ask, "twap": twap, "vwap": vwap}
