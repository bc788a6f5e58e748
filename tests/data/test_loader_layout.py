"""The loaded frame's compact layout: integer columns in the narrowest dtype that holds their values (never
wrapped, never depending on how the file was read), no order counts, and one side's depth on request —
with the values, and every report computed from them, exactly those of the full int64 layout."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.config import PenaltyGrid, RunConfig, SimSettings
from allocator.data.loader import INTEGER_DTYPES, frame_with_history, joined_integers, load
from allocator.data.schema import HEADER_FIELDS, MBP10_COLUMNS, level_column
from allocator.data.venues import load_fee_table
from allocator.data.window import FULL_FILE, NS_PER_SECOND, WindowSpec
from allocator.pipeline import run
from tests.helpers import NS, at, frame, quote, to_csv_text, write

REPO = Path(__file__).resolve().parents[2]
DATASET = REPO / "data" / "l1_day.csv.gz"
SMALL_BLOCK = 4096  # a few rows per block


def rows(n: int = 60) -> pd.DataFrame:
    return frame(quote(at("13:37:00") + i * NS, (2, 5, 43)[i % 3], 222.8, 100 + i) for i in range(n))


def csv(tmp_path: Path, df: pd.DataFrame, name: str = "f.csv") -> Path:
    return write(tmp_path / name, to_csv_text(df))


def test_integer_columns_are_narrow_and_timestamps_and_prices_are_not(tmp_path):
    df = rows()
    df["sequence"] = np.arange(len(df)) + 3_000_000_000  # a uint32 beyond int32: int64
    df["ts_in_delta"] = -40_000  # negative, beyond int16: int32
    got = load(csv(tmp_path, df), FULL_FILE).frame
    dtypes = got.dtypes.astype(str).to_dict()
    assert dtypes["ts_event"] == dtypes["ts_recv"] == "int64"
    assert dtypes["publisher_id"] == "int8" and dtypes["rtype"] == "int8"
    assert dtypes["size"] == dtypes["ask_sz_00"] == "int16"
    assert dtypes["ts_in_delta"] == "int32" and dtypes["sequence"] == "int64"
    assert dtypes["price"] == dtypes["ask_px_09"] == "float64"
    assert got["sequence"].tolist() == (np.arange(len(df)) + 3_000_000_000).tolist()  # not wrapped
    assert (got["ts_in_delta"] == -40_000).all()
    # every value as written, whatever the dtype
    for name in ("size", "publisher_id", "ask_sz_00", "bid_sz_03"):
        assert got[name].astype(np.int64).tolist() == df[name].astype(np.int64).tolist(), name


def test_order_counts_are_not_loaded(tmp_path):
    got = load(csv(tmp_path, rows()), FULL_FILE).frame
    assert not [c for c in got.columns if "_ct_" in c]
    assert [c for c in MBP10_COLUMNS if c not in got.columns] == [c for c in MBP10_COLUMNS if "_ct_" in c]


def test_a_value_that_needs_int64_in_one_block_widens_the_column_not_the_block(tmp_path):
    """The dtype follows the loaded values only: many small blocks give the frame one block gives."""
    df = rows(200)
    df.loc[150, "size"] = 2**40
    df.loc[10, "ask_sz_00"] = 40_000  # int32, in an early block only
    path = csv(tmp_path, df)
    whole = load(path, FULL_FILE).frame
    small = load(path, FULL_FILE, block_size=SMALL_BLOCK).frame
    pd.testing.assert_frame_equal(small, whole, check_exact=True)
    assert whole["size"].dtype == np.int64 and int(whole["size"][150]) == 2**40
    assert whole["ask_sz_00"].dtype == np.int32 and int(whole["ask_sz_00"][10]) == 40_000


def test_the_window_decides_the_dtype_not_the_file(tmp_path):
    df = rows(60)
    df.loc[0, "size"] = 2**40  # before the window
    window = WindowSpec("13:37:10", "13:37:50")
    got = load(csv(tmp_path, df), window).frame
    assert got["size"].dtype == np.int16
    assert got["size"].tolist() == df["size"][10:51].tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["int32", "int64"]),
            st.lists(st.integers(-(2**63), 2**63 - 1) | st.integers(-300, 300), max_size=8),
        ),
        max_size=5,
    )
)
def test_joined_integers_is_the_int64_join_in_the_narrowest_dtype(pieces):
    chunks = []
    for kind, values in pieces:
        if kind == "int32":
            values = [min(max(v, -(2**31)), 2**31 - 1) for v in values]
        chunks.append(np.array(values, dtype=kind))
    wide = np.concatenate([c.astype(np.int64) for c in chunks]) if chunks else np.empty(0, np.int64)
    got = joined_integers(chunks)
    assert got.tolist() == wide.tolist()
    lo, hi = (int(wide.min()), int(wide.max())) if len(wide) else (0, 0)
    fits = [d for d in INTEGER_DTYPES if np.iinfo(d).min <= lo and hi <= np.iinfo(d).max]
    assert got.dtype == fits[0]


def test_depth_side_keeps_one_side_below_the_top(tmp_path):
    path = csv(tmp_path, rows())
    full = load(path, FULL_FILE).frame
    asks = load(path, FULL_FILE, depth_side="ask").frame
    assert [c for c in asks.columns if c.startswith("bid_")] == ["bid_px_00", "bid_sz_00"]
    assert [c for c in asks.columns if c.startswith("ask_")] == [
        level_column(f, lvl) for lvl in range(10) for f in ("ask_px", "ask_sz")
    ]
    assert set(HEADER_FIELDS) <= set(asks.columns)
    pd.testing.assert_frame_equal(asks, full[asks.columns], check_exact=True)
    bids = load(path, FULL_FILE, depth_side="bid").frame
    assert [c for c in bids.columns if c.startswith("ask_")] == ["ask_px_00", "ask_sz_00"]
    pd.testing.assert_frame_equal(bids, full[bids.columns], check_exact=True)
    with pytest.raises(ValueError, match="depth_side"):
        load(path, FULL_FILE, depth_side="both")


def test_the_symbol_cache_gives_the_same_narrow_frame(tmp_path):
    a = rows(40)
    b = rows(40)
    b["symbol"] = "MSFT"
    b["size"] = 2**33  # int64 for MSFT only
    both = pd.concat([a, b]).sort_values("ts_event", kind="stable")
    path = csv(tmp_path, both, "multi.csv")
    for symbol, size_dtype in (("AAPL", np.int16), ("MSFT", np.int64)):
        cached = load(path, FULL_FILE, symbol=symbol, cache_dir=tmp_path / "cache").frame
        direct = load(path, FULL_FILE, symbol=symbol, symbol_cache=False).frame
        pd.testing.assert_frame_equal(cached, direct, check_exact=True)
        assert cached["size"].dtype == size_dtype


def _report(data, side: str, mode: str = "cont-kukanov") -> dict:
    config = RunConfig(
        mode=mode,
        side=side,  # type: ignore[arg-type]
        order_size=3000,
        grid=PenaltyGrid((0.2,), (0.6,), (0.1,)),
        jobs=1,
        sim=SimSettings(horizon_ns=10 * NS_PER_SECOND, warmup_ns=5 * NS_PER_SECOND),
    )
    return run(data, load_fee_table(None), config).report


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_one_sided_depth_gives_the_same_cont_kukanov_report(side):
    window = WindowSpec("13:36:32", "13:37:31")
    calibration = 120 * NS_PER_SECOND
    full = load(DATASET, window, calibration_ns=calibration)
    taken = "ask" if side == "buy" else "bid"
    one_side = load(DATASET, window, calibration_ns=calibration, depth_side=taken)
    assert one_side.frame.shape[1] < full.frame.shape[1]
    assert _report(one_side, side) == _report(full, side)


def test_the_report_is_the_int64_layouts():
    """The same runs on the frame widened back to int64 everywhere: every number of the report equal."""
    window = WindowSpec("13:36:32", "13:37:31")
    data = load(DATASET, window, calibration_ns=120 * NS_PER_SECOND)

    def wide(df: pd.DataFrame) -> pd.DataFrame:
        return df.astype({c: np.int64 for c in df.columns if df[c].dtype.kind == "i"})

    assert any(data.frame[c].dtype != np.int64 for c in data.frame.columns if data.frame[c].dtype.kind == "i")
    assert data.history is not None
    widened = dataclasses.replace(data, frame=wide(data.frame), history=wide(data.history))
    for mode in ("faithful", "cont-kukanov"):
        assert _report(widened, "buy", mode) == _report(data, "buy", mode), mode


def test_history_and_window_are_slices_of_one_frame():
    """The realistic mode's rows (history, then window) are the loader's own frame, not a concatenated copy,
    and equal to the concatenation; a MarketData whose frame was replaced concatenates again."""
    data = load(DATASET, WindowSpec("13:36:32", "13:37:31"), calibration_ns=120 * NS_PER_SECOND)
    assert data.history_rows > 0
    rows = frame_with_history(data)
    concatenated = pd.concat([data.history, data.frame], ignore_index=True)
    pd.testing.assert_frame_equal(rows, concatenated, check_exact=True, check_categorical=True)
    for name in ("ts_event", "ask_px_00", "size"):
        assert np.shares_memory(rows[name].to_numpy(), data.frame[name].to_numpy()), name
        assert np.shares_memory(rows[name].to_numpy(), data.history[name].to_numpy()), name
    assert pickle.loads(pickle.dumps(data)).joined is None  # not pickled twice over
    shorter = dataclasses.replace(data, frame=data.frame.iloc[:-1].reset_index(drop=True))
    assert shorter.joined is None
    pd.testing.assert_frame_equal(
        frame_with_history(shorter), concatenated.iloc[:-1], check_exact=True, check_categorical=True
    )
    data.frame = data.frame.iloc[:-1].reset_index(drop=True)  # a frame set in place: not the slice any more
    pd.testing.assert_frame_equal(frame_with_history(data), concatenated.iloc[:-1], check_exact=True)
