"""The loader against a bare `pyarrow.csv.read_csv` of the same columns, its peak memory, the duplicate
count, and the per-symbol cache of a multi-symbol file.

Files (built once under bench/out/loader/, reused while their parameters are unchanged):
- an MBP-10 file of BENCH_LOADER_ROWS rows (default 2 million, ~740 MB): the shipped day tiled in time;
- a multi-symbol file of BENCH_LOADER_SYMBOLS symbols (default 50) × BENCH_LOADER_SYMBOL_ROWS rows
  (default 40,000), the shipped rows repeated under other symbol names, interleaved in time order.
With BENCH_LOADER_DAY=FILE (e.g. a full 6.5 h day from `python -m allocator.synth`) that file is measured
too, once.

Every measurement runs in a fresh process (its peak RSS is its own, from wait4; its time is the work's,
imports aside), BENCH_LOADER_REPEATS times (default 3); the best time is reported with the spread
(worst / best) — the machine is shared.
Goal: ours ≤ 1.3 × the bare read, top of book and all levels.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

REPO = Path(__file__).resolve().parents[1]
DATASET = REPO / "data" / "l1_day.csv.gz"
OUT = REPO / "bench" / "out" / "loader"
ROWS = int(os.environ.get("BENCH_LOADER_ROWS", "2000000"))
SYMBOLS = int(os.environ.get("BENCH_LOADER_SYMBOLS", "50"))
SYMBOL_ROWS = int(os.environ.get("BENCH_LOADER_SYMBOL_ROWS", "40000"))
REPEATS = max(1, int(os.environ.get("BENCH_LOADER_REPEATS", "3")))
DAY = os.environ.get("BENCH_LOADER_DAY", "")
Row = tuple[str, float, str]

_BARE = """
import time
import pyarrow.csv as pacsv
from pathlib import Path
from allocator.data.loader import column_plan, read_header
path = Path({path!r})
started = time.perf_counter()
wanted, _, _ = column_plan(read_header(path), {levels!r})
table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(include_columns=wanted))
print(time.perf_counter() - started, table.num_rows)
"""
_OURS = """
import time
from allocator.data.loader import load
from allocator.data.window import FULL_FILE, WindowSpec
window = {window}
started = time.perf_counter()
data = load({path!r}, window, levels={levels!r}, symbol={symbol!r}, symbol_cache={cache!r}, cache_dir={cache_dir!r})
print(time.perf_counter() - started, len(data.frame))
"""
_DUPLICATES = """
import time
from allocator.data.loader import duplicate_rows, load
from allocator.data.window import FULL_FILE
frame = load({path!r}, FULL_FILE, levels=1).frame
started = time.perf_counter()
ours = duplicate_rows(frame)
ours_s = time.perf_counter() - started
started = time.perf_counter()
pandas = int(frame.duplicated().sum())
pandas_s = time.perf_counter() - started
assert ours == pandas, (ours, pandas)
print(ours_s, ours, pandas_s)
"""


def _base() -> pa.Table:
    return pacsv.read_csv(
        DATASET,
        convert_options=pacsv.ConvertOptions(column_types={"ts_event": pa.string(), "ts_recv": pa.string()}),
    )


def _ns(iso: pa.ChunkedArray) -> np.ndarray:
    return pc.cast(pc.cast(iso, pa.timestamp("ns", tz="UTC")), pa.int64()).to_numpy()


def _iso(ns: np.ndarray) -> pa.Array:
    text = pa.array(ns).cast(pa.timestamp("ns")).cast(pa.string())
    return pc.binary_join_element_wise(pc.replace_substring(text, " ", "T"), "Z", "")


def _write(path: Path, tables: list[pa.Table]) -> None:
    """CSV written to a temporary name and renamed, so a cut build is never taken for a finished one."""
    tmp = path.with_name(path.name + ".part")
    with pa.OSFile(str(tmp), "wb") as sink:
        writer = pacsv.CSVWriter(
            sink, tables[0].schema, write_options=pacsv.WriteOptions(quoting_style="none")
        )
        for table in tables:
            writer.write_table(table)
        writer.close()
    os.replace(tmp, path)


def build_tiled(path: Path, rows: int) -> None:
    """The shipped day tiled in time, each copy shifted after the previous, until it has `rows` rows."""
    base = _base()
    ts_event, ts_recv = _ns(base["ts_event"]), _ns(base["ts_recv"])
    span = int(ts_event.max() - ts_event.min()) + 1
    parts, written, k = [], 0, 0
    while written < rows:
        take = min(base.num_rows, rows - written)
        part = base.slice(0, take)
        for name, values in (("ts_event", ts_event), ("ts_recv", ts_recv)):
            shifted = _iso(values[:take] + np.int64(k * span))
            part = part.set_column(part.schema.get_field_index(name), name, shifted)
        parts.append(part)
        written, k = written + take, k + 1
    _write(path, parts)


def build_multi(path: Path, symbols: int, rows_per_symbol: int) -> None:
    """`symbols` copies of the shipped rows under other names (prices shifted so no two are alike),
    interleaved row by row as a multi-symbol export is in time order."""
    base = _base().slice(0, rows_per_symbol)
    names = [f"S{i:03d}" for i in range(symbols)]
    order = np.arange(symbols * base.num_rows).reshape(symbols, base.num_rows).T.ravel()
    copies = []
    for i, name in enumerate(names):
        copy = base.set_column(
            base.schema.get_field_index("symbol"), "symbol", pa.array([name] * base.num_rows)
        )
        for column in copy.column_names:
            if column == "price" or "_px_" in column:
                copy = copy.set_column(
                    copy.schema.get_field_index(column), column, pc.add(copy[column], float(i))
                )
        copies.append(copy)
    table = pa.concat_tables(copies).take(pa.array(order))
    _write(path, [table.slice(i, 500_000) for i in range(0, table.num_rows, 500_000)])


CPU: dict[str, float] = {}  # the last measure()'s child: CPU seconds (user + system), imports included


def measure(code: str) -> tuple[float, float, str]:
    """Run `code` in a fresh interpreter: (the seconds it prints first — its work, imports aside —, its own
    peak RSS in MiB from wait4, the rest of what it prints); its CPU time goes to CPU["last"]."""
    with tempfile.TemporaryFile("w+", dir=OUT) as out, tempfile.TemporaryFile("w+", dir=OUT) as err:
        child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise RuntimeError(f"benchmark child failed: {err.read().strip()[-800:]}")
        seconds, _, rest = out.read().strip().partition(" ")
        CPU["last"] = usage.ru_utime + usage.ru_stime
        return float(seconds), usage.ru_maxrss / 1024, rest


def best(code: str, repeats: int = REPEATS) -> tuple[float, float, float, str]:
    """(best seconds, worst / best, peak RSS of the best run, stdout) over `repeats` fresh runs; the
    least CPU time of the runs goes to CPU["best"]."""
    runs, cpu = [], []
    for _ in range(repeats):
        runs.append(measure(code))
        cpu.append(CPU["last"])
    CPU["best"] = min(cpu)
    fastest = min(runs, key=lambda run: run[0])
    return fastest[0], max(run[0] for run in runs) / fastest[0], fastest[1], fastest[2]


def ours(
    path: Path,
    levels: int | None,
    *,
    window: str = "FULL_FILE",
    symbol: str | None = None,
    cache: bool = True,
    cache_dir: str | None = None,
) -> str:
    return _OURS.format(
        path=str(path), levels=levels, window=window, symbol=symbol, cache=cache, cache_dir=cache_dir
    )


def _compare(path: Path, label: str, repeats: int) -> Iterator[Row]:
    """Ours against the bare read, top of book and all levels."""
    for levels, name in ((1, "top of book"), (None, "all levels")):
        bare_s, bare_spread, bare_mem, _ = best(_BARE.format(path=str(path), levels=levels), repeats)
        bare_cpu = CPU["best"]
        our_s, our_spread, our_mem, _ = best(ours(path, levels), repeats)
        our_cpu = CPU["best"]
        yield from [
            (
                f"{label}, {name}: bare pyarrow.csv read (best)",
                bare_s,
                f"s (spread x{bare_spread:.2f}; process CPU {bare_cpu:.1f} s)",
            ),
            (f"{label}, {name}: bare read peak RSS", bare_mem, "MiB"),
            (
                f"{label}, {name}: loader, whole file (best)",
                our_s,
                f"s (spread x{our_spread:.2f}; process CPU {our_cpu:.1f} s)",
            ),
            (f"{label}, {name}: loader peak RSS", our_mem, "MiB"),
            (f"{label}, {name}: loader / bare time (goal <= 1.3)", our_s / bare_s, "x"),
            (f"{label}, {name}: loader / bare CPU", our_cpu / bare_cpu, "x"),
        ]


def run() -> Iterator[Row]:
    """The figures, each as soon as it is measured (the whole run takes minutes)."""
    OUT.mkdir(parents=True, exist_ok=True)
    tiled = OUT / f"tiled-{ROWS}.csv"
    started = time.perf_counter()
    if not tiled.exists():
        build_tiled(tiled, ROWS)
    yield from [
        ("MBP-10 file: rows", ROWS, "rows"),
        ("MBP-10 file: size", tiled.stat().st_size / 2**20, "MiB"),
        ("MBP-10 file: build (0 when reused)", time.perf_counter() - started, "s"),
    ]
    yield from _compare(tiled, "MBP-10 file", REPEATS)
    window_s, window_spread, window_mem, _ = best(ours(tiled, 1, window="WindowSpec()"))
    yield from [
        (
            "MBP-10 file: loader, default window only, top (best)",
            window_s,
            f"s (spread x{window_spread:.2f})",
        ),
        ("MBP-10 file: loader, default window only: peak RSS", window_mem, "MiB"),
    ]
    dup_s, _, printed = measure(_DUPLICATES.format(path=str(tiled)))
    count, pandas_s = printed.split()
    yield from [
        ("duplicate_rows, top-of-book frame: duplicates", int(count), "rows"),
        ("duplicate_rows: time", dup_s, "s"),
        ("frame.duplicated().sum(): time (the old count)", float(pandas_s), "s"),
    ]
    yield from _multi_symbol()
    if DAY:
        yield from _day(Path(DAY))


def _multi_symbol() -> list[Row]:
    multi = OUT / f"multi-{SYMBOLS}x{SYMBOL_ROWS}.csv"
    if not multi.exists():
        build_multi(multi, SYMBOLS, SYMBOL_ROWS)
    cache = OUT / "symbol-cache"
    other, third = f"S{SYMBOLS // 3:03d}", f"S{2 * SYMBOLS // 3:03d}"
    shutil.rmtree(cache, ignore_errors=True)
    split_s, split_mem, _ = measure(ours(multi, None, symbol="S000", cache_dir=str(cache)))
    cached_s, cached_spread, cached_mem, _ = best(ours(multi, None, symbol=other, cache_dir=str(cache)))
    direct_s, direct_spread, direct_mem, _ = best(ours(multi, None, symbol=other, cache=False))
    top_s, top_spread, _, _ = best(ours(multi, 1, symbol=third, cache_dir=str(cache)))
    direct_top_s, direct_top_spread, _, _ = best(ours(multi, 1, symbol=third, cache=False))
    size = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 2**20
    return [
        (f"multi-symbol file: {SYMBOLS} symbols x {SYMBOL_ROWS} rows", multi.stat().st_size / 2**20, "MiB"),
        ("multi-symbol: first load (splits the file by symbol)", split_s, "s"),
        ("multi-symbol: first load peak RSS", split_mem, "MiB"),
        ("multi-symbol: cache size on disk", size, "MiB"),
        ("multi-symbol: one symbol, all levels, cached (best)", cached_s, f"s (spread x{cached_spread:.2f})"),
        ("multi-symbol: one symbol, all levels, cached: peak RSS", cached_mem, "MiB"),
        (
            "multi-symbol: one symbol, all levels, direct parse (best)",
            direct_s,
            f"s (spread x{direct_spread:.2f})",
        ),
        ("multi-symbol: one symbol, all levels, direct parse: peak RSS", direct_mem, "MiB"),
        ("multi-symbol: one symbol, top of book, cached (best)", top_s, f"s (spread x{top_spread:.2f})"),
        (
            "multi-symbol: one symbol, top of book, direct (best)",
            direct_top_s,
            f"s (spread x{direct_top_spread:.2f})",
        ),
        ("multi-symbol: direct / cached, all levels", direct_s / cached_s, "x"),
        (
            "multi-symbol: every symbol once: direct / (split + cached)",
            SYMBOLS * direct_s / (split_s + (SYMBOLS - 1) * cached_s),
            "x",
        ),
    ]


def _day(path: Path) -> Iterator[Row]:
    """A full day, measured once by default (each run reads it whole)."""
    repeats = max(1, int(os.environ.get("BENCH_LOADER_DAY_REPEATS", "1")))
    yield (f"full day: {path.name}", path.stat().st_size / 2**20, "MiB")
    yield from _compare(path, "full day", repeats)
    dup_s, _, printed = measure(_DUPLICATES.format(path=str(path)))
    count, pandas_s = printed.split()
    yield from [
        ("full day: duplicate_rows (top of book)", dup_s, f"s ({count} duplicates)"),
        ("full day: frame.duplicated().sum() (the old count)", float(pandas_s), "s"),
    ]


if __name__ == "__main__":
    for label, value, unit in run():
        print(f"{label:<60} {value:>14.4g} {unit}")
