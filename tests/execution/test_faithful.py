"""The faithful router on snapshots, against answers computed by hand and a naive reference."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocator import Venue, allocate
from allocator.allocation.penalties import Penalties
from allocator.baselines.snapshot import best_ask
from allocator.execution.faithful import make_execution, run_faithful_router
from allocator.report.build import savings_bps
from tests.helpers import make_market

REPO = Path(__file__).resolve().parents[2]
nan = math.nan


def router(market, order_size, lo=0.5, lu=0.5, th=0.1):
    return run_faithful_router(market, order_size, Penalties(lo, lu, th))


def test_one_venue_fills_at_the_first_snapshot_that_covers_the_order():
    market = make_market([[10.00], [10.01]], [[300], [300]], [0.003])
    ex = router(market, 200)
    assert ex.shares_filled == 200 and ex.ticks_waited == 0
    assert ex.tick.tolist() == [0] and ex.venue.tolist() == [0]
    assert ex.total_cash == pytest.approx(200 * 10.003)
    assert ex.avg_fill_px == pytest.approx(10.003)


def test_fee_flips_the_venue_choice():
    # Venue 1 has the lower ask, venue 2 the lower ask + fee: the router goes to venue 2, best_ask to venue 1.
    market = make_market([[10.000, 10.001]], [[100, 100]], [0.0030, 0.0005])
    ex = router(market, 100)
    assert ex.venue.tolist() == [1] and ex.total_cash == pytest.approx(100 * 10.0015)
    base = best_ask(market, 100)
    assert base.venue.tolist() == [0] and base.total_cash == pytest.approx(100 * 10.003)
    assert savings_bps(base.avg_fill_px, ex.avg_fill_px) == pytest.approx(
        (10.003 - 10.0015) / 10.003 * 1e4, abs=1e-4
    )


def test_remainder_not_a_multiple_of_the_step_waits_forever_and_is_reported():
    market = make_market([[10.0]] * 4, [[1000]] * 4, [0.0])
    ex = router(market, 250, lo=0.2, lu=0.7, th=0.1)
    assert ex.shares_filled == 0 and ex.unfilled == 250 and ex.ticks_waited == 4
    assert ex.total_cost(Penalties(0.2, 0.7, 0.1)) == pytest.approx((0.7 + 0.1) * 250)


def test_no_candidate_means_wait_until_displayed_size_covers_the_order():
    # Tick 0 shows 300 (< 500); tick 1 shows 150 + 400 = 550 but only 100 + 400 in whole steps = 500.
    market = make_market([[10.0, 10.02], [10.01, 10.03]], [[300, 0], [150, 400]], [0.0, 0.0])
    ex = router(market, 500)
    assert ex.ticks_waited == 1 and ex.tick.tolist() == [1, 1]
    assert ex.shares.tolist() == [100, 400] and ex.total_cash == pytest.approx(100 * 10.01 + 400 * 10.03)


def test_step_rounding_blocks_a_fill_that_raw_sizes_would_allow():
    market = make_market([[10.0, 10.0]], [[150, 150]], [0.0, 0.0])
    assert router(market, 300).shares_filled == 0  # 100 + 100 in whole steps < 300


def naive_router(market, order_size, lo, lu, th, step):
    """Call the spec's allocator at every snapshot, literally (the shortcut-free reference)."""
    snaps = market.snapshots
    remaining, ticks, venues, shares, waited = order_size, [], [], [], 0
    for t in range(snaps.ticks):
        if remaining <= 0:
            break
        live = np.flatnonzero(snaps.take_sz[t] > 0)
        quotes = [
            Venue(snaps.take_px[t, v], int(snaps.take_sz[t, v]), market.taker_fee[v], 0.0) for v in live
        ]
        split, _ = allocate(remaining, quotes, lo, lu, th, step)
        if not split:
            waited += 1
            continue
        for v, q in zip(live, split, strict=True):
            done = min(q, int(snaps.take_sz[t, v]))
            if done:
                ticks.append(t), venues.append(v), shares.append(done)
                remaining -= done
    return make_execution("naive", order_size, market, ticks, venues, shares, ticks_waited=waited)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    n_ticks=st.integers(1, 6),
    n_venues=st.integers(1, 4),
    order=st.sampled_from([100, 200, 300, 500, 800, 1000, 250, 1]),
)
def test_router_shortcut_equals_calling_the_allocator_at_every_tick(data, n_ticks, n_venues, order):
    prices = data.draw(
        st.lists(
            st.lists(st.sampled_from([10.0, 10.01, 10.02, nan]), min_size=n_venues, max_size=n_venues),
            min_size=n_ticks,
            max_size=n_ticks,
        )
    )
    sizes = data.draw(
        st.lists(
            st.lists(st.sampled_from([0, 50, 100, 150, 300, 700]), min_size=n_venues, max_size=n_venues),
            min_size=n_ticks,
            max_size=n_ticks,
        )
    )
    fees = data.draw(st.lists(st.sampled_from([0.0, 0.003, -0.001]), min_size=n_venues, max_size=n_venues))
    market = make_market(prices, sizes, fees)
    fast = run_faithful_router(market, order, Penalties(0.3, 0.6, 0.2), 100)
    slow = naive_router(market, order, 0.3, 0.6, 0.2, 100)
    assert fast.signature() == slow.signature()
    assert fast.ticks_waited == slow.ticks_waited


@settings(max_examples=100, deadline=None)
@given(lo=st.floats(0, 10), lu=st.floats(0, 10), th=st.floats(0, 10))
def test_penalties_never_change_the_faithful_router(lo, lu, th):
    market = make_market(
        [[10.0, 10.01, 9.99], [10.02, 10.0, 10.01]], [[200, 300, 100], [500, 400, 300]], [0.003, 0.001, 0.0]
    )
    assert router(market, 1000, lo, lu, th).signature() == router(market, 1000, 0, 0, 0).signature()
