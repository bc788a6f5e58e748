"""The per-symbol cache of multi-symbol CSVs: a cached load is exactly the direct parse, the file is split
once for all its symbols, and the entry follows the file (touched, rewritten in place, replaced)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from allocator.cli.common import flag_for
from allocator.data import loader, symbol_cache
from allocator.data.loader import MarketData, load
from allocator.data.window import FULL_FILE, NS_PER_SECOND, WindowSpec
from allocator.errors import SettingError, UserError
from tests.helpers import at, frame, quote, to_csv_text, write

REPO = Path(__file__).resolve().parents[2]
DATASET = REPO / "data" / "l1_day.csv.gz"
SYMBOLS = ("AAPL", "MSFT", "IBM")


def shipped_rows(start: str, end: str) -> pa.Table:
    """The shipped day's rows from `start` to `end` (times of day), timestamps kept as written."""
    table = pacsv.read_csv(
        DATASET,
        convert_options=pacsv.ConvertOptions(column_types={"ts_event": pa.string(), "ts_recv": pa.string()}),
    )
    clock = pc.utf8_slice_codeunits(table["ts_event"], 11, 19)
    return table.filter(pc.and_(pc.greater_equal(clock, start), pc.less(clock, end)))


def build_multi_symbol(path: Path) -> Path:
    """Three symbols interleaved row by row, as a multi-symbol export is in time order: AAPL (the shipped
    rows 13:36:25–13:36:40, around the default window's start), MSFT (the same rows, every price $100
    higher) and IBM (only the rows before the window)."""
    base = shipped_rows("13:36:25", "13:36:40")
    copies = []
    for offset, name in enumerate(SYMBOLS):
        copy = base.set_column(base.schema.get_field_index("symbol"), "symbol", pa.array([name] * len(base)))
        for column in copy.column_names:
            if column == "price" or "_px_" in column:
                index = copy.schema.get_field_index(column)
                copy = copy.set_column(index, column, pc.add(copy[column], 100.0 * offset))
        if name == "IBM":
            copy = copy.filter(pc.less(pc.utf8_slice_codeunits(copy["ts_event"], 11, 19), "13:36:32"))
        copies.append(copy.append_column("order", pa.array(np.arange(len(copy)) * 3 + offset)))
    table = pa.concat_tables(copies).sort_by("order").drop_columns(["order"])
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(quoting_style="none"))
    return write(path, sink.getvalue().to_pybytes())


@pytest.fixture
def multi(tmp_path: Path) -> Path:
    return build_multi_symbol(tmp_path / "three_symbols.csv.gz")


def assert_same(got: MarketData, want: MarketData) -> None:
    """Every field equal; the frames exactly, dtypes and categories included (`joined`, which is no part
    of equality, only refers to them)."""
    import pandas as pd

    for f in fields(MarketData):
        if not f.compare:
            continue
        a, b = getattr(got, f.name), getattr(want, f.name)
        if isinstance(b, pd.DataFrame):
            pd.testing.assert_frame_equal(a, b, check_exact=True, check_categorical=True)
        else:
            assert a == b, f.name


def error_of(path: Path, **kwargs: object) -> str:
    with pytest.raises(UserError) as info:
        load(path, **kwargs)  # type: ignore[arg-type]
    error = info.value
    return error.render(flag_for) if isinstance(error, SettingError) else str(error)


class Passes:
    """How often the whole file was parsed: the split pass and the direct parse, counted apart."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.split = 0
        self.direct = 0
        split, direct = symbol_cache._split, loader.load_csv_direct

        def counted_split(*args, **kwargs):
            self.split += 1
            return split(*args, **kwargs)

        def counted_direct(*args, **kwargs):
            self.direct += 1
            return direct(*args, **kwargs)

        monkeypatch.setattr(symbol_cache, "_split", counted_split)
        monkeypatch.setattr(loader, "load_csv_direct", counted_direct)


CASES = [
    pytest.param({}, id="default-window"),
    pytest.param({"levels": 1}, id="top-of-book"),
    pytest.param({"window": FULL_FILE}, id="whole-file"),
    pytest.param({"levels": 1, "calibration_ns": 5 * NS_PER_SECOND}, id="with-history"),
    pytest.param({"window": WindowSpec("13:36:30", "13:36:33.5"), "block_size": 1 << 16}, id="small-blocks"),
]


@pytest.mark.parametrize("kwargs", CASES)
@pytest.mark.parametrize("symbol", ["AAPL", "MSFT"])
def test_a_cached_symbol_is_exactly_the_direct_parse(multi, kwargs, symbol):
    direct = load(multi, symbol=symbol, symbol_cache=False, **kwargs)
    assert_same(load(multi, symbol=symbol, **kwargs), direct)  # the first load splits the file
    assert_same(load(multi, symbol=symbol, **kwargs), direct)  # a later one reads the cache
    assert direct.symbols == [symbol] and len(direct.frame)
    assert set(direct.frame["symbol"]) == {symbol}
    assert list(direct.frame["symbol"].cat.categories) == [symbol]


def test_the_symbols_have_their_own_rows(multi):
    aapl, msft = load(multi, symbol="AAPL"), load(multi, symbol="MSFT")
    assert len(aapl.frame) == len(msft.frame) > 0
    np.testing.assert_array_equal(aapl.frame["ts_event"], msft.frame["ts_event"])
    np.testing.assert_allclose(msft.frame["ask_px_00"], aapl.frame["ask_px_00"] + 100.0)
    whole = [load(multi, FULL_FILE, symbol=s) for s in SYMBOLS]
    assert aapl.rows_total == sum(len(data.frame) for data in whole)
    assert aapl.file_first_ts == min(int(data.frame["ts_event"].min()) for data in whole)


def test_the_file_is_parsed_once_for_all_its_symbols(multi, monkeypatch, private_symbol_cache):
    passes = Passes(monkeypatch)
    for symbol in SYMBOLS[:2]:
        for levels in (1, None):
            load(multi, symbol=symbol, levels=levels)
    load(multi, FULL_FILE, symbol="IBM")
    assert (passes.split, passes.direct) == (1, 0)
    (entry,) = [p for p in private_symbol_cache.iterdir() if p.is_dir()]
    manifest = json.loads((entry / "manifest.json").read_text())
    assert sorted(manifest["symbols"]) == sorted(SYMBOLS)
    assert sum(info["rows"] for info in manifest["symbols"].values()) == manifest["rows_total"]


def test_errors_about_symbols_and_windows_are_the_direct_parse_s(multi):
    cases = [
        {"symbol": "IBM"},  # rows only before the window
        {"symbol": "TSLA"},  # not in the file at all
        {"symbol": "AAPL", "window": WindowSpec("15:00:00", "16:00:00")},  # no symbol has rows there
        {"symbol": "AAPL", "window": WindowSpec("13:40:00", "13:00:00")},  # not a window
    ]
    for kwargs in cases:
        want = error_of(multi, symbol_cache=False, **kwargs)
        assert error_of(multi, **kwargs) == want, kwargs
    assert error_of(multi, symbol="IBM").endswith(
        "symbol 'IBM' has no rows in the window; symbols there: AAPL, MSFT"
    )


def test_touching_the_file_rebuilds_its_entry(multi, monkeypatch):
    passes = Passes(monkeypatch)
    first = load(multi, symbol="AAPL")
    stat = multi.stat()
    os.utime(multi, ns=(stat.st_atime_ns, stat.st_mtime_ns + NS_PER_SECOND))
    assert_same(load(multi, symbol="AAPL"), first)
    assert passes.split == 2


def test_a_change_that_keeps_size_and_mtime_is_caught_by_the_content_hash(tmp_path, monkeypatch):
    path = build_multi_symbol(tmp_path / "three_symbols.csv")  # plain text: edit one digit in place
    passes = Passes(monkeypatch)
    before = load(path, symbol="AAPL", window=FULL_FILE)
    stat = path.stat()
    lines = path.read_bytes().split(b"\n")
    header = lines[0].decode().replace('"', "").split(",")
    row = next(i for i in range(3000, len(lines)) if lines[i].endswith(b",AAPL"))
    cells = lines[row].split(b",")
    price = cells[header.index("ask_px_00")]
    cells[header.index("ask_px_00")] = price[:-1] + (b"1" if price[-1:] != b"1" else b"2")
    lines[row] = b",".join(cells)
    path.write_bytes(b"\n".join(lines))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    after = load(path, symbol="AAPL", window=FULL_FILE)
    assert passes.split == 2
    assert_same(after, load(path, symbol="AAPL", window=FULL_FILE, symbol_cache=False))
    changed = np.flatnonzero(before.frame["ask_px_00"].to_numpy() != after.frame["ask_px_00"].to_numpy())
    assert len(changed) == 1


def test_the_same_content_under_a_new_inode_is_not_split_again(multi, monkeypatch, private_symbol_cache):
    passes = Passes(monkeypatch)
    first = load(multi, symbol="AAPL")
    copy = multi.with_name("copy.tmp")
    shutil.copy2(multi, copy)  # same bytes, same mtime, another inode: as a restore or a sync leaves it
    os.replace(copy, multi)
    assert_same(load(multi, symbol="AAPL"), first)
    assert_same(load(multi, symbol="AAPL"), first)
    assert passes.split == 1
    (entry,) = [p for p in private_symbol_cache.iterdir() if p.is_dir()]
    assert json.loads((entry / "manifest.json").read_text())["source"]["ino"] == multi.stat().st_ino


def test_a_single_symbol_file_keeps_the_direct_parse(tmp_path, monkeypatch, private_symbol_cache):
    path = write(
        tmp_path / "aapl.csv",
        to_csv_text(frame([quote(at("13:40:00") + i, 2, 222.8, 100) for i in range(50)])),
    )
    passes = Passes(monkeypatch)
    assert_same(load(path, symbol="AAPL"), load(path, symbol="AAPL", symbol_cache=False))
    assert passes.split == 0
    assert not any(p.is_dir() for p in private_symbol_cache.iterdir())


def test_a_file_the_parse_refuses_is_not_cached_and_fails_as_before(tmp_path, monkeypatch):
    path = build_multi_symbol(tmp_path / "three_symbols.csv")
    lines = path.read_text().split("\n")
    header = lines[0].replace('"', "").split(",")
    cells = lines[3000].split(",")
    cells[header.index("bid_px_07")] = "abc"  # a level the top of book does not read
    lines[3000] = ",".join(cells)
    path.write_text("\n".join(lines))
    passes = Passes(monkeypatch)
    message = error_of(path, symbol="AAPL", symbol_cache=False)
    assert "line 3001, column bid_px_07: value 'abc' is not a number" in message
    assert error_of(path, symbol="AAPL") == message
    assert_same(load(path, symbol="AAPL", levels=1), load(path, symbol="AAPL", levels=1, symbol_cache=False))
    assert error_of(path, symbol="MSFT") == message
    assert passes.split == 1  # the refusal is remembered: not split again for every load


def test_fixed_point_prices_give_the_same_in_both_paths(tmp_path):
    rows = [
        quote(at("13:36:31") + i * 10_000_000, (2, 5)[i % 2], 222.8 + 0.01 * (i % 7), 100 + i)
        for i in range(400)
    ]
    for i, row in enumerate(rows):
        row["symbol"] = ("AAPL", "MSFT")[i % 2]
    path = write(tmp_path / "fixed.csv", to_csv_text(frame(rows), prices="fixed"))
    for kwargs in ({}, {"price_format": "fixed"}, {"levels": 1}):
        got = load(path, symbol="MSFT", **kwargs)
        assert got.price_format == "fixed"
        assert_same(got, load(path, symbol="MSFT", symbol_cache=False, **kwargs))
    assert error_of(path, symbol="MSFT", price_format="decimal") == error_of(
        path, symbol="MSFT", price_format="decimal", symbol_cache=False
    )


def test_the_cache_directory_is_chosen_by_argument_then_environment(multi, tmp_path, private_symbol_cache):
    load(multi, symbol="AAPL")
    assert any(p.is_dir() for p in private_symbol_cache.iterdir())
    chosen = tmp_path / "chosen"
    load(multi, symbol="AAPL", cache_dir=chosen)
    (entry,) = [p for p in chosen.iterdir() if p.is_dir()]
    assert entry.name.startswith("three_symbols.csv.gz-")
    assert symbol_cache.entry_dir(multi, chosen) == entry


def test_the_cache_can_be_turned_off(multi, monkeypatch):
    monkeypatch.setenv(symbol_cache.CACHE_ENV, "off")
    passes = Passes(monkeypatch)
    assert_same(load(multi, symbol="AAPL"), load(multi, symbol="AAPL", symbol_cache=False))
    assert (passes.split, passes.direct) == (0, 2)
    assert symbol_cache.entry_dir(multi) is None


def test_a_cache_that_cannot_be_written_falls_back_to_the_direct_parse(multi, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    assert_same(load(multi, symbol="AAPL", cache_dir=blocker), load(multi, symbol="AAPL", symbol_cache=False))


def test_a_split_cut_short_leaves_no_entry_behind(multi, monkeypatch, private_symbol_cache):
    def fail(self, symbol):
        raise OSError("No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(symbol_cache._SymbolWriter, "_flush", fail)
        assert_same(load(multi, symbol="AAPL"), load(multi, symbol="AAPL", symbol_cache=False))
    assert [p.name for p in private_symbol_cache.iterdir() if not p.name.endswith(".lock")] == []
    passes = Passes(monkeypatch)
    load(multi, symbol="AAPL")
    load(multi, symbol="MSFT")
    assert passes.split == 1 and passes.direct == 0
