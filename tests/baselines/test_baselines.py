"""best_ask, TWAP and VWAP on snapshots, against answers computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from allocator.baselines.rules import proportional_split, twap_targets
from allocator.baselines.snapshot import best_ask, twap, vwap
from tests.helpers import NS, at, make_market

REPO = Path(__file__).resolve().parents[2]
nan = math.nan


def test_best_ask_breaks_ties_by_fee_then_publisher_id():
    market = make_market([[10.0, 10.0, 10.0]], [[100, 100, 100]], [0.003, 0.001, 0.001])
    assert best_ask(market, 50).venue.tolist() == [1]
    market = make_market([[10.0, 10.0]], [[100, 100]], [0.001, 0.001])
    assert best_ask(market, 50).venue.tolist() == [0]


def test_best_ask_rebuys_the_best_top_size_each_snapshot():
    market = make_market(
        [[10.0, 10.05], [10.1, 10.0], [10.0, nan]], [[120, 500], [90, 60], [500, 0]], [0.0, 0.0]
    )
    ex = best_ask(market, 250)
    assert (
        ex.tick.tolist() == [0, 1, 2]
        and ex.venue.tolist() == [0, 1, 0]
        and ex.shares.tolist() == [120, 60, 70]
    )


def test_twap_bucket_arithmetic_and_carry_over():
    assert twap_targets(5000, 9).tolist() == [556] * 5 + [555] * 4
    start = at("13:36:32")
    # One snapshot every 30 s: buckets of 60 s hold two snapshots each; window of 523 s → 9 buckets.
    ts = [start + i * 30 * NS for i in range(18)]
    sizes = [[100]] + [[1000]] * 17
    market = make_market([[10.0]] * 18, sizes, [0.0], ts=ts)
    ex = twap(market, 5000)
    per_bucket = np.bincount((market.snapshots.ts_event[ex.tick] - start) // (60 * NS), weights=ex.shares)
    # Bucket 0: 100 at t=0 then its 456 shortfall from the second snapshot (still bucket 0).
    assert per_bucket.tolist() == [556] * 5 + [555] * 4
    assert ex.shares[:2].tolist() == [100, 456]
    # Bucket 0 too thin for its target: the shortfall carries into bucket 1.
    thin = make_market([[10.0]] * 18, [[100], [100]] + [[1000]] * 16, [0.0], ts=ts)
    per_bucket = np.bincount(
        (thin.snapshots.ts_event[twap(thin, 5000).tick] - start) // (60 * NS), weights=twap(thin, 5000).shares
    )
    assert per_bucket.tolist() == [200, 556 + 356] + [556] * 3 + [555] * 4


def test_twap_reports_what_it_could_not_buy():
    market = make_market([[10.0]], [[100]], [0.0])
    ex = twap(market, 5000)
    assert ex.shares_filled == 100 and ex.unfilled == 4900


def test_vwap_is_proportional_to_displayed_size_and_capped():
    assert proportional_split(100, np.array([300, 100])).tolist() == [75, 25]
    assert proportional_split(2, np.array([1, 1, 1])).tolist() == [1, 1, 0]
    assert proportional_split(1000, np.array([300, 100])).tolist() == [300, 100]
    market = make_market([[10.0, 10.1], [10.0, 10.1]], [[300, 100], [300, 100]], [0.0, 0.0])
    ex = vwap(market, 500)
    assert ex.tick.tolist() == [0, 0, 1, 1] and ex.shares.tolist() == [300, 100, 75, 25]
