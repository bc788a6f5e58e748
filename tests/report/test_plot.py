"""What the --plot figure draws: the shortfall series against a hand-computed case, the clock labels, the
titles per mode, and that every strategy and venue is shown (nothing hidden behind anything)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgba

from allocator.execution.faithful import Execution, Market, make_execution
from allocator.report.plot import (
    STYLES,
    Benchmark,
    build_figure,
    faithful_benchmark,
    fill_series,
    final_shortfalls,
    offset_label,
    signed,
    signed_dollars,
    time_tick_label,
    title_text,
    wall_clock,
)
from allocator.snapshots.rule import build_snapshots
from allocator.snapshots.side import Side
from tests.helpers import NS, at, frame, quote

VENUES = ["Nasdaq", "Cboe BZX", "IEX"]


def small_market(side: Side = "buy") -> Market:
    """Three venues; at the first tick only one has a bid, so the first two-sided snapshot is tick 0."""
    rows = [
        quote(at("13:36:32.5"), 2, 100.02, 300, bid=100.00, bid_size=200),
        quote(at("13:36:32.5") + 2_000_000, 5, 100.03, 400, bid=99.99, bid_size=100),
        quote(at("13:36:33"), 43, 100.01, 500, bid=100.00, bid_size=300),
        quote(at("13:36:40"), 2, 100.04, 600, bid=100.01, bid_size=300),
    ]
    snaps = build_snapshots(frame(rows), side)
    fees = np.array([0.003, 0.0025, 0.0009])
    return Market(snaps, fees, np.zeros(3), at("13:36:32"), at("13:37:00"))


def faithful_executions(market: Market) -> dict[str, Execution]:
    """Each strategy takes at different ticks and venues; vwap repeats best_ask's fills exactly."""
    size = 600
    return {
        "optimized": make_execution("optimized", size, market, [2, 2], [0, 2], [100, 500]),
        "best_ask": make_execution("best_ask", size, market, [0, 1, 3], [0, 1, 0], [300, 200, 100]),
        "twap": make_execution("twap", size, market, [0, 3], [0, 0], [300, 200]),  # 100 left unfilled
        "vwap": make_execution("vwap", size, market, [0, 1, 3], [0, 1, 0], [300, 200, 100]),
    }


# --------------------------------------------------------------------------------- the series drawn


def hand_execution(side: Side) -> Execution:
    """Two fills of 100 against a mid of 100: a taker at 100.02 + 0.003 fee, then a maker at 99.99 earning
    a $0.20 rebate (market prices; cost space negates them for a sell)."""
    sign = 1 if side == "buy" else -1
    return Execution(
        name="x",
        order_size=200,
        tick=np.array([0, 1]),
        venue=np.array([0, 1]),
        price=sign * np.array([100.02, 99.99]),
        shares=np.array([100, 100]),
        fee=np.array([0.003, 0.0]),
        rebate=np.array([0.0, 0.2]),
        side=side,
        ts=np.array([at("13:36:32.001"), at("13:36:42")]),
        kind=np.array(["taker", "maker"]),
    )


def test_cumulative_shortfall_of_a_buy_matches_the_hand_computation():
    bench = Benchmark(at("13:36:32"), 100.0, "test")
    s = fill_series(hand_execution("buy"), np.zeros(2, np.int64), bench)
    # 100·(100.02 + 0.003 − 100) = $2.30 above the mid; then 100·(99.99 − 100) − 0.20 = −$1.20
    assert s.shortfall_usd == pytest.approx([2.3, 1.1])
    # of the order's notional at the mid, 200 × 100 = $20,000
    assert s.shortfall_bps == pytest.approx([1.15, 0.55])
    assert s.seconds == pytest.approx([0.001, 10.0])
    assert list(s.kind) == ["taker", "maker"]
    assert s.cum_shares.tolist() == [100, 200]


def test_a_sell_counts_selling_below_the_mid_as_worse():
    bench = Benchmark(at("13:36:32"), -100.0, "test")  # cost space: a sell's mid is negated
    s = fill_series(hand_execution("sell"), np.zeros(2, np.int64), bench)
    # sold at 100.02 (above the mid: better) less the fee: −$2.00 + $0.30 = −$1.70; then 99.99 (below:
    # worse) less the rebate earned: +$1.00 − $0.20 = +$0.80
    assert s.shortfall_usd == pytest.approx([-1.7, -0.9])
    assert s.shortfall_bps == pytest.approx([-0.85, -0.45])


def test_a_fully_filled_strategy_ends_at_the_reports_shortfall():
    market = small_market()
    bench = faithful_benchmark(market.snapshots)
    ex = faithful_executions(market)["optimized"]
    s = fill_series(ex, market.snapshots.ts_event, bench)
    assert ex.avg_fill_px is not None and bench.mid is not None
    report_bps = (ex.avg_fill_px - bench.mid) / bench.mid * 10_000
    assert s.shortfall_bps[-1] == pytest.approx(report_bps)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_the_faithful_benchmark_is_the_first_snapshot_with_both_sides(side):
    rows = [
        quote(at("13:36:32.5"), 2, 100.02, 300, bid=100.00, bid_size=0),  # no usable bid yet
        quote(at("13:36:33"), 5, 100.03, 400, bid=99.98, bid_size=100),
    ]
    bench = faithful_benchmark(build_snapshots(frame(rows), side))
    assert bench.ts_ns == at("13:36:33")
    # best ask 100.02 (venue 2 kept from the first tick), best bid 99.98: mid 100, negated for a sell
    assert bench.mid == pytest.approx(100.0 if side == "buy" else -100.0)


def test_strategies_with_the_very_same_fills_are_named_as_such():
    market = small_market()
    fig = build_figure(faithful_executions(market), market, "faithful", VENUES)
    try:
        assert "vwap (same fills as best_ask)" in legend_texts(fig)
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------------------- the clock


def test_wall_clock_is_hh_mm_ss_rounded_to_the_digits_asked():
    assert wall_clock(at("13:36:32.004854296"), 6) == "13:36:32.004854"
    assert wall_clock(at("13:36:32.004854296"), 3) == "13:36:32.005"
    assert wall_clock(at("13:36:32.9996"), 3) == "13:36:33"
    assert wall_clock(at("13:45:15")) == "13:45:15"


def test_time_ticks_show_the_offset_and_the_utc_clock():
    arrival = at("13:36:32")
    assert time_tick_label(0.0, arrival) == "0\n13:36:32"
    assert time_tick_label(0.01, arrival) == "+10 ms\n13:36:32.01"
    assert time_tick_label(1e-3, arrival) == "+1 ms\n13:36:32.001"
    assert time_tick_label(60.0, arrival) == "+1 min\n13:37:32"
    assert offset_label(2.5e-4) == "+250 µs"


def test_numbers_carry_a_true_minus_and_no_negative_zero():
    assert (signed(-1.234), signed(0.54), signed(-0.001)) == ("−1.23", "+0.54", "0.00")
    assert (signed_dollars(-137.4), signed_dollars(60.0), signed_dollars(-0.2)) == ("−$137", "+$60", "$0")


def test_the_figures_time_axis_is_labelled_in_utc():
    market = small_market()
    fig = build_figure(faithful_executions(market), market, "faithful", VENUES)
    try:
        ax = fig.axes[2]  # the bottom time panel, the one with labels
        label = ax.xaxis.get_major_formatter()(1.0, 0)
        assert label == "+1 s\n13:36:33.5"  # the arrival is the first snapshot, at 13:36:32.5
        assert "UTC" in ax.get_xlabel() and "HH:MM:SS" in ax.get_xlabel()
        assert ax.get_xscale() == "symlog"
    finally:
        plt.close(fig)


# ------------------------------------------------------------------------------------------ titles


def test_the_faithful_title_has_no_clean_up_and_says_what_the_mode_is():
    market = small_market()
    title = title_text("faithful", "buy", 5000, (market.window_start_ns, market.window_end_ns))
    title = " ".join(title.split())  # wrapped to the figure's width
    assert title.startswith("Buy 5,000 shares · window 13:36:32–13:37:00 UTC 2024-08-01")
    assert "displayed quote" in title and "no latency" in title
    assert title.count("clean-up") == title.count("no clean-up") == 1


def test_the_faithful_figure_offers_no_clean_up_or_maker_key():
    market = small_market("sell")
    fig = build_figure(faithful_executions(market), market, "faithful", VENUES)
    try:
        texts = legend_texts(fig)
        assert not [t for t in texts if "clean-up" in t or "maker" in t]
        assert fig.get_suptitle().startswith("Sell 600 shares")
    finally:
        plt.close(fig)


# ------------------------------------------------------------------------------ nothing is hidden


def legend_texts(fig: plt.Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for lg in ax_legends(ax) for t in lg.get_texts()]


def ax_legends(ax: plt.Axes) -> list:
    from matplotlib.legend import Legend

    return [a for a in ax.get_children() if isinstance(a, Legend)]


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_every_strategy_and_every_venue_is_in_the_legend(side):
    market = small_market(side)
    fig = build_figure(faithful_executions(market), market, "faithful", VENUES)
    try:
        texts = legend_texts(fig)
        for name in ("optimized", "best_ask", "twap", "vwap"):
            assert any(t.startswith(STYLES[name].label) for t in texts), name
        for venue in VENUES:
            assert venue in texts
    finally:
        plt.close(fig)


def test_every_child_fill_is_drawn_in_its_strategys_lane_and_colour():
    market = small_market()
    executions = faithful_executions(market)
    fig = build_figure(executions, market, "faithful", VENUES)
    try:
        lanes = fig.axes[0]
        for i, name in enumerate(executions):
            colour = to_rgba(STYLES[name].color)
            points = [
                xy
                for c in lanes.collections
                if isinstance(c, PathCollection) and tuple(c.get_facecolor()[0]) == colour
                for xy in c.get_offsets()
            ]
            # one marker per (tick, venue) fill, inside the strategy's own lane (y within ±0.5 of −i)
            assert len(points) == len(executions[name].shares), name
            assert all(abs(y + i) < 0.5 for _, y in points), name
        labels = [t.get_text().split("\n")[0] for t in lanes.get_yticklabels()]
        assert labels == [STYLES[n].label for n in executions]
        assert "100 unfilled" in lanes.get_yticklabels()[2].get_text()  # twap's lane says so
    finally:
        plt.close(fig)


def test_simulated_fills_are_keyed_by_liquidity_and_the_title_names_the_clean_up():
    from allocator.config import SimSettings

    class FakeSim:
        """The few SimMarket attributes the plot reads."""

        settings = SimSettings()
        arrival_ns = at("13:36:32")
        arrival_mid = 100.0
        cleanup_time = at("13:37:00") + 2_000_000

    market = small_market()
    ex = hand_execution("buy")
    cleanup = Execution(
        name="optimized",
        order_size=200,
        tick=np.array([0]),
        venue=np.array([2]),
        price=np.array([100.05]),
        shares=np.array([50]),
        fee=np.array([0.0009]),
        rebate=np.array([0.0]),
        ts=np.array([FakeSim.cleanup_time + 1_000_000]),
        kind=np.array(["cleanup"]),
    )
    fig = build_figure({"optimized": cleanup, "best_ask": ex}, market, "cont-kukanov", VENUES, FakeSim())
    try:
        texts = legend_texts(fig)
        assert {"maker: resting order filled", "clean-up after the window", "clean-up sent"} <= set(texts)
        assert (
            "clean-up market order" in fig.get_suptitle() and "1 ms order-entry latency" in fig.get_suptitle()
        )
        totals = final_shortfalls(
            {"best_ask": fill_series(ex, market.snapshots.ts_event, Benchmark(FakeSim.arrival_ns, 100.0, ""))}
        )
        assert totals["best_ask"] == pytest.approx((0.55, 1.1))
        cleanup_markers = [ln for ln in fig.axes[0].get_lines() if ln.get_fillstyle() == "bottom"]
        assert len(cleanup_markers) == 1
        assert cleanup_markers[0].get_xdata()[0] == pytest.approx(
            (FakeSim.cleanup_time + 1_000_000 - at("13:36:32")) / NS
        )
    finally:
        plt.close(fig)
