"""The synthetic dataset: reproducible bytes, the exact Databento MBP-10 format, books that follow
their messages, and the properties of the shipped data/l1_day.csv.gz that the router tests rely on."""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocator.data.schema import MAX_LEVELS, MBP10_COLUMNS, level_column
from allocator.errors import SettingError
from allocator.snapshots.rule import build_snapshots
from allocator.synth.cli import main
from allocator.synth.clock import parse_clock
from allocator.synth.csv_writer import price_strings, sha256_file, to_csv_bytes, write_csv
from allocator.synth.generator import DEFAULT_SEED, generate
from allocator.synth.latent import LatentPath
from allocator.synth.stats import (
    FileStats,
    file_stats,
    quote_by_quote_consolidated,
    read_mbp_csv,
    venue_tick_quotes,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "data" / "l1_day.csv.gz"
SHORT_START, SHORT_END = "13:36:30", "13:36:45"
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
PRICE_RE = re.compile(r"^\d+(\.\d?[1-9])?$")  # shortest decimal: 222.8, 222.83, 223; never 222.80
VENUES = {2, 3, 5, 8, 38, 43}
NS = 1_000_000_000


def _gz_bytes(df: pd.DataFrame, tmp_path: Path, name: str) -> bytes:
    path = tmp_path / name
    write_csv(df, path)
    return path.read_bytes()


def _text_frame(csv: bytes) -> pd.DataFrame:
    """The CSV as strings exactly as written, to check formatting rather than parsed values."""
    return pd.read_csv(io.BytesIO(csv), dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def short_df() -> pd.DataFrame:
    return generate(seed=7, start=SHORT_START, end=SHORT_END)


@pytest.fixture(scope="module")
def short_csv(short_df: pd.DataFrame) -> bytes:
    return to_csv_bytes(short_df)


# ------------------------------------------------------------------------------ reproducibility


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    a = _gz_bytes(generate(seed=11, start=SHORT_START, end=SHORT_END), tmp_path, "a.csv.gz")
    b = _gz_bytes(generate(seed=11, start=SHORT_START, end=SHORT_END), tmp_path, "b.csv.gz")
    assert a == b
    # gzip header: no FNAME flag, mtime 0, so the bytes do not depend on when or where it ran
    assert a[3] & 0x08 == 0
    assert a[4:8] == b"\0\0\0\0"


def test_different_seed_gives_different_data(short_csv: bytes) -> None:
    other = to_csv_bytes(generate(seed=8, start=SHORT_START, end=SHORT_END))
    assert other != short_csv


# ------------------------------------------------------------------------------ format


def test_header_is_the_schema(short_csv: bytes) -> None:
    assert short_csv.split(b"\n", 1)[0].decode().split(",") == list(MBP10_COLUMNS)
    assert len(MBP10_COLUMNS) == 74


def test_fields_are_written_like_the_export(short_csv: bytes) -> None:
    text = _text_frame(short_csv)
    for col in ("ts_recv", "ts_event"):
        assert text[col].str.match(TS_RE).all(), col
    assert (text["rtype"] == "10").all()
    assert (text["instrument_id"] == "38").all()
    assert (text["symbol"] == "AAPL").all()
    assert text["ts_event"].str.startswith("2024-08-01T").all()
    assert set(text["action"]) == {"A", "C", "M", "T", "F"}
    assert set(text["side"]) == {"A", "B", "N"}
    prices = pd.concat(
        [text["price"]] + [text[level_column(f, i)] for f in ("bid_px", "ask_px") for i in range(MAX_LEVELS)]
    )
    assert prices.str.match(PRICE_RE).all(), prices[~prices.str.match(PRICE_RE)].head().tolist()
    assert short_csv.endswith(b"\n")
    assert not short_csv.endswith(b"\n\n")
    assert b'"' not in short_csv


def test_empty_level_is_written_as_empty_price_zero_size_zero_count(short_df: pd.DataFrame) -> None:
    row = short_df.iloc[:1].copy()
    for field, value in (("bid_px", np.nan), ("bid_sz", 0), ("bid_ct", 0)):
        row[level_column(field, 9)] = value
    line = to_csv_bytes(row).decode().splitlines()[1].split(",")
    at = {c: i for i, c in enumerate(MBP10_COLUMNS)}
    assert line[at["bid_px_09"]] == ""
    assert line[at["bid_sz_09"]] == "0"
    assert line[at["bid_ct_09"]] == "0"


def test_shortest_decimal_prices() -> None:
    values = np.array([222.8, 222.83, 223.0, 222.05, np.nan])
    assert price_strings(values).to_pylist() == ["222.8", "222.83", "223", "222.05", None]


def test_timestamps_order_and_deltas(short_df: pd.DataFrame) -> None:
    recv = short_df["ts_recv"].array.asi8
    event = short_df["ts_event"].array.asi8
    assert (recv >= event).all()
    assert (np.diff(recv) >= 0).all(), "rows must be sorted by ts_recv like an export"
    assert (short_df["ts_in_delta"].to_numpy() == recv - event).all()
    delta_us = (recv - event) / 1000
    assert 20 < np.median(delta_us) < 1000


def test_sequence_increases_per_venue(short_df: pd.DataFrame) -> None:
    for pid, g in short_df.groupby("publisher_id"):
        assert (np.diff(g["sequence"].to_numpy()) > 0).all(), pid
        assert (np.diff(g["ts_event"].array.asi8) >= 0).all(), pid


def test_bid_below_ask_and_spreads_mostly_one_to_three_ticks(short_df: pd.DataFrame) -> None:
    spread = np.rint((short_df["ask_px_00"] - short_df["bid_px_00"]).to_numpy() * 100)
    assert (spread >= 1).all()
    assert ((spread >= 1) & (spread <= 3)).mean() > 0.98


# ------------------------------------------------------------------------------ book consistency


def _side_levels(px: np.ndarray, sz: np.ndarray, ct: np.ndarray) -> dict[int, tuple[int, int]]:
    return {int(p): (int(s), int(c)) for p, s, c in zip(px, sz, ct, strict=True) if p >= 0}


def _check_venue_book(g: pd.DataFrame) -> None:
    """Each row's book equals the previous row's book with the message applied (Databento MBP).

    Only prices visible in both rows are compared: a level may enter from behind level 10.
    """
    ticks = {}
    for field in ("bid_px", "ask_px"):
        cols = [level_column(field, i) for i in range(MAX_LEVELS)]
        ticks[field] = np.rint(g[cols].fillna(-0.01).to_numpy() * 100).astype(np.int64)
    arr = {
        f: g[[level_column(f, i) for i in range(MAX_LEVELS)]].to_numpy()
        for f in ("bid_sz", "ask_sz", "bid_ct", "ask_ct")
    }
    action = g["action"].to_numpy()
    side = g["side"].to_numpy()
    depth = g["depth"].to_numpy()
    price = np.rint(g["price"].to_numpy() * 100).astype(np.int64)
    size = g["size"].to_numpy()

    def book(i: int) -> tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]]:
        return (
            _side_levels(ticks["bid_px"][i], arr["bid_sz"][i], arr["bid_ct"][i]),
            _side_levels(ticks["ask_px"][i], arr["ask_sz"][i], arr["ask_ct"][i]),
        )

    prev_bids, prev_asks = book(0)
    for i in range(1, len(g)):
        bids, asks = book(i)
        a, s, px, q, d = action[i], side[i], int(price[i]), int(size[i]), int(depth[i])
        exp_bids, exp_asks = dict(prev_bids), dict(prev_asks)
        free_size: set[int] = set()  # M: the order's old size is not on the wire
        free_count: set[int] = set()  # T: a partial fill leaves the order count unchanged
        where = f"row {i} ({a} {s} {px} x{q} depth {d})"
        if a in ("A", "C", "M"):
            exp = exp_bids if s == "B" else exp_asks
            before = sorted(prev_bids if s == "B" else prev_asks, reverse=s == "B")
            sz, ct = exp.get(px, (0, 0))
            if a == "A":
                exp[px] = (sz + q, ct + 1)
                after = sorted(bids if s == "B" else asks, reverse=s == "B")
                assert after.index(px) == d, where
            elif a == "C":
                assert before.index(px) == d, where
                assert q <= sz, where
                if ct == 1:
                    assert q == sz, where
                    del exp[px]
                else:
                    exp[px] = (sz - q, ct - 1)
            else:
                assert before.index(px) == d, where
                free_size.add(px)
        elif a == "T":
            assert d == 0, where
            on_ask = s == "B" or (s == "N" and prev_asks and px == min(prev_asks))
            exp = exp_asks if on_ask else exp_bids
            best = min(prev_asks) if on_ask else max(prev_bids)
            assert px == best, where
            sz, ct = exp[px]
            assert q <= sz, where
            if q == sz:
                del exp[px]
            else:
                exp[px] = (sz - q, ct)
                free_count.add(px)
        else:
            assert a == "F", where
        for exp, cur, prev, worst in (
            (exp_bids, bids, prev_bids, max),
            (exp_asks, asks, prev_asks, min),
        ):
            edge = worst(min(prev), min(cur)) if worst is max else min(max(prev), max(cur))
            seen = {p for p in set(exp) | set(cur) if (p >= edge if worst is max else p <= edge)}
            for p in seen:
                assert p in exp, f"{where}: level {p} appeared"
                assert p in cur, f"{where}: level {p} vanished"
                (es, ec), (cs, cc) = exp[p], cur[p]
                if p not in free_size:
                    assert es == cs, f"{where}: size at {p} {cs} != expected {es}"
                if p in free_count:
                    assert cc in (ec, ec - 1), f"{where}: count at {p}"
                else:
                    assert ec == cc, f"{where}: count at {p} {cc} != expected {ec}"
        for p, (cs, cc) in {**bids, **asks}.items():
            assert cs >= cc >= 1, f"{where}: level {p} has size {cs}, count {cc}"
        prev_bids, prev_asks = bids, asks


def test_books_evolve_with_their_messages(short_df: pd.DataFrame) -> None:
    for _, g in short_df.groupby("publisher_id"):
        _check_venue_book(g.reset_index(drop=True))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), minute=st.sampled_from(["13:35", "13:38", "13:44"]))
def test_any_seed_keeps_the_invariants(seed: int, minute: str) -> None:
    df = generate(seed=seed, start=f"{minute}:10", end=f"{minute}:13")
    assert set(df["publisher_id"]) == VENUES
    assert (df["ask_px_00"] > df["bid_px_00"]).all()
    assert (df["ts_recv"].array.asi8 >= df["ts_event"].array.asi8).all()
    for _, g in df.groupby("publisher_id"):
        assert (np.diff(g["sequence"].to_numpy()) > 0).all()
        _check_venue_book(g.reset_index(drop=True))


def test_cli_generates_and_describes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "small.csv.gz"
    assert main(["--out", str(out), "--start", "13:36:30", "--end", "13:36:33"]) == 0
    with gzip.open(out, "rt") as f:
        assert f.readline().rstrip("\n").split(",") == list(MBP10_COLUMNS)
    assert main(["--stats", str(out)]) == 0
    assert "| Nasdaq (2) |" in capsys.readouterr().out


def test_cli_rejects_a_bad_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", "unused.csv.gz", "--start", "1336"]) == 2
    err = capsys.readouterr().err
    assert "--start" in err
    assert len(err.strip().splitlines()) == 1


def test_cli_names_the_flags_of_a_backwards_window(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", "unused.csv.gz", "--start", "13:40:00", "--end", "13:39:00"]) == 2
    assert (
        capsys.readouterr().err
        == "python -m allocator.synth: error: --end 13:39:00 must be after --start 13:40:00\n"
    )


def test_window_errors_name_settings_not_flags() -> None:
    with pytest.raises(SettingError) as backwards:
        generate(start="13:40:00", end="13:39:00")
    assert str(backwards.value) == "end 13:39:00 must be after start 13:40:00"
    assert backwards.value.settings == {"end": "end", "start": "start"}
    with pytest.raises(SettingError) as braces:
        parse_clock("{x}", "start")  # braces in the text are literal, not template fields
    assert (
        braces.value.render(lambda name: f"--{name}")
        == "--start '{x}': expected HH:MM:SS (UTC), e.g. 13:36:32"
    )
    with pytest.raises(SettingError) as out_of_range:
        parse_clock("25:00:00", "end")
    assert str(out_of_range.value) == "end '25:00:00': time of day out of range"
    assert parse_clock("13:36:32.5", "start") == 13 * 3600 + 36 * 60 + 32.5


# ------------------------------------------------------------------------------ the latent path


def test_latent_path_within_a_window_starts_from_the_last_value_before_it() -> None:
    path = LatentPath(np.array([1.0, 2.0, 3.0, 4.0]), np.array([11, 12, 13, 14]), m2_start=10)
    inner = path.within(2.0, 4.0)
    assert inner.times.tolist() == [3.0]  # strictly inside: the jumps at 2.0 and 4.0 are not
    assert inner.m2.tolist() == [13]
    assert inner.m2_start == 12  # the value set by the jump at t_lo itself
    assert path.within(0.5, 1.5).m2_start == 10
    assert path.within(0.5, 1.5).m2.tolist() == [11]


# ------------------------------------------------------------------------------ statistics


def _quotes_frame(rows: list[tuple[int, int, float, float, int]]) -> pd.DataFrame:
    """(ts_event ns, publisher_id, bid, ask, ask size) rows of a minimal MBP frame, in file order."""
    return pd.DataFrame(
        rows, columns=["ts_event", "publisher_id", "bid_px_00", "ask_px_00", "ask_sz_00"]
    ).assign(bid_sz_00=100)


def test_consolidated_stats_carry_a_quiet_venue_at_its_first_row() -> None:
    """Venue 1's first row at t=10 (ask 10.01 × 100) stands, not its last (10.03 × 700): the file
    statistics' rule, which the router's snapshot rule does not share (it carries the last row)."""
    frame = _quotes_frame(
        [
            (10, 1, 10.00, 10.01, 100),
            (10, 1, 10.00, 10.03, 700),
            (20, 2, 9.99, 10.01, 300),
        ]
    )
    quotes = venue_tick_quotes(frame)
    assert len(quotes) == 2
    stats = quote_by_quote_consolidated(quotes, {1: 0.003, 2: 0.001})
    assert stats.ticks == 1  # the one step after both venues quoted
    assert stats.top_ask_total_p50 == 400
    assert stats.locked_or_crossed_share == 0.0
    assert stats.cheapest_fee_differs_ticks == 1  # tie at 10.01 goes to venue 1 by ask, 2 by cost
    router = build_snapshots(frame)
    assert router.take_sz[-1].tolist() == [700, 300]


def test_venue_tick_quotes_are_the_router_rules_fresh_quotes(short_df: pd.DataFrame) -> None:
    frame = short_df.assign(ts_event=short_df["ts_event"].to_numpy(dtype=np.int64))
    router = build_snapshots(frame)
    quotes = venue_tick_quotes(frame)
    assert len(quotes) == int(router.fresh.sum())
    fresh_rows = np.sort(router.source_row[router.fresh])
    expected = np.flatnonzero(~frame.duplicated(subset=["ts_event", "publisher_id"]).to_numpy())
    assert fresh_rows.tolist() == expected.tolist()


# ------------------------------------------------------------------------------ the shipped file


@pytest.fixture(scope="module")
def shipped() -> pd.DataFrame:
    assert SHIPPED.exists(), (
        "data/l1_day.csv.gz is missing: python -m allocator.synth --out data/l1_day.csv.gz"
    )
    return read_mbp_csv(SHIPPED)


@pytest.fixture(scope="module")
def shipped_stats(shipped: pd.DataFrame) -> FileStats:
    return file_stats(shipped)


def test_shipped_file_is_small() -> None:
    assert SHIPPED.stat().st_size < 15_000_000


def test_shipped_file_covers_the_window_with_margin(shipped: pd.DataFrame) -> None:
    ev = shipped["ts_event"]
    assert ev.min() < pd.Timestamp("2024-08-01T13:35:01Z")
    assert ev.max() > pd.Timestamp("2024-08-01T13:45:59Z")
    # data on both sides of the default window's edges, 13:36:32 and 13:45:14.999…
    for edge in ("13:36:32", "13:45:15"):
        t = pd.Timestamp(f"2024-08-01T{edge}Z")
        for pid in VENUES:
            g = ev[shipped["publisher_id"] == pid]
            assert ((g < t) & (g > t - pd.Timedelta("5s"))).any(), (edge, pid)
            assert ((g >= t) & (g < t + pd.Timedelta("5s"))).any(), (edge, pid)


def test_shipped_file_venues_and_rates(shipped_stats: FileStats) -> None:
    venues = shipped_stats.venues
    assert set(venues) == VENUES
    assert 80 <= venues[2].msg_per_s <= 120
    for pid in VENUES - {2}:
        assert 10 <= venues[pid].msg_per_s <= 50, pid
    assert shipped_stats.distinct_ts_event < shipped_stats.rows, "bursts share a ts_event"
    assert shipped_stats.ts_recv_sorted
    assert 0 < shipped_stats.ts_event_out_of_order_rows < 0.02 * shipped_stats.rows


def test_shipped_file_spreads_and_nbbo(shipped_stats: FileStats) -> None:
    for pid, v in shipped_stats.venues.items():
        assert v.spread_1_to_3_share > 0.98, pid
        assert v.spread_p5 >= 1, pid
        assert v.spread_p95 <= 3, pid
        assert 10 <= v.top_ask_sz_p50 <= 1000, pid
        assert v.top_ask_sz_max >= 2000, pid
    assert 0 < shipped_stats.consolidated.locked_or_crossed_share < 0.03


def test_shipped_file_price_path(shipped_stats: FileStats) -> None:
    main_ask = shipped_stats.main_ask
    assert main_ask.first == pytest.approx(222.83, abs=0.015)
    assert 222.98 <= main_ask.average <= 223.12
    rise = main_ask.last - main_ask.first
    assert 0.2 <= rise <= 0.45


def test_shipped_file_decisions_matter(shipped_stats: FileStats) -> None:
    """Fees change the cheapest venue at some ticks; 5,000 shares sometimes fit at the top, sometimes not."""
    assert shipped_stats.consolidated.cheapest_fee_differs_ticks > 0
    assert 0.05 < shipped_stats.consolidated.top_ask_below_threshold_share < 0.95


@pytest.mark.slow
def test_shipped_file_is_what_the_generator_makes(tmp_path: Path) -> None:
    fresh = tmp_path / "l1_day.csv.gz"
    write_csv(generate(seed=DEFAULT_SEED), fresh)
    with gzip.open(SHIPPED, "rb") as a, gzip.open(fresh, "rb") as b:
        assert a.read() == b.read(), (
            "content differs: regenerate with python -m allocator.synth --out data/l1_day.csv.gz"
        )
    assert sha256_file(fresh) == sha256_file(SHIPPED), "same CSV, different gzip bytes (zlib version?)"


def test_study_paths_trend_up_flat_and_down_by_seed() -> None:
    from allocator.synth.generator import STUDY_TREND_SD_TICKS, study_trend_ticks

    rises = np.array([study_trend_ticks(seed) for seed in range(2000)])
    assert study_trend_ticks(7) == study_trend_ticks(7)  # a seed's drift is fixed
    assert abs(rises.mean()) < 3 * STUDY_TREND_SD_TICKS / np.sqrt(
        len(rises)
    )  # zero-mean within sampling error
    assert rises.std() == pytest.approx(STUDY_TREND_SD_TICKS, rel=0.05)
    assert (rises < 0).mean() == pytest.approx(0.5, abs=0.05)


@pytest.mark.slow
def test_the_trend_parameter_moves_the_price_and_only_the_price() -> None:
    """Same seed, three rises: the main venue's ask ends about rise ticks away from where it started
    (the trend is concave in time), and the default is exactly the shipped generator."""
    window = {"seed": 5, "start": "13:36:32", "end": "13:45:15"}
    moves = {}
    for rise in (-114.0, 0.0, 114.0):
        df = generate(**window, trend_rise_ticks=rise)
        asks = df[df["publisher_id"] == df["publisher_id"].mode()[0]]["ask_px_00"].dropna()
        moves[rise] = asks.iloc[-200:].mean() - asks.iloc[:200].mean()
    assert moves[-114.0] < -0.8 and abs(moves[0.0]) < 0.3 and moves[114.0] > 0.8
    pd.testing.assert_frame_equal(generate(**window), generate(**window, trend_rise_ticks=38.0))
