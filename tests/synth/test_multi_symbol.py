"""Multi-symbol generation: each symbol its own market at its own price level, the first one unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from allocator.data.loader import load
from allocator.data.window import WindowSpec
from allocator.errors import SettingError
from allocator.synth.generator import INSTRUMENTS, generate, generate_symbols

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "multi_symbol.csv.gz"


def test_the_first_symbol_is_the_single_symbol_market_and_the_others_differ() -> None:
    both = generate_symbols(["AAPL", "MSFT"], start="13:36:30", end="13:36:40")
    alone = generate(start="13:36:30", end="13:36:40")
    aapl = both[both["symbol"] == "AAPL"].reset_index(drop=True)
    pd.testing.assert_frame_equal(aapl, alone)
    msft = both[both["symbol"] == "MSFT"]
    assert (msft["instrument_id"] == INSTRUMENTS["MSFT"].instrument_id).all()
    assert 410 < msft["ask_px_00"].median() < 425  # its own price level, not AAPL's
    assert both["ts_recv"].is_monotonic_increasing


def test_unknown_symbols_are_one_line() -> None:
    with pytest.raises(SettingError, match="the generator knows AAPL, MSFT"):
        generate_symbols(["AAPL", "TSLA"], start="13:36:30", end="13:36:31")


def test_the_shipped_sample_holds_three_symbols_each_loadable() -> None:
    window = WindowSpec("13:36:30", "13:38:00")
    mids = {}
    for symbol in ("AAPL", "MSFT", "NVDA"):
        data = load(SAMPLE, window, levels=1, symbol=symbol)
        assert data.symbols == [symbol]
        frame = data.frame
        mids[symbol] = float(np.median((frame["ask_px_00"] + frame["bid_px_00"]) / 2))
    assert mids["NVDA"] < mids["AAPL"] < mids["MSFT"]
