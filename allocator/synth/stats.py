"""Statistics of an MBP CSV (the tables in data/README.md, `python -m allocator.synth --stats FILE`).

This reads a file on its own (`read_mbp_csv`) rather than through `allocator.data`: the statistics
describe the file as written, every row and column, before any window or snapshot rule of the router.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from allocator.data.schema import MAX_LEVELS, level_column
from allocator.data.venues import DEFAULT_VENUES_FILE, load_fee_table
from allocator.errors import UserError
from allocator.synth.clock import NS_PER_SECOND, midnight_ns, trial_window_seconds
from allocator.synth.venues import MAIN_PUBLISHER, TICK, VENUES

TOP_ASK_THRESHOLD = 5000  # the default parent order: top-of-book liquidity below/above it matters
UNKNOWN_FEE = 0.003  # taker fee assumed for a publisher the fee table does not list
# Approximate 2024 taker fees ($/share); used only when allocator/data/venues.toml is absent.
FALLBACK_TAKER_FEES: dict[int, float] = {2: 0.0030, 43: 0.0030, 5: 0.0030, 8: 0.0030, 38: 0.0009, 3: 0.0}
_NAN = float("nan")


@dataclass(frozen=True)
class VenueStats:
    """One venue's rows: message rate, its own spread in ticks, and its top ask size."""

    rows: int
    msg_per_s: float
    msg_per_s_p95: float  # over 1-second bins
    spread_p5: float
    spread_p50: float
    spread_p95: float
    spread_1_to_3_share: float
    top_ask_sz_p5: float
    top_ask_sz_p50: float
    top_ask_sz_p95: float
    top_ask_sz_max: float


@dataclass(frozen=True)
class ConsolidatedStats:
    """Cross-venue facts, one step per venue quote (see `quote_by_quote_consolidated`)."""

    ticks: int  # venue quotes counted, i.e. those after every venue had quoted
    locked_or_crossed_share: float
    crossed_ticks: int
    top_ask_below_threshold_share: float
    top_ask_total_p5: float
    top_ask_total_p50: float
    top_ask_total_p95: float
    cheapest_fee_differs_ticks: int  # quotes where the cheapest venue by ask + taker fee ≠ by ask alone
    nbbo_spread_p50_ticks: float


@dataclass(frozen=True)
class MainAskInWindow:
    """The main venue's best ask on a 1-second grid over the trial window: "buy evenly over it"."""

    first: float = _NAN
    average: float = _NAN
    last: float = _NAN


@dataclass(frozen=True)
class FileStats:
    """Measured statistics of an MBP-10 frame: the numbers data/README.md quotes."""

    rows: int
    distinct_ts_event: int
    first_ts_event: str
    last_ts_event: str
    ts_recv_sorted: bool
    ts_event_out_of_order_rows: int
    price_min: float  # over best bid and ask of every venue
    price_max: float
    actions: dict[str, int]
    sides: dict[str, int]
    venues: dict[int, VenueStats]
    venue_tick_quotes: int  # rows that are their venue's first at their ts_event
    consolidated: ConsolidatedStats
    main_ask: MainAskInWindow


def read_mbp_csv(path: str | Path) -> pd.DataFrame:
    """Read an MBP CSV (plain or .gz) for statistics; the project's loader is allocator.data."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    ts_type = pa.timestamp("ns", tz="UTC")
    types = {"ts_recv": ts_type, "ts_event": ts_type, "action": pa.string(), "side": pa.string()}
    for lvl in range(MAX_LEVELS):
        types[level_column("bid_px", lvl)] = pa.float64()
        types[level_column("ask_px", lvl)] = pa.float64()
    types["price"] = pa.float64()
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"{path}: not a readable MBP CSV ({str(exc).splitlines()[0]})") from exc
    return table.to_pandas()


def load_taker_fees(path: Path | None = None) -> dict[int, float]:
    """Taker fees by publisher id from the project's fee table (allocator/data/venues.toml).

    Falls back to typical 2024 fees only when the table file is missing, so `--stats` still works
    on a bare checkout.
    """
    path = path or DEFAULT_VENUES_FILE
    if not Path(path).exists():
        return dict(FALLBACK_TAKER_FEES)
    table = load_fee_table(path)
    fees = {pid: info.taker_fee for pid, info in table.venues.items()}
    for pid in FALLBACK_TAKER_FEES:
        fees.setdefault(pid, table.default.taker_fee)
    return fees


def _ns(series: pd.Series) -> np.ndarray:
    """Timestamps as int64 ns since the epoch."""
    return pd.to_datetime(series, utc=True).to_numpy(dtype=np.int64)


def venue_tick_quotes(df: pd.DataFrame) -> pd.DataFrame:
    """Each venue's first row at each of its ts_event, stably sorted by ts_event.

    These are the quotes the router takes from a venue at a tick where it sent messages; they are
    not the router's snapshots (`allocator.snapshots.rule.build_snapshots`), which are per tick over
    all venues. Their count equals that rule's fresh (tick, venue) pairs.
    """
    first = ~df.duplicated(subset=["ts_event", "publisher_id"], keep="first")
    quotes = df.loc[first]
    return quotes.sort_values("ts_event", kind="stable").reset_index(drop=True)


def quote_by_quote_consolidated(quotes: pd.DataFrame, fees: dict[int, float]) -> ConsolidatedStats:
    """Cross-venue facts after each venue quote, every venue at its latest quote so far.

    Not the router's snapshot rule (`allocator.snapshots.rule.build_snapshots`) and not meant to
    pose as it: this describes the file quote by quote (two venues quoting at one ts_event are two
    steps) and a quiet venue stands at the FIRST row of its latest ts_event, where the router carries
    the LAST. It is kept because data/README.md publishes its figures (and `--stats` must reproduce
    them); by the router's rule the shipped file has 0.54 % locked or crossed instead of 0.89 %, top
    ask p50 3,021 instead of 3,017, 84.8 % instead of 84.9 % below 5,000, 115,119 fee-changed cheapest
    venues instead of 113,765. Steps before every venue has quoted are left out.
    """
    pubs = sorted(quotes["publisher_id"].unique().tolist())
    n = len(quotes)
    pid = quotes["publisher_id"].to_numpy()
    ask = np.full((n, len(pubs)), np.nan)
    bid = np.full((n, len(pubs)), np.nan)
    asz = np.full((n, len(pubs)), np.nan)
    for j, p in enumerate(pubs):
        mine = pid == p
        for arr, col in ((ask, "ask_px_00"), (bid, "bid_px_00"), (asz, "ask_sz_00")):
            arr[mine, j] = quotes[col].to_numpy(dtype=float)[mine]
            arr[:, j] = pd.Series(arr[:, j]).ffill().to_numpy()
    ready = ~np.isnan(ask).any(axis=1) & ~np.isnan(bid).any(axis=1)
    return _consolidate(
        ask[ready], bid[ready], asz[ready], np.array([fees.get(p, UNKNOWN_FEE) for p in pubs])
    )


def _consolidate(ask: np.ndarray, bid: np.ndarray, asz: np.ndarray, fee: np.ndarray) -> ConsolidatedStats:
    """The figures from per-step, per-venue best asks, bids and ask sizes (venues in publisher order)."""
    nbo = ask.min(axis=1)
    nbb = bid.max(axis=1)
    by_ask = ask.argmin(axis=1)  # ties go to the lowest publisher id
    by_cost = (ask + fee).argmin(axis=1)
    top = asz.sum(axis=1)
    ticks = len(ask)

    def share(flags: np.ndarray) -> float:
        return float(flags.mean()) if ticks else _NAN

    def pct(values: np.ndarray, q: float) -> float:
        return float(np.percentile(values, q)) if ticks else _NAN

    return ConsolidatedStats(
        ticks=ticks,
        locked_or_crossed_share=share(nbb >= nbo - 1e-9),
        crossed_ticks=int((nbb > nbo + 1e-9).sum()),
        top_ask_below_threshold_share=share(top < TOP_ASK_THRESHOLD),
        top_ask_total_p5=pct(top, 5),
        top_ask_total_p50=pct(top, 50),
        top_ask_total_p95=pct(top, 95),
        cheapest_fee_differs_ticks=int((by_ask != by_cost).sum()),
        nbbo_spread_p50_ticks=pct((nbo - nbb) / TICK, 50),
    )


def venue_stats(df: pd.DataFrame, duration: float) -> dict[int, VenueStats]:
    """Per venue, by publisher id: rates over `duration` seconds, spreads and top ask sizes."""
    pid = df["publisher_id"].to_numpy()
    venues: dict[int, VenueStats] = {}
    for p in np.unique(pid).tolist():
        g = df[pid == p]
        spread = ((g["ask_px_00"] - g["bid_px_00"]) / TICK).round().to_numpy()
        secs = _ns(g["ts_event"]) // NS_PER_SECOND
        per_sec = np.bincount(secs - secs.min()) if len(secs) else np.zeros(1)
        top = g["ask_sz_00"].to_numpy()
        venues[int(p)] = VenueStats(
            rows=len(g),
            msg_per_s=len(g) / duration,
            msg_per_s_p95=float(np.percentile(per_sec, 95)),
            spread_p5=float(np.percentile(spread, 5)),
            spread_p50=float(np.percentile(spread, 50)),
            spread_p95=float(np.percentile(spread, 95)),
            spread_1_to_3_share=float(((spread >= 1) & (spread <= 3)).mean()),
            top_ask_sz_p5=float(np.percentile(top, 5)),
            top_ask_sz_p50=float(np.percentile(top, 50)),
            top_ask_sz_p95=float(np.percentile(top, 95)),
            top_ask_sz_max=float(top.max()),
        )
    return venues


def main_ask_in_window(quotes: pd.DataFrame, date: str) -> MainAskInWindow:
    """The main venue's best ask each second of the trial window on `date`: its latest quote then.

    Like `quote_by_quote_consolidated`, a quote is the venue's first row at its ts_event.
    """
    main = quotes[quotes["publisher_id"] == MAIN_PUBLISHER]
    if not len(main):
        return MainAskInWindow()
    start, end = trial_window_seconds()
    grid = midnight_ns(date) + np.round(np.arange(start, end, 1.0) * NS_PER_SECOND).astype(np.int64)
    idx = np.searchsorted(_ns(main["ts_event"]), grid, side="right") - 1
    asks = main["ask_px_00"].to_numpy()[idx[idx >= 0]]
    if not len(asks):
        return MainAskInWindow()
    return MainAskInWindow(float(asks[0]), float(asks.mean()), float(asks[-1]))


def _counts(column: pd.Series) -> dict[str, int]:
    """Rows per value, values in sorted order."""
    return {str(k): int(v) for k, v in column.value_counts().sort_index().items()}


def file_stats(df: pd.DataFrame, fees: dict[int, float] | None = None) -> FileStats:
    """Measured statistics of an MBP-10 frame: the numbers data/README.md quotes."""
    fees = load_taker_fees() if fees is None else fees
    ts_event = pd.to_datetime(df["ts_event"], utc=True)
    ev = _ns(ts_event)
    duration = (ev.max() - ev.min()) / NS_PER_SECOND if len(df) > 1 else _NAN
    quotes = venue_tick_quotes(df)
    return FileStats(
        rows=len(df),
        distinct_ts_event=int(pd.Series(ev).nunique()),
        first_ts_event=str(ts_event.min()),
        last_ts_event=str(ts_event.max()),
        ts_recv_sorted=bool((np.diff(_ns(df["ts_recv"])) >= 0).all()),
        ts_event_out_of_order_rows=int((np.diff(ev) < 0).sum()),
        price_min=float(df[["bid_px_00", "ask_px_00"]].min().min()),
        price_max=float(df[["bid_px_00", "ask_px_00"]].max().max()),
        actions=_counts(df["action"]),
        sides=_counts(df["side"]),
        venues=venue_stats(df, duration),
        venue_tick_quotes=len(quotes),
        consolidated=quote_by_quote_consolidated(quotes, fees),
        main_ask=main_ask_in_window(quotes, str(ts_event.iloc[0].date())) if len(df) else MainAskInWindow(),
    )


def _venue_table(venues: dict[int, VenueStats], names: dict[int, str]) -> list[str]:
    """The per-venue Markdown table."""
    lines = [
        "| venue (publisher_id) | rows | msg/s | msg/s p95 (1 s bins) | spread p5/p50/p95 (ticks) "
        "| rows with spread 1-3 ticks | top ask size p5/p50/p95 | top ask size max |",
        "|---|---:|---:|---:|---|---:|---|---:|",
    ]
    for pid, v in venues.items():
        lines.append(
            f"| {names.get(pid, '?')} ({pid}) | {v.rows:,} | {v.msg_per_s:.1f} | "
            f"{v.msg_per_s_p95:.0f} | {v.spread_p5:.0f} / {v.spread_p50:.0f} / "
            f"{v.spread_p95:.0f} | {100 * v.spread_1_to_3_share:.2f}% | "
            f"{v.top_ask_sz_p5:.0f} / {v.top_ask_sz_p50:.0f} / {v.top_ask_sz_p95:.0f} | "
            f"{v.top_ask_sz_max:,.0f} |"
        )
    return lines


def _file_rows(stats: FileStats) -> list[tuple[str, str]]:
    """(statistic, value) rows about the file as a whole."""
    main = stats.main_ask
    return [
        ("rows", f"{stats.rows:,}"),
        ("distinct ts_event", f"{stats.distinct_ts_event:,}"),
        ("snapshots (first row per ts_event, publisher_id)", f"{stats.venue_tick_quotes:,}"),
        ("ts_event range", f"{stats.first_ts_event} … {stats.last_ts_event}"),
        ("rows sorted by ts_recv", str(stats.ts_recv_sorted)),
        ("rows whose ts_event is earlier than the previous row's", f"{stats.ts_event_out_of_order_rows:,}"),
        ("actions", ", ".join(f"{k} {n:,}" for k, n in stats.actions.items())),
        ("sides", ", ".join(f"{k} {n:,}" for k, n in stats.sides.items())),
        ("price range (best bid/ask, all venues)", f"{stats.price_min:.2f} … {stats.price_max:.2f}"),
        ("main venue best ask at 13:36:32.5", f"{main.first:.2f}"),
        ("main venue best ask averaged over 13:36:32.5–13:45:15 (1 s grid)", f"{main.average:.3f}"),
        ("main venue best ask at 13:45:14.5", f"{main.last:.2f}"),
    ]


def _consolidated_rows(c: ConsolidatedStats) -> list[tuple[str, str]]:
    """(statistic, value) rows about the venues together."""
    return [
        ("ticks with all venues quoted", f"{c.ticks:,}"),
        ("share of ticks with NBBO locked or crossed", f"{100 * c.locked_or_crossed_share:.2f}%"),
        ("ticks with NBBO crossed", f"{c.crossed_ticks:,}"),
        ("NBBO spread p50 (ticks)", f"{c.nbbo_spread_p50_ticks:.0f}"),
        (
            "consolidated top ask size (sum of ask_sz_00) p5/p50/p95",
            f"{c.top_ask_total_p5:,.0f} / {c.top_ask_total_p50:,.0f} / {c.top_ask_total_p95:,.0f}",
        ),
        (
            f"share of ticks with consolidated top ask size < {TOP_ASK_THRESHOLD:,}",
            f"{100 * c.top_ask_below_threshold_share:.1f}%",
        ),
        ("ticks where cheapest venue by ask+taker fee ≠ by ask alone", f"{c.cheapest_fee_differs_ticks:,}"),
    ]


def stats_markdown(stats: FileStats, names: dict[int, str] | None = None) -> str:
    """The statistics as the Markdown tables pasted into data/README.md."""
    names = names or {v.publisher_id: v.name for v in VENUES}
    rows = _file_rows(stats) + _consolidated_rows(stats.consolidated)
    summary = ["| statistic | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows]]
    return "\n".join([*summary, "", *_venue_table(stats.venues, names)])
