"""Synthetic multi-venue Databento MBP-10 day: the project's recorded dataset and its generator.

Why synthetic: the public trial file (`l1_day.csv`) is one venue (Nasdaq only) and we may not
redistribute it, yet a smart order router is only worth testing when venues compete. `generate`
makes a frame in exactly the trial file's CSV format (see `allocator.data.schema`) with six real
Databento publishers quoting around ONE shared latent price, so allocation decisions matter.

Model, in one paragraph: a latent "efficient" mid price moves in half-tick jumps around a rising
trend (pinned so the main venue's best ask is 222.83 at 13:36:32.5, like the trial file;
`allocator.synth.latent`). Each venue keeps its own 10+ level book (`allocator.synth.book`), learns
of each latent move after a venue-specific delay (so the NBBO is locked/crossed only briefly),
removes its stale side by trades or cancels, re-quotes at a target 1-3 ticks wide, and in between
emits background adds, cancels, modifies, trades and hidden fills in bursts. Every row shows the
book after its message, as Databento MBP does. Writing: `allocator.synth.csv_writer`; statistics:
`allocator.synth.stats`; the command line: `allocator.synth.cli`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocator.data.schema import LEVEL_FIELDS, MAX_LEVELS, MBP10_COLUMNS, RTYPE_MBP10, level_column
from allocator.errors import SettingError
from allocator.synth.book import VenueBook
from allocator.synth.clock import (
    DEFAULT_DATE,
    DEFAULT_END,
    DEFAULT_START,
    NS_PER_SECOND,
    midnight_ns,
    parse_clock,
    trial_window_seconds,
)
from allocator.synth.latent import PIN_ASK_TICKS, TREND_RISE_TICKS, LatentPath, latent_path
from allocator.synth.randomness import Uniforms, activity_factor
from allocator.synth.venues import INSTRUMENT_ID, SYMBOL, VENUES, VenueSpec

DEFAULT_SEED = 20240801
_GRID = 0.01  # seconds per bin of the activity factors


@dataclass
class _VenueRows:
    """One venue's simulated rows before stamping; times in ns after the window start."""

    spec: VenueSpec
    ts_event: np.ndarray
    action: list[str]
    side: list[str]
    depth: np.ndarray
    price: np.ndarray
    size: np.ndarray
    book: np.ndarray  # (n, 60) in schema level order, prices in ticks (-1 = empty)


def _window_seconds(start: str, end: str) -> tuple[float, float]:
    """The `start`/`end` settings as seconds after midnight, end after start."""
    t_lo = parse_clock(start, "start")
    t_hi = parse_clock(end, "end")
    if t_hi <= t_lo:
        raise SettingError(
            "{end} " + SettingError.literal(end) + " must be after {start} " + SettingError.literal(start),
            end="end",
            start="start",
        )
    return t_lo, t_hi


def _market(
    rng: np.random.Generator, t_lo: float, t_hi: float, rise_ticks: float, pin_ask_ticks: int = PIN_ASK_TICKS
) -> tuple[LatentPath, np.ndarray]:
    """The latent path inside the window and the market-wide activity factor over it.

    Both are drawn over the window widened to include the pin time, so the path is the same
    whichever window is asked for around it.
    """
    t_pin, window_end = trial_window_seconds()
    span = window_end - t_pin
    path_lo, path_hi = min(t_lo, t_pin), max(t_hi, t_pin)
    n_bins = math.ceil((path_hi - path_lo) / _GRID) + 1
    act_full = activity_factor(rng, n_bins, _GRID, tau=20.0, sigma=0.35)
    path = latent_path(
        Uniforms(rng), path_lo, path_hi, t_pin, span, act_full, _GRID, rise_ticks, pin_ask_ticks
    )
    off = round((t_lo - path_lo) / _GRID)
    return path.within(t_lo, t_hi), act_full[off : off + math.ceil((t_hi - t_lo) / _GRID)]


def _schedule(
    spec: VenueSpec,
    rng: np.random.Generator,
    t_lo: float,
    t_hi: float,
    path: LatentPath,
    market_act: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """When the venue acts: (ns after t_lo, latent-move index or -1 for background, m2 per move)."""
    n_bins = len(market_act)
    own_act = activity_factor(rng, n_bins, _GRID, tau=8.0, sigma=0.45)
    intensity = spec.bg_rate / spec.packet_mean * market_act**0.7 * own_act * _GRID
    counts = rng.poisson(intensity)
    bg_t = np.repeat(t_lo + np.arange(n_bins) * _GRID, counts) + rng.random(int(counts.sum())) * _GRID
    # a latent move also excites follow-up activity for a fraction of a second
    n_follow = rng.poisson(0.6, len(path.times))
    follow_t = np.repeat(path.times, n_follow) + rng.exponential(0.15, int(n_follow.sum()))
    bg_t = np.sort(np.concatenate([bg_t, follow_t[follow_t < t_hi]]))
    # reaction delays: mostly milliseconds, now and then a slow (stale) venue
    delay = spec.react_min_ms + rng.exponential(spec.react_ms, len(path.times))
    slow = rng.random(len(path.times)) < 0.03
    delay[slow] += rng.exponential(60.0, int(slow.sum()))
    react_t = np.maximum.accumulate(path.times + delay / 1000.0)
    keep = react_t < t_hi
    react_t, react_m2 = react_t[keep], path.m2[keep]

    times = np.concatenate([react_t, bg_t])
    kinds = np.concatenate([np.arange(len(react_t)), np.full(len(bg_t), -1)])
    order = np.argsort(times, kind="stable")
    times_ns = np.round((times[order] - t_lo) * NS_PER_SECOND).astype(np.int64)
    return times_ns, kinds[order], react_m2


def _play(
    book: VenueBook, u: Uniforms, times_ns: np.ndarray, kinds: np.ndarray, react_m2: np.ndarray
) -> None:
    """Run the schedule through the book: a reaction per latent move, a burst per background event."""
    packet_mean = book.spec.packet_mean
    for ts, k in zip(times_ns.tolist(), kinds.tolist(), strict=True):
        if k >= 0:
            book.react(ts, int(react_m2[k]))
            continue
        n = 1
        while u() < 1.0 - 1.0 / packet_mean and n < 8:
            n += 1
        for _ in range(n):
            book.background(ts)
            if u() > 0.3:
                ts = book.last_ts + 300 + int(u.expo(15_000))


def _rows_before(book: VenueBook, end_ns: int) -> _VenueRows:
    """The book's recorded rows with ts_event before `end_ns` (a burst may spill a few µs past the end)."""
    ts_event = np.asarray(book.ts, dtype=np.int64)
    n = int(np.searchsorted(ts_event, end_ns, side="left"))
    return _VenueRows(
        spec=book.spec,
        ts_event=ts_event[:n],
        action=book.action[:n],
        side=book.side[:n],
        depth=np.asarray(book.depth[:n], dtype=np.int64),
        price=np.asarray(book.price[:n], dtype=np.int64),
        size=np.asarray(book.size[:n], dtype=np.int64),
        book=np.asarray(book.book[: n * 6 * MAX_LEVELS], dtype=np.int64).reshape(n, 6 * MAX_LEVELS),
    )


def _simulate_venue(
    spec: VenueSpec,
    rng: np.random.Generator,
    t_lo: float,
    t_hi: float,
    path: LatentPath,
    market_act: np.ndarray,
) -> _VenueRows:
    """Run one venue through the window; venues interact only through the shared latent path."""
    u = Uniforms(rng)  # draws lazily: its first batch comes after the schedule's draws
    times_ns, kinds, react_m2 = _schedule(spec, rng, t_lo, t_hi, path, market_act)
    book = VenueBook(spec, u, path.m2_start)
    _play(book, u, times_ns, kinds, react_m2)
    return _rows_before(book, round((t_hi - t_lo) * NS_PER_SECOND))


def _stamp(rows: _VenueRows, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ts_recv, flags and sequence for one venue, as its feed handler would stamp them."""
    ts_event = rows.ts_event
    n = len(ts_event)
    new_event = np.r_[True, ts_event[1:] != ts_event[:-1]]
    event_id = np.cumsum(new_event) - 1
    lat = rows.spec.latency_us * 1000.0 * np.exp(0.25 * rng.standard_normal(int(new_event.sum())))
    spikes = rng.random(len(lat)) < 0.01
    lat[spikes] *= 1.0 + rng.exponential(2.0, int(spikes.sum()))
    raw = ts_event + np.round(lat[event_id]).astype(np.int64)
    # messages a few microseconds apart leave in one packet and share ts_recv
    close = np.r_[False, np.diff(ts_event) < 3000]
    start = np.maximum.accumulate(np.where(close, 0, np.arange(n)))
    ts_recv = np.maximum(raw[start], ts_event + 15_000)
    ts_recv = np.maximum.accumulate(ts_recv)
    last_in_packet = np.r_[ts_recv[1:] != ts_recv[:-1], True]
    flags = np.where(last_in_packet, 128, 0).astype(np.int64)
    same_packet = np.r_[False, ts_recv[1:] == ts_recv[:-1]]
    gaps = rng.geometric(1.0 / rows.spec.seq_gap, n)
    sequence = rows.spec.seq_start + np.cumsum(np.where(same_packet, 1, gaps))
    return ts_recv, flags, sequence


def _venue_columns(rows: _VenueRows, rng: np.random.Generator, base_ns: int) -> dict[str, np.ndarray]:
    """One venue's stamped rows as raw columns, times in ns since the epoch."""
    ts_recv, flags, sequence = _stamp(rows, rng)
    return {
        "ts_recv": ts_recv + base_ns,
        "ts_event": rows.ts_event + base_ns,
        "publisher_id": np.full(len(rows.ts_event), rows.spec.publisher_id, dtype=np.int64),
        "action": np.asarray(rows.action, dtype="U1"),
        "side": np.asarray(rows.side, dtype="U1"),
        "depth": rows.depth,
        "price": rows.price,
        "size": rows.size,
        "flags": flags,
        "sequence": sequence,
        "book": rows.book,
    }


def _prices(ticks: np.ndarray) -> np.ndarray:
    """Prices in dollars from ticks, NaN for an empty level."""
    return np.where(ticks >= 0, ticks / 100.0, np.nan)


def _export_frame(
    parts: list[dict[str, np.ndarray]], symbol: str = SYMBOL, instrument_id: int = INSTRUMENT_ID
) -> pd.DataFrame:
    """All venues' rows merged and sorted by ts_recv like an export, in the MBP-10 column layout."""
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.lexsort((cat["sequence"], cat["publisher_id"], cat["ts_recv"]))
    cat = {k: v[order] for k, v in cat.items()}
    n = len(order)
    cols: dict[str, object] = {
        "ts_recv": pd.to_datetime(cat["ts_recv"], unit="ns", utc=True),
        "ts_event": pd.to_datetime(cat["ts_event"], unit="ns", utc=True),
        "rtype": np.full(n, RTYPE_MBP10, dtype=np.int64),
        "publisher_id": cat["publisher_id"],
        "instrument_id": np.full(n, instrument_id, dtype=np.int64),
        "action": cat["action"],
        "side": cat["side"],
        "depth": cat["depth"],
        "price": _prices(cat["price"]),
        "size": cat["size"],
        "flags": cat["flags"],
        "ts_in_delta": cat["ts_recv"] - cat["ts_event"],
        "sequence": cat["sequence"],
    }
    book = cat["book"]
    for lvl in range(MAX_LEVELS):
        for j, field in enumerate(LEVEL_FIELDS):
            values = book[:, 6 * lvl + j]
            cols[level_column(field, lvl)] = _prices(values) if field.endswith("_px") else values
    cols["symbol"] = np.full(n, symbol)
    df = pd.DataFrame(cols)
    assert tuple(df.columns) == MBP10_COLUMNS
    return df


def generate(
    seed: int = DEFAULT_SEED,
    start: str = DEFAULT_START,
    end: str = DEFAULT_END,
    date: str = DEFAULT_DATE,
    venues: Sequence[VenueSpec] = VENUES,
    trend_rise_ticks: float = TREND_RISE_TICKS,
    instrument: Instrument | None = None,
) -> pd.DataFrame:
    """Generate the multi-venue MBP-10 rows for [start, end) UTC, sorted by ts_recv like an export.

    Deterministic in `seed` (and the other arguments): the latent path and each venue draw from
    their own child of one numpy SeedSequence, so windows and venue sets stay reproducible.
    `trend_rise_ticks` is the latent trend's rise over the trial window: the shipped file keeps the
    trial-like +38 ticks; study paths draw it per seed (`study_trend_ticks`), so they go up, flat and down.
    `instrument` names the symbol and its price level (default AAPL at 222.83).
    """
    instrument = instrument or Instrument(SYMBOL, INSTRUMENT_ID, PIN_ASK_TICKS)
    t_lo, t_hi = _window_seconds(start, end)
    children = np.random.SeedSequence(seed).spawn(1 + len(venues))
    path, market_act = _market(
        np.random.default_rng(children[0]), t_lo, t_hi, trend_rise_ticks, instrument.pin_ask_ticks
    )
    base_ns = midnight_ns(date) + round(t_lo * NS_PER_SECOND)
    parts: list[dict[str, np.ndarray]] = []
    for i, spec in enumerate(venues):
        rng_v = np.random.default_rng(children[1 + i])
        rows = _simulate_venue(spec, rng_v, t_lo, t_hi, path, market_act)
        parts.append(_venue_columns(rows, rng_v, base_ns))
    return _export_frame(parts, instrument.symbol, instrument.instrument_id)


@dataclass(frozen=True)
class Instrument:
    """A generated symbol: its name, Databento-style instrument id and price level (the main venue's best
    ask at the pin time, in ticks)."""

    symbol: str
    instrument_id: int
    pin_ask_ticks: int


# Other symbols for multi-symbol files: synthetic markets at their own price levels (2024-08-01-like
# closes), each from its own seed. The ids are made up; only AAPL's (38) is the trial file's.
INSTRUMENTS = {
    "AAPL": Instrument("AAPL", INSTRUMENT_ID, PIN_ASK_TICKS),
    "MSFT": Instrument("MSFT", 10888, 41835),
    "NVDA": Instrument("NVDA", 11667, 10921),
    "AMZN": Instrument("AMZN", 3695, 18407),
    "META": Instrument("META", 11291, 49771),
}


def generate_symbols(
    symbols: Sequence[str],
    seed: int = DEFAULT_SEED,
    start: str = DEFAULT_START,
    end: str = DEFAULT_END,
    date: str = DEFAULT_DATE,
) -> pd.DataFrame:
    """Several symbols' markets in one export, sorted by ts_recv (then publisher, instrument, sequence).

    The first symbol is generated exactly as `generate` would with `seed` (so AAPL first keeps the shipped
    file's market); each later one from its own seed, with a trend rise drawn as study paths draw theirs.
    """
    unknown = [s for s in symbols if s not in INSTRUMENTS]
    if unknown or not symbols:
        raise SettingError(
            "{symbols} "
            + SettingError.literal(",".join(symbols))
            + f": the generator knows {', '.join(INSTRUMENTS)}; give some of those, comma-separated",
            symbols="symbols",
        )
    frames = []
    for i, symbol in enumerate(symbols):
        symbol_seed = seed if i == 0 else seed + 1000 * i
        rise = TREND_RISE_TICKS if i == 0 else study_trend_ticks(symbol_seed)
        frames.append(
            generate(symbol_seed, start, end, date, trend_rise_ticks=rise, instrument=INSTRUMENTS[symbol])
        )
    merged = pd.concat(frames, ignore_index=True)
    order = np.lexsort(
        (
            merged["sequence"].to_numpy(),
            merged["instrument_id"].to_numpy(),
            merged["publisher_id"].to_numpy(),
            merged["ts_recv"].to_numpy(),
        )
    )
    return merged.iloc[order].reset_index(drop=True)


# Study paths: the trend's rise over the trial window is drawn per seed from Normal(0, 38 ticks), zero-mean
# with the shipped file's rise as one standard deviation, from a stream of its own (not the path's), so a
# seed's market does not change with or without its drift.
STUDY_TREND_SD_TICKS = TREND_RISE_TICKS
_STUDY_TREND_STREAM = 0x7472656E64  # "trend"


def study_trend_ticks(seed: int) -> float:
    """The latent trend's rise (ticks over the trial window) of study path `seed`: zero-mean, sd 38 ticks."""
    return float(np.random.default_rng([_STUDY_TREND_STREAM, seed]).normal(0.0, STUDY_TREND_SD_TICKS))
