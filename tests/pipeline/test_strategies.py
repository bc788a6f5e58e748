"""Router, baselines, search and report against answers computed by hand."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocator import Venue, allocate
from allocator.baselines.rules import proportional_split, twap_targets
from allocator.baselines.snapshot import best_ask, twap, vwap
from allocator.config import Penalties, PenaltyGrid
from allocator.execution.faithful import make_execution, run_faithful_router
from allocator.report.build import savings_bps
from allocator.search import search
from tests.helpers import NS, at, make_market

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


def test_savings_formula():
    assert savings_bps(100.0, 99.0) == 100.0
    assert savings_bps(100.0, 101.0) == -100.0
    assert savings_bps(None, 1.0) is None


def test_search_picks_the_lowest_cost_and_breaks_ties_by_grid_order():
    market = make_market([[10.0]], [[1000]], [0.0])
    points = PenaltyGrid((0.1, 0.2), (0.3, 0.1), (0.5,)).points()
    result = search(lambda p: run_faithful_router(market, 250, p), points, jobs=1)
    # 250 is never filled: cost = (θ + λ_under)·250, lowest at λ_under = 0.1; first such point wins.
    assert (result.best.penalties.lambda_over, result.best.penalties.lambda_under) == (0.1, 0.1)
    assert result.distinct_outcomes == 1
    parallel = search(lambda p: run_faithful_router(market, 250, p), points, jobs=2)
    assert [p.total_cost for p in parallel.points] == [p.total_cost for p in result.points]


def test_report_json_shape_and_types(tmp_path):
    from tests.helpers import frame, quote, to_csv_text, write

    rows = [
        quote(at("13:36:40") + i * NS, 2 + (i % 3) * 3, 222.80 + (i % 4) / 100, 800 + 10 * i)
        for i in range(40)
    ]
    path = write(tmp_path / "m.csv", to_csv_text(frame(rows)))
    fills = tmp_path / "fills.csv"
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "order_allocator.py"),
            "--csv",
            str(path),
            "--order-size",
            "1000",
            "--fills",
            str(fills),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(out.stdout)
    assert set(report) >= {"best_parameters", "optimized", "baselines", "savings_vs_baselines_bps"}
    assert set(report["best_parameters"]) == {"lambda_over", "lambda_under", "theta_queue"}
    strategy_keys = {"total_cost", "total_cash", "shares_filled", "avg_fill_px"}
    assert set(report["optimized"]) == strategy_keys
    assert set(report["baselines"]) == {"best_ask", "twap", "vwap"}
    for summary in [report["optimized"], *report["baselines"].values()]:
        assert set(summary) == strategy_keys
        assert isinstance(summary["shares_filled"], int)
        assert all(isinstance(summary[k], float) for k in ("total_cost", "total_cash", "avg_fill_px"))
    assert set(report["savings_vs_baselines_bps"]) == {"best_ask", "twap", "vwap"}
    assert report["optimized"]["shares_filled"] == 1000
    assert report["grid"]["points"] == 125 and report["grid"]["distinct_outcomes"] == 1
    assert report["optimized"]["avg_fill_px"] == pytest.approx(
        report["optimized"]["total_cash"] / report["optimized"]["shares_filled"]
    )
    for name, bps in report["savings_vs_baselines_bps"].items():
        base = report["baselines"][name]["avg_fill_px"]
        assert bps == pytest.approx((base - report["optimized"]["avg_fill_px"]) / base * 1e4, abs=1e-3)
    ledger = fills.read_text().splitlines()
    assert ledger[0].startswith("strategy,tick,ts_event,publisher_id,venue")


def test_live_decisions_are_the_reports_decisions():
    """--live applies the snapshot rule incrementally; its fills must be the batch router's, tick for tick."""
    from allocator.config import RunConfig
    from allocator.data.loader import load
    from allocator.data.venues import load_fee_table
    from allocator.data.window import WindowSpec
    from allocator.kafka.live import LiveRouter
    from allocator.kafka.producer import event_frame
    from allocator.pipeline import run

    data = load(REPO / "data" / "l1_day.csv.gz", WindowSpec("13:36:32", "13:38:00"), levels=1)
    fees = load_fee_table()
    for order in (3000, 5000, 12_000):
        config = RunConfig(order_size=order, grid=PenaltyGrid((0.5,), (0.5,), (0.1,)))
        result = run(data, fees, config)
        router = result.search.best.execution
        snaps = result.market.snapshots
        batch = [
            (int(snaps.ts_event[t]), int(snaps.publisher_ids[v]), float(p), int(q))
            for t, v, p, q in zip(router.tick, router.venue, router.price, router.shares, strict=True)
        ]
        live = LiveRouter(config, fees)
        rows = event_frame(data.frame)
        for start in range(0, len(rows), 777):  # arbitrary batch boundaries, as Kafka delivers them
            live.on_rows(rows.iloc[start : start + 777])
        live.finish()
        assert live.fills == batch
        assert live.waited == router.ticks_waited
