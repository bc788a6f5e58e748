"""`--plot FILE.png`: when, where and at what cost each strategy filled, measured from its arrival.

The fills of a run are bursty: the baselines that take the displayed quotes finish within milliseconds,
TWAP spreads over minutes, the router sits in between. So the shared time axis is the time since the
arrival on a symlog scale (linear only in its first sliver, where fills at the arrival itself sit), each
tick labelled twice: the offset ("+10 ms") and the UTC wall clock. Three panels share it:

- child fills, one lane per strategy and one row per venue inside it (marker shape = venue, area ∝ shares,
  filled = taker, hollow = maker, half-filled = clean-up), so no strategy or venue hides behind another;
- cumulative shares filled;
- cumulative implementation shortfall against the arrival mid, in bps of the order's notional at that mid
  (right axis: the same in $). Cost space makes one sign serve both sides: higher = worse (paid above the
  mid for a buy, received below it for a sell). A fully filled strategy ends at the report's shortfall.

A side panel repeats each strategy's final shortfall with its number, since $50 on a $1.1M order is 0.45
bps and must be readable, not guessed. The arrival mid is the simulator's (`SimMarket.arrival_mid`) in
the cont-kukanov mode; the faithful mode has no arrival of its own, so its benchmark is the consolidated
mid of its first snapshot with both sides, and its clock starts there. matplotlib is imported here only,
so other runs never pay for it.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from allocator.data.window import NS_PER_SECOND
from allocator.errors import SettingError
from allocator.execution.faithful import Execution, Market
from allocator.report.build import fill_times, market_avg_px
from allocator.snapshots.rule import Snapshots

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from allocator.execution.sim_market import SimMarket


@dataclass(frozen=True)
class Style:
    label: str
    color: str
    linestyle: str | tuple[float, tuple[float, ...]]
    linewidth: float


# Okabe–Ito colours (readable with colour-blindness); line styles differ too, so coinciding curves show both.
STYLES: dict[str, Style] = {
    "optimized": Style("router (optimized)", "#D55E00", "-", 2.6),
    "best_ask": Style("best_ask", "#0072B2", "--", 1.8),
    "twap": Style("twap", "#009E73", "-.", 1.8),
    "vwap": Style("vwap", "#CC79A7", (0, (1, 1.5)), 2.4),
}
OTHER_COLORS = ("#E69F00", "#56B4E9", "#F0E442", "#000000")
VENUE_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h", "<", ">", "p", "*")
# Offsets the time axis may be labelled at (seconds since the arrival): round numbers a reader knows.
TIME_TICKS = (
    1e-6,
    1e-5,
    1e-4,
    1e-3,
    1e-2,
    0.1,
    1.0,
    10.0,
    60.0,
    300.0,
    1800.0,
    3600.0,
    4 * 3600.0,
    24 * 3600.0,
)
MAX_MARKER_AREA = 130.0  # pt², the largest child fill of the figure
MIN_MARKER_AREA = 9.0


@dataclass(frozen=True)
class Benchmark:
    """Where the clock and the cost are measured from: the arrival time and the cost-space mid then."""

    ts_ns: int
    mid: float | None  # cost space (a sell's is negative); None when the book had no two sides
    what: str  # how it was found, for the figure's text


def faithful_benchmark(snapshots: Snapshots) -> Benchmark:
    """The first snapshot whose consolidated book has both sides: the faithful router's first look at the
    market, and the mid it could have had. Scanned in doubling blocks, so a full day costs only what it
    takes to find it."""
    width, start = 1024, 0
    while start < snapshots.ticks:
        stop = min(start + width, snapshots.ticks)
        take = snapshots.take_px[start:stop]
        post = snapshots.row_post_px[snapshots.source_row[start:stop]]
        both = np.isfinite(take).any(axis=1) & np.isfinite(post).any(axis=1)
        hit = np.flatnonzero(both)
        if hit.size:
            t = int(hit[0])
            mid = (float(np.nanmin(take[t])) + float(np.nanmax(post[t]))) / 2
            return Benchmark(int(snapshots.ts_event[start + t]), round(mid, 9), "mid of the first snapshot")
        start, width = stop, width * 2
    first = int(snapshots.ts_event[0]) if snapshots.ticks else 0
    return Benchmark(first, None, "no snapshot with both sides")


def sim_benchmark(sim_market: SimMarket) -> Benchmark:
    """The simulator's own arrival and the consolidated mid seen then, the report's benchmark."""
    return Benchmark(sim_market.arrival_ns, sim_market.arrival_mid, "consolidated mid seen at the arrival")


@dataclass(frozen=True)
class FillSeries:
    """One strategy's child fills in time order, and the cumulative curves the figure draws from them."""

    seconds: npt.NDArray[np.float64]  # since the benchmark's arrival
    venue: npt.NDArray[np.int64]
    kind: npt.NDArray[np.str_]  # taker / maker / cleanup
    shares: npt.NDArray[np.int64]
    cum_shares: npt.NDArray[np.int64]
    shortfall_usd: npt.NDArray[np.float64]  # cumulative, cost space: > 0 = worse than the arrival mid
    shortfall_bps: npt.NDArray[np.float64]  # the same in bps of order_size × |arrival mid|


def fill_series(execution: Execution, tick_ts: npt.NDArray[np.int64], benchmark: Benchmark) -> FillSeries:
    """Each fill's cost against the arrival mid is shares·(price + fee − mid) − rebate in cost space, so a
    buy above the mid and a sell below it both count positive; the sum over the order, divided by the
    order's notional at the mid, is the implementation shortfall in bps."""
    ts = np.asarray(fill_times(execution, tick_ts), dtype=np.int64)
    order = np.argsort(ts, kind="stable")
    shares = execution.shares[order].astype(np.int64)
    kind = execution.kind[order] if execution.simulated else np.full(len(shares), "taker")
    if benchmark.mid is None or benchmark.mid == 0:
        usd = np.full(len(shares), np.nan)
        bps = usd.copy()
    else:
        each = execution.fill_gross[order] - execution.rebate[order] - shares * benchmark.mid
        usd = np.cumsum(each)
        bps = usd / (execution.order_size * abs(benchmark.mid)) * 10_000
    return FillSeries(
        seconds=(ts[order] - benchmark.ts_ns) / NS_PER_SECOND,
        venue=execution.venue[order].astype(np.int64),
        kind=kind,
        shares=shares,
        cum_shares=np.cumsum(shares),
        shortfall_usd=usd,
        shortfall_bps=bps,
    )


def same_fills(a: Execution, b: Execution) -> bool:
    """Two strategies that made the very same fills draw the very same curves: the legend says so."""
    return a.signature() == b.signature()


def wall_clock(ts_ns: int, decimals: int = 0) -> str:
    """HH:MM:SS (UTC) rounded to `decimals` digits of the second, trailing zeros dropped."""
    q = 10 ** (9 - min(max(decimals, 0), 9))
    day_ns = (int(ts_ns) + q // 2) // q * q % (86_400 * NS_PER_SECOND)
    whole, frac = divmod(day_ns, NS_PER_SECOND)
    h, rem = divmod(whole, 3600)
    m, sec = divmod(rem, 60)
    text = f"{h:02d}:{m:02d}:{sec:02d}"
    digits = f"{frac:09d}"[:decimals].rstrip("0") if decimals > 0 else ""
    return f"{text}.{digits}" if digits else text


def offset_label(seconds: float) -> str:
    """A time since the arrival in the unit a reader would say it in: 0, +250 µs, +10 ms, +1 s, +5 min."""
    if seconds == 0:
        return "0"
    sign = "+" if seconds > 0 else "−"
    a = abs(seconds)
    for unit, size in (("h", 3600.0), ("min", 60.0), ("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if a >= size:
            return f"{sign}{a / size:.3g} {unit}"
    return f"{sign}{a * 1e9:.3g} ns"


def clock_decimals(seconds: float) -> int:
    """Digits of the second a wall-clock tick needs to be as precise as its offset is fine (10 %):
    +1 s → 1, +10 ms → 3, +1 ms → 4 (trailing zeros are dropped afterwards)."""
    if seconds <= 0:
        return 6
    return min(9, max(0, math.ceil(-math.log10(seconds) - 1e-12) + 1))


def time_tick_label(seconds: float, arrival_ns: int) -> str:
    """Two lines: the offset since the arrival, and the UTC wall clock at it."""
    ts = arrival_ns + round(seconds * NS_PER_SECOND)
    decimals = 3 if seconds == 0 else clock_decimals(abs(seconds))
    return f"{offset_label(seconds)}\n{wall_clock(ts, decimals)}"


def linear_threshold(series: Sequence[FillSeries]) -> float:
    """The symlog axis is linear below the decade of the earliest fill after the arrival (≥ 1 µs), so fills
    at the arrival itself sit at 0 and every later one on the log part."""
    positive = [float(s.seconds[s.seconds > 0].min()) for s in series if (s.seconds > 0).any()]
    first = min(positive) if positive else 1e-3
    return float(10 ** math.floor(math.log10(max(first, 1e-6))))


def title_text(
    mode: str,
    side: str,
    order_size: int,
    window: tuple[int, int],
    sim_market: SimMarket | None = None,
) -> str:
    """What was run, in words that are true for the mode: the faithful mode has no latency, queue or
    clean-up; the cont-kukanov mode is the simulator, whose clean-up takes what is unfilled at the close."""
    start, end = window
    minutes = (end - start) / NS_PER_SECOND / 60
    date = str(np.datetime64(int(start), "ns").astype("datetime64[D]"))
    head = (
        f"{side.capitalize()} {order_size:,} shares · window {wall_clock(start)}–{wall_clock(end)} UTC "
        f"{date} ({minutes:.1f} min) · mode {mode}"
    )
    if sim_market is None:
        how = (
            "faithful replay of the specification: every child fill takes a displayed quote at its "
            "snapshot's time and price; no latency, no queue, no clean-up"
        )
    else:
        settings = sim_market.settings
        latency = settings.latency.report()
        jitter = f" + up to {latency['jitter_ms']:g} ms jitter" if latency.get("jitter_ms") else ""
        how = (
            f"queue simulator: {latency.get('latency_ms', 0):g} ms order-entry latency{jitter}, "
            f"{settings.queue.name} queue model, resting orders fill only when trades reach them; "
            "what is unfilled at the window's end is bought by a clean-up market order"
            if side == "buy"
            else f"queue simulator: {latency.get('latency_ms', 0):g} ms order-entry latency{jitter}, "
            f"{settings.queue.name} queue model, resting orders fill only when trades reach them; "
            "what is unsold at the window's end is sold by a clean-up market order"
        )
    return head + "\n" + "\n".join(textwrap.wrap(how, 150))


def lane_summary(s: FillSeries, order_size: int) -> str:
    """Under a lane's name: how many child fills, when the last one came, and anything left unfilled."""
    if not len(s.shares):
        return "no fills"
    short = order_size - int(s.cum_shares[-1])
    left = f" · {short:,} unfilled" if short > 0 else (f" · {-short:,} overfilled" if short < 0 else "")
    return f"{len(s.shares)} fills · last {offset_label(float(s.seconds[-1]))}{left}"


def _style(name: str, index: int) -> Style:
    return STYLES.get(name) or Style(name, OTHER_COLORS[index % len(OTHER_COLORS)], "-", 1.6)


def _marker_area(shares: npt.NDArray[np.int64], largest: int) -> npt.NDArray[np.float64]:
    return np.maximum(MAX_MARKER_AREA * shares / max(largest, 1), MIN_MARKER_AREA)


def _aggregate(s: FillSeries) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fills at the same time, venue and liquidity drawn as one marker of their total size."""
    if not len(s.shares):
        return s.seconds, s.venue, s.kind, s.shares
    keys = np.rec.fromarrays([s.seconds, s.venue, s.kind.astype("<U7")])
    unique, inverse = np.unique(keys, return_inverse=True)
    total = np.bincount(inverse.ravel(), weights=s.shares).astype(np.int64)
    return unique["f0"], unique["f1"], unique["f2"], total


def _time_axis(ax: Axes, arrival_ns: int, linthresh: float, left: float, right: float) -> None:
    import matplotlib.ticker as mticker

    ax.set_xscale("symlog", linthresh=linthresh, linscale=1.0)
    ax.set_xlim(left, right)
    ticks = [0.0] + [t for t in TIME_TICKS if linthresh <= t <= right]
    ax.xaxis.set_major_locator(mticker.FixedLocator(ticks))
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda x, _pos: time_tick_label(x, arrival_ns)))
    ax.xaxis.set_minor_locator(mticker.SymmetricalLogLocator(linthresh=linthresh, base=10, subs=range(2, 10)))
    ax.xaxis.set_minor_formatter(mticker.NullFormatter())
    ax.tick_params(axis="x", labelsize=8.5)
    ax.grid(True, axis="x", which="major", alpha=0.35)


def _key(label: str, **marker: Any) -> Any:
    """A legend entry that is only a marker."""
    from matplotlib.lines import Line2D

    style: dict[str, Any] = {"marker": "o", "color": "dimgrey", "linestyle": "none", "markersize": 8}
    style |= marker
    return Line2D([], [], label=label, **style)


TAKER: dict[str, Any] = {"markeredgecolor": "black", "markeredgewidth": 0.4}
MAKER: dict[str, Any] = {"markerfacecolor": "none", "markeredgewidth": 1.3}
CLEANUP: dict[str, Any] = {"fillstyle": "bottom", "markerfacecoloralt": "white", "markeredgewidth": 1.4}


def _draw_fills(
    ax: Axes, series: dict[str, FillSeries], styles: dict[str, Style], n_venues: int, order_size: int
) -> None:
    """Every child fill: a lane per strategy, a row per venue inside it, so nothing hides behind anything."""
    row_gap = 0.8 / max(n_venues, 1)
    largest = max([int(_aggregate(s)[3].max()) for s in series.values() if len(s.shares)] + [1])
    labels = []
    for i, (name, s) in enumerate(series.items()):
        st, y0 = styles[name], -float(i)
        ax.axhspan(y0 - 0.48, y0 + 0.48, color=st.color, alpha=0.06, linewidth=0)
        for v in range(n_venues):  # faint row guides: a marker's row names its venue as its shape does
            ax.axhline(y0 - (v - (n_venues - 1) / 2) * row_gap, color="grey", linewidth=0.4, alpha=0.25)
        labels.append(f"{st.label}\n{lane_summary(s, order_size)}")
        secs, venue, kind, shares = _aggregate(s)
        y = y0 - (venue - (n_venues - 1) / 2) * row_gap
        area = _marker_area(shares, largest)
        for v in np.unique(venue):
            marker = VENUE_MARKERS[int(v) % len(VENUE_MARKERS)]
            for k in ("taker", "maker"):
                pick = (venue == v) & (kind == k)
                if pick.any():
                    ax.scatter(
                        secs[pick],
                        y[pick],
                        s=area[pick],
                        marker=marker,
                        facecolors=st.color if k == "taker" else "none",
                        edgecolors=st.color if k == "maker" else "black",
                        linewidths=MAKER["markeredgewidth"] if k == "maker" else TAKER["markeredgewidth"],
                        zorder=3,
                    )
            # Half-filled: a market order, but only because time ran out (scatter has no half fill).
            pick = (venue == v) & (kind == "cleanup")
            for x, yy, a in zip(secs[pick], y[pick], area[pick], strict=True):
                size = max(math.sqrt(a), 8.0)
                ax.plot([x], [yy], marker=marker, markersize=size, color=st.color, zorder=4, **CLEANUP)
    ax.set_yticks(-np.arange(len(series), dtype=float), labels, fontsize=9)
    for tick, name in zip(ax.get_yticklabels(), series, strict=True):
        tick.set_color(styles[name].color)
    ax.set_ylim(-len(series) + 0.5, 0.5)
    ax.set_title(
        "child fills: one lane per strategy, one row per venue inside it (marker area ∝ shares)",
        fontsize=10,
        loc="left",
    )


def _draw_curves(
    ax_shares: Axes,
    ax_cost: Axes,
    series: dict[str, FillSeries],
    styles: dict[str, Style],
    twins: dict[str, str],
    bench: Benchmark,
    order_size: int,
    right: float,
) -> None:
    """Cumulative shares, and cumulative shortfall against the arrival mid (bps left, $ right); each curve
    runs on flat after its last fill, since nothing changes once a strategy is done."""
    side_word = "paid above" if bench.mid is None or bench.mid > 0 else "sold below"
    for name, s in series.items():
        st = styles[name]
        kw: dict[str, Any] = {"color": st.color, "linestyle": st.linestyle, "linewidth": st.linewidth}
        label = st.label + (f" (same fills as {styles[twins[name]].label})" if name in twins else "")
        x = np.concatenate(([0.0], s.seconds, [right]))
        end = s.cum_shares[-1:] if len(s.shares) else np.zeros(1, np.int64)
        ax_shares.step(x, np.concatenate(([0], s.cum_shares, end)), where="post", label=label, **kw)
        if bench.mid is not None and len(s.shares):
            bps = np.concatenate(([0.0], s.shortfall_bps, s.shortfall_bps[-1:]))
            ax_cost.step(x, bps, where="post", **kw)
    top = max([order_size] + [int(s.cum_shares[-1]) for s in series.values() if len(s.shares)])
    ax_shares.axhline(order_size, color="grey", linewidth=0.8, linestyle=":")
    ax_shares.set_ylim(0, top * 1.08)
    ax_shares.set_ylabel("shares filled\n(cumulative)")
    ax_cost.axhline(0, color="grey", linewidth=0.8)
    ax_cost.set_ylabel(f"shortfall vs arrival mid\n(cumulative, bps; higher = worse:\n{side_word} the mid)")
    for ax in (ax_shares, ax_cost):
        ax.grid(True, axis="y", alpha=0.3)
    mid_text = "unknown" if bench.mid is None else f"{abs(bench.mid):.4f}"
    ax_cost.set_title(
        f"shortfall against the arrival mid {mid_text} ({bench.what}), fees and rebates included",
        fontsize=10,
        loc="left",
    )
    if bench.mid is None:
        ax_cost.text(
            0.5,
            0.5,
            "no arrival mid: the book never showed both sides",
            transform=ax_cost.transAxes,
            ha="center",
        )
        return
    notional = order_size * abs(bench.mid)

    def to_dollars(bps: npt.ArrayLike) -> npt.ArrayLike:
        return np.asarray(bps) * notional / 10_000

    def to_bps(dollars: npt.ArrayLike) -> npt.ArrayLike:
        return np.asarray(dollars) * 10_000 / notional

    dollars = ax_cost.secondary_yaxis("right", functions=(to_dollars, to_bps))
    dollars.set_ylabel("$ (cumulative)")


def _draw_keys(
    ax_key: Axes, ax_lines: Axes, ax_shares: Axes, names: Sequence[str], simulated: bool, marks: list[tuple]
) -> None:
    """Venue shapes and liquidity fills (top right), strategies and the vertical marks (middle right)."""
    ax_key.axis("off")
    venues = [_key(n, marker=VENUE_MARKERS[v % len(VENUE_MARKERS)]) for v, n in enumerate(names)]
    liquidity = [_key("taker: took a displayed quote", **TAKER)]
    if simulated:
        liquidity += [
            _key("maker: resting order filled", **MAKER),
            _key("clean-up after the window", **CLEANUP),
        ]
    common: dict[str, Any] = {"fontsize": 8, "title_fontsize": 9, "frameon": False, "loc": "upper left"}
    ax_key.add_artist(ax_key.legend(handles=venues, title="venue (marker shape, row)", **common))
    ax_key.legend(handles=liquidity, title="liquidity (marker fill)", bbox_to_anchor=(0, 0.42), **common)
    ax_lines.axis("off")
    handles, labels = ax_shares.get_legend_handles_labels()
    for handle, label in marks:
        handles.append(handle)
        labels.append(label)
    ax_lines.legend(handles, labels, title="strategy", **(common | {"loc": "center left"}))


def build_figure(
    executions: dict[str, Execution],
    market: Market,
    mode: str,
    venue_names: Sequence[str] | None = None,
    sim_market: SimMarket | None = None,
) -> Figure:
    """The figure, not yet written (tests read its artists); `plot_executions` saves it."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    snaps = market.snapshots
    names = list(venue_names) if venue_names is not None else [f"publisher {p}" for p in snaps.publisher_ids]
    bench = sim_benchmark(sim_market) if sim_market is not None else faithful_benchmark(snaps)
    order_size = next(iter(executions.values())).order_size
    series = {name: fill_series(ex, snaps.ts_event, bench) for name, ex in executions.items()}
    styles = {name: _style(name, i) for i, name in enumerate(executions)}
    if snaps.side == "sell" and "best_ask" in styles:  # the report's key; on a sell it hits the best bid
        styles["best_ask"] = dataclasses.replace(styles["best_ask"], label="best_ask (best bid)")
    twins: dict[str, str] = {}
    for i, name in enumerate(executions):
        twin = next((o for o in list(executions)[:i] if same_fills(executions[name], executions[o])), None)
        if twin is not None:
            twins[name] = twins.get(twin, twin)

    window_end = (market.window_end_ns - bench.ts_ns) / NS_PER_SECOND
    cleanup_at = None if sim_market is None else (sim_market.cleanup_time - bench.ts_ns) / NS_PER_SECOND
    filled = [s for s in series.values() if len(s.seconds)]
    right = max([float(s.seconds.max()) for s in filled] + [window_end]) * 1.6
    linthresh = linear_threshold(list(series.values()))
    left = min([-0.25 * linthresh] + [1.3 * float(s.seconds.min()) for s in filled])  # fills at 0 drawn whole

    fig = plt.figure(figsize=(14, 11), layout="constrained")
    grid = fig.add_gridspec(3, 2, width_ratios=[4.2, 1.4], height_ratios=[1.45, 0.85, 1.0])
    ax_fills = fig.add_subplot(grid[0, 0])
    ax_shares = fig.add_subplot(grid[1, 0], sharex=ax_fills)
    ax_cost = fig.add_subplot(grid[2, 0], sharex=ax_fills)
    end_style: dict[str, Any] = {"color": "black", "linewidth": 0.9, "linestyle": (0, (4, 3)), "alpha": 0.7}
    cleanup_style: dict[str, Any] = {"color": "black", "linewidth": 0.9, "alpha": 0.35}
    marks: list[tuple] = [(Line2D([], [], **end_style), f"window end {wall_clock(market.window_end_ns)}")]
    if cleanup_at is not None:
        marks.append((Line2D([], [], **cleanup_style), "clean-up sent"))
    for ax in (ax_fills, ax_shares, ax_cost):
        _time_axis(ax, bench.ts_ns, linthresh, left, right)
        ax.axvline(window_end, **end_style)
        if cleanup_at is not None:
            ax.axvline(cleanup_at, **cleanup_style)
    for ax in (ax_fills, ax_shares):
        ax.tick_params(axis="x", labelbottom=False)
    late = bench.ts_ns - market.window_start_ns
    delay = f", {offset_label(late / NS_PER_SECOND)[1:]} after the window start" if late > 0 else ""
    ax_cost.set_xlabel(
        f"time since the arrival at {wall_clock(bench.ts_ns, 6)} UTC{delay}\n"
        f"symlog scale: linear below {offset_label(linthresh)[1:]}, logarithmic above · each tick: the "
        "offset, then the UTC wall clock HH:MM:SS"
    )

    _draw_fills(ax_fills, series, styles, len(names), order_size)
    _draw_curves(ax_shares, ax_cost, series, styles, twins, bench, order_size, right)
    _draw_keys(
        fig.add_subplot(grid[0, 1]),
        fig.add_subplot(grid[1, 1]),
        ax_shares,
        names,
        sim_market is not None,
        marks,
    )
    _final_panel(fig.add_subplot(grid[2, 1]), executions, series, styles, order_size)
    window = (market.window_start_ns, market.window_end_ns)
    fig.suptitle(title_text(mode, snaps.side, order_size, window, sim_market), fontsize=11)
    return fig


def signed(value: float, decimals: int = 2) -> str:
    """+0.54 / −1.23, with a true minus sign."""
    text = f"{value:+.{decimals}f}"
    return f"{0:.{decimals}f}" if float(text) == 0 else text.replace("-", "−")


def signed_dollars(value: float) -> str:
    """+$60 / −$137: the sign first, as a reader says it."""
    whole = round(abs(value))
    return f"{'' if whole == 0 else '−' if value < 0 else '+'}${whole:,}"


def final_shortfalls(series: dict[str, FillSeries]) -> dict[str, tuple[float, float] | None]:
    """Each strategy's total shortfall (bps, $): where its cumulative curve ends; None without fills or mid."""
    out: dict[str, tuple[float, float] | None] = {}
    for name, s in series.items():
        ok = len(s.shares) > 0 and bool(np.isfinite(s.shortfall_bps[-1]))
        out[name] = (float(s.shortfall_bps[-1]), float(s.shortfall_usd[-1])) if ok else None
    return out


def _final_panel(
    ax: Axes,
    executions: dict[str, Execution],
    series: dict[str, FillSeries],
    styles: dict[str, Style],
    order_size: int,
) -> None:
    """Each strategy's total shortfall as a bar with its value in bps and $, its average price, and for a
    baseline the router's difference to it: the numbers a $50 gap needs to be read, not guessed."""
    ax.set_title("total shortfall vs arrival mid", fontsize=10, loc="left")
    names = list(series)
    ys = -np.arange(len(names), dtype=float)
    totals = final_shortfalls(series)
    finite = [t[0] for t in totals.values() if t is not None]
    span = max([abs(v) for v in finite] + [1e-9])
    lo, hi = min([*finite, 0.0]), max([*finite, 0.0])
    router = totals.get("optimized")
    for y, name in zip(ys, names, strict=True):
        avg = market_avg_px(executions[name])
        lines = ["no fills" if avg is None else f"avg px {avg:.4f}"]
        total = totals[name]
        if total is None:
            ax.text(0, y, " " + lines[0], va="center", fontsize=7)
            continue
        bps, usd = total
        part = int(series[name].cum_shares[-1])
        if part != order_size:
            lines.append(f"{part:,} of {order_size:,} sh")
        if router is not None and name != "optimized":
            lines.append(f"router − this: {signed(router[0] - bps)} bps")
        ax.barh(y, bps, height=0.55, color=styles[name].color, alpha=0.85)
        text = f"{signed(bps)} bps  {signed_dollars(usd)}\n" + "\n".join(lines)
        # Always right of the bar and of 0, clear of the strategy names.
        ax.text(max(bps, 0.0) + 0.04 * span, y, text, va="center", ha="left", fontsize=7)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(ys, [styles[n].label.replace(" (optimized)", "") for n in names], fontsize=8)
    for tick, name in zip(ax.get_yticklabels(), names, strict=True):
        tick.set_color(styles[name].color)
    ax.set_xlim(lo - 0.05 * span if lo < 0 else 0, hi + 1.3 * span)
    ax.set_ylim(ys[-1] - 0.6, 0.6)
    ax.set_xlabel("bps of the order's notional (higher = worse)", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)


def plot_executions(
    executions: dict[str, Execution],
    market: Market,
    mode: str,
    path: str | Path,
    *,
    venue_names: Sequence[str] | None = None,
    sim_market: SimMarket | None = None,
) -> None:
    """Write the figure; a one-line error if matplotlib is missing or the file cannot be written."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed, none opened
        import matplotlib.pyplot as plt
    except ImportError:
        raise SettingError("{plot} needs matplotlib: pip install -r requirements.txt", plot="plot") from None
    fig = build_figure(executions, market, mode, venue_names, sim_market)
    try:
        fig.savefig(path, dpi=110)
    except (OSError, ValueError) as exc:
        reason = SettingError.literal(f"{path}: cannot write the picture ({exc})")
        raise SettingError("{plot} " + reason, plot="plot") from None
    finally:
        plt.close(fig)
