"""The baselines' decision rules, shared by the snapshot baselines and their simulated versions, so the
two modes judge the router against the same best-ask, TWAP and VWAP."""

from __future__ import annotations

import numpy as np

from allocator.data.window import NS_PER_SECOND

TWAP_BUCKET_SECONDS = 60


def twap_buckets(span_ns: int, bucket_seconds: int) -> tuple[int, int]:
    """(number of buckets, bucket length in ns): the span cut into whole buckets, the last one partial."""
    bucket_ns = bucket_seconds * NS_PER_SECOND
    return max(int(-(-span_ns // bucket_ns)), 1), bucket_ns


def best_venue(ask: np.ndarray, taker_fee: np.ndarray) -> np.ndarray:
    """The best-ask rule on a [T, V] array of asks (inf where a venue offers nothing): per row, the venue
    with the lowest ask (ties: lower ask+fee, then lower publisher_id); -1 where no venue offers."""
    ask = np.atleast_2d(ask)
    best = np.full(ask.shape[0], -1, dtype=np.int64)
    if ask.shape[1] == 0:
        return best
    all_in = ask + taker_fee[None, :]
    # publisher_ids are sorted, so the column index already orders ties by lower id.
    best_ask = ask.min(axis=1, keepdims=True)
    candidates = np.where(ask == best_ask, all_in, np.inf)
    choice = np.argmin(candidates, axis=1)
    has_quote = np.isfinite(best_ask[:, 0])
    best[has_quote] = choice[has_quote]
    return best


def twap_targets(order_size: int, buckets: int) -> np.ndarray:
    """Whole-share targets per bucket: order_size // buckets, plus one for the first remainder buckets."""
    base, extra = divmod(int(order_size), buckets)
    targets = np.full(buckets, base, dtype=np.int64)
    targets[:extra] += 1
    return targets


def proportional_split(quantity: int, sizes: np.ndarray) -> np.ndarray:
    """Split `quantity` in proportion to `sizes` in whole shares (largest remainder, ties to lower index).

    Never exceeds a venue's size: when quantity ≥ total every venue gives all it shows.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    total = int(sizes.sum())
    if total <= quantity:
        return sizes.copy()
    exact = sizes * quantity  # integer numerators of quantity·size/total
    base = exact // total
    left = quantity - int(base.sum())
    if left:
        remainders = exact - base * total
        order = np.lexsort((np.arange(len(sizes)), -remainders))
        base[order[:left]] += 1
    return base
