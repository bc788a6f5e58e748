"""Loader: Databento MBP-1/MBP-10 exports and minimal L1 CSVs into one canonical DataFrame.

Whatever the source — `.csv`, `.csv.gz`, `.csv.zst`, DBN through the `databento` package —
timestamps as ISO-8601 strings or integer nanoseconds, prices as decimals or Databento fixed-point
integers — the result is the same frame: Databento column names, `ts_event`/`ts_recv` as int64 epoch
nanoseconds, prices as float64 (NaN when undefined), every other integer column (sizes, publisher_id,
sequence, ...) in the narrowest of int8/int16/int32/int64 that holds all its loaded values
(`INTEGER_DTYPES`), rows in file order; the per-level order counts (`bid_ct_NN`, `ask_ct_NN`) are not
loaded (nothing reads them). The file is read in blocks that a few threads parse at once (pyarrow's own
streaming reader is single-threaded), only the needed columns; each block is converted with whole-array
operations and window-filtered as it arrives, and the kept rows are joined once at the end, so a large
file is never held whole in memory. String columns are categoricals whose categories are the values
present, sorted.

With `calibration_ns` the rows of that span before the window start are kept too, apart, as
`MarketData.history`: the realistic mode estimates queue outflow from them but never trades on them.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import dataclasses
import functools
import importlib
import os
import re
import threading
import warnings
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from allocator.data.schema import (
    BOOK_SIDES,
    FIXED_PRICE_SCALE,
    HEADER_FIELDS,
    LOADED_LEVEL_FIELDS,
    REQUIRED_COLUMNS,
    REQUIRED_IDENTIFIERS,
    book_levels,
    is_price_column,
    level_column,
)
from allocator.data.window import NS_PER_SECOND, Window, WindowSpec, format_ns
from allocator.errors import SettingError, UserError

TIMESTAMP_COLUMNS = ("ts_event", "ts_recv")
STRING_COLUMNS = ("action", "side", "symbol")
INT_HEADER_COLUMNS = (
    "rtype",
    "publisher_id",
    "instrument_id",
    "depth",
    "size",
    "flags",
    "ts_in_delta",
    "sequence",
)
PRICE_FORMATS = ("auto", "decimal", "fixed")
# A decimal price this large is implausible; Databento fixed-point prices (1e-9 units) are always above it.
FIXED_POINT_THRESHOLD = 1e7
# INT64_MAX as Databento's undefined price, after the float64 read, is ~9.22e18.
UNDEF_PRICE_FLOAT = 9.0e18
BLOCK_SIZE = 8 << 20
# What pyarrow parses at once inside a block: a block parsed whole was measured 1.5-2.3x slower (its
# columns no longer fit in the CPU cache while each is converted) than in pieces of this size.
PARSE_BLOCK_SIZE = 1 << 20
# A real MBP-10 header is under 1 KiB; anything near this is not a header (and is not read further).
MAX_HEADER_BYTES = 1 << 20
# Seconds of rows before the window kept as calibration history (shared by both CLIs' --calibration).
DEFAULT_CALIBRATION_SECONDS = 120.0
# Columns that nearly always differ between two messages: hashing them finds the candidate duplicates.
DUPLICATE_KEYS = ("ts_event", "ts_recv", "publisher_id", "sequence", "price", "size")
_INT64_MIN = int(np.iinfo(np.int64).min)
_INT64_MAX = int(np.iinfo(np.int64).max)
# An integer column other than a timestamp is held in the first of these that holds all its values (most
# of a full day's frame is such columns: sizes fit int16, venue ids int8): the frame's dtype depends on the
# loaded values only, never on how the file was read (blocks, a cache). Every consumer converts a column
# to int64 (or float64) before computing with it.
_INTEGER_RANGES = tuple(
    (np.dtype(t), int(np.iinfo(t).min), int(np.iinfo(t).max)) for t in (np.int8, np.int16, np.int32, np.int64)
)
INTEGER_DTYPES = tuple(dtype for dtype, _, _ in _INTEGER_RANGES)

_ISO_RE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?$"
_ZONE_RE = r"(Z|[+-]\d{2}:?\d{2})$"
_DBN_SUFFIXES = (".dbn", ".dbn.zst")
_CSV_COLUMN_ERROR = re.compile(r"In CSV column #(\d+): (.*)")


@dataclass
class MarketData:
    """The rows of one source inside a window, plus what is needed to describe and check the file."""

    frame: pd.DataFrame
    source: str
    window: Window
    rows_total: int
    file_first_ts: int | None
    file_last_ts: int | None
    levels: int
    price_format: str
    symbols: list[str] = field(default_factory=list)
    # Rows in [window.start_ns - calibration, window.start_ns), for estimation only, never traded;
    # None when no calibration was asked for. Last, with a default, so other constructors still work.
    history: pd.DataFrame | None = None
    # (history, frame, history followed by frame) when the loader built `history` and `frame` as slices of
    # one frame: `frame_with_history` returns that frame instead of concatenating a copy, as long as
    # `history` and `frame` are still those objects. Not a constructor argument (nor copied by replace).
    joined: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without `joined`: its frame would be written out again beside `history` and `frame`."""
        return self.__dict__ | {"joined": None}

    @property
    def rows_in_window(self) -> int:
        return len(self.frame)

    @property
    def history_rows(self) -> int:
        return 0 if self.history is None else len(self.history)

    def sub_window(self, window: Window, calibration_ns: int) -> MarketData:
        """The same source cut to `window`, with `calibration_ns` of history before it taken from this
        data's window and history: what loading the file with that window would give, without re-reading
        it (a study evaluates many orders on one path)."""
        rows = frame_with_history(self)
        ts = rows["ts_event"].to_numpy(dtype=np.int64)
        history = (ts >= history_start(window, calibration_ns)) & (ts < window.start_ns)
        return dataclasses.replace(
            self,
            frame=rows[window.contains(ts)].reset_index(drop=True),
            window=window,
            history=rows[history].reset_index(drop=True) if calibration_ns > 0 else None,
        )


def calibration_to_ns(seconds: float) -> int:
    """--calibration seconds as integer nanoseconds (the unit every bound here is kept in)."""
    return round(seconds * NS_PER_SECOND)


def history_start(window: Window, calibration_ns: int) -> int:
    """First ns of the calibration history: the window start minus the span, clamped to int64.

    An unbounded start (--start all) leaves no room before it, so the history is empty.
    """
    if window.open_start:
        return window.start_ns
    return max(window.start_ns - calibration_ns, _INT64_MIN)


def load(
    path: str | Path,
    window: WindowSpec | None = None,
    *,
    levels: int | None = None,
    symbol: str | None = None,
    price_format: str = "auto",
    block_size: int = BLOCK_SIZE,
    calibration_ns: int = 0,
    cache_dir: str | Path | None = None,
    symbol_cache: bool = True,
    depth_side: str | None = None,
) -> MarketData:
    """Read `path` and keep the rows inside `window` (default: the trial window on the data's date).

    `levels` limits the book levels parsed (1 is enough for top-of-book routing and saves most of the
    work on MBP-10 files); `depth_side` ("bid" or "ask") keeps only that side below the top level (both
    sides' level 00 always): all a simulated order that takes from that side reads, and half the book of
    a full day's frame. `symbol` selects one instrument of a multi-symbol file. `calibration_ns` > 0
    also keeps the rows that long before the window start as `history` (see `MarketData.history`).

    With `symbol` on a CSV holding several symbols, the file is split once into per-symbol Parquet files
    under `cache_dir` (default $SOR_CACHE_DIR or .sor_cache/symbols) and each later load of one of its
    symbols reads only that symbol's file (allocator.data.symbol_cache); `symbol_cache=False` parses
    the CSV every time. Either way the result is the same.
    """
    calibration_ns = int(calibration_ns)
    if calibration_ns < 0:
        raise ValueError(f"calibration_ns must be >= 0, got {calibration_ns}")
    if depth_side is not None and depth_side not in BOOK_SIDES:
        raise ValueError(f"depth_side must be None or one of {BOOK_SIDES}, got {depth_side!r}")
    path = Path(path)
    window = window if window is not None else WindowSpec()
    if price_format not in PRICE_FORMATS:
        raise SettingError.not_one_of(price_format, PRICE_FORMATS, "price_format")
    if not path.exists():
        raise SettingError(
            f"data file not found: {SettingError.literal(str(path))} (pass {{csv}} PATH to a Databento "
            "MBP-1/MBP-10 or L1 CSV)",
            csv="csv_path",
        )
    if path.is_dir():
        raise SettingError(
            f"{SettingError.literal(str(path))} is a directory; pass {{csv}} PATH to a data file",
            csv="csv_path",
        )
    if path.name.endswith(_DBN_SUFFIXES):
        return _load_dbn(
            path, window, levels=levels, symbol=symbol, calibration_ns=calibration_ns, depth_side=depth_side
        )
    return _load_csv(
        path,
        window,
        levels=levels,
        depth_side=depth_side,
        symbol=symbol,
        price_format=price_format,
        block_size=block_size,
        calibration_ns=calibration_ns,
        cache_dir=cache_dir,
        symbol_cache=symbol_cache,
    )


# --------------------------------------------------------------------------------------------- CSV


def read_header(path: Path) -> list[str]:
    """Column names from the first line, through the same decompression as the data."""
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            first = b""
            while b"\n" not in first and len(first) <= MAX_HEADER_BYTES:
                chunk = stream.read(1 << 16)
                if not chunk:
                    break
                first += chunk
            first = first.split(b"\n", 1)[0]
    except (OSError, pa.ArrowException) as exc:
        raise UserError(
            f"{path}: cannot read the file ({_short(exc)}); is it a complete CSV/.gz/.zst?"
        ) from None
    if not first.strip():
        raise UserError(f"{path} is empty: expected a CSV header with {', '.join(REQUIRED_COLUMNS)}")
    if len(first) > MAX_HEADER_BYTES:
        raise UserError(
            f"{path}: line 1 (the header) is longer than {MAX_HEADER_BYTES >> 20} MiB; expected a CSV header "
            f"with {', '.join(REQUIRED_COLUMNS)}"
        )
    try:
        text = first.decode("utf-8").strip().lstrip("\ufeff")
    except UnicodeDecodeError:
        raise UserError(f"{path}: the header line is not UTF-8 text; is this a CSV file?") from None
    # The csv module, not str.split: a header may quote its names ("ts_event",...) like any CSV field.
    return [name.strip() for name in next(csv.reader([text]))]


def _check_columns(path: Path, header: list[str]) -> None:
    """Required columns present, and no name twice: a repeated name (ignoring case and surrounding spaces,
    which the reader strips) leaves it unclear which copy is meant, so it is refused, not guessed."""
    seen: dict[str, list[int]] = {}
    for index, name in enumerate(header):
        seen.setdefault(name.casefold(), []).append(index)
    repeated = [indices for indices in seen.values() if len(indices) > 1]
    if repeated:
        named = "; ".join(" and ".join(f"{header[i]!r} (field {i + 1})" for i in group) for group in repeated)
        raise UserError(
            f"{path}: the header repeats column names: {named}; each column must be named once "
            "(case and spaces aside) — rename or drop the extra ones"
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if not missing:
        return
    hint = ""
    if len(header) == 1:
        for sep, label in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
            if sep in header[0]:
                hint = f" — the header is separated by {label}; the loader expects comma-separated values"
                break
    raise UserError(f"{path}: missing required column(s) {', '.join(missing)}{hint}")


def column_plan(
    header: list[str], levels: int | None, depth_side: str | None = None
) -> tuple[list[str], dict[str, pa.DataType], int]:
    """Which known columns to parse and as which types; unknown extra columns are ignored. Below level
    00 only `depth_side`'s fields when one is given."""
    present = set(header)
    available = book_levels(present)
    use_levels = available if levels is None else min(levels, available)
    wanted = [c for c in HEADER_FIELDS if c in present]
    for lvl in range(use_levels):
        fields = [
            f for f in LOADED_LEVEL_FIELDS if lvl == 0 or depth_side is None or f.startswith(f"{depth_side}_")
        ]
        wanted += [level_column(f, lvl) for f in fields if level_column(f, lvl) in present]
    if "symbol" in present:
        wanted.append("symbol")
    types: dict[str, pa.DataType] = {}
    for name in wanted:
        if name in TIMESTAMP_COLUMNS:
            types[name] = pa.string()
        elif name in STRING_COLUMNS:
            types[name] = pa.dictionary(pa.int32(), pa.string())
        elif is_price_column(name):
            types[name] = pa.float64()
        else:
            types[name] = pa.int64()
    return wanted, types, use_levels


def _load_csv(
    path: Path,
    window: WindowSpec,
    *,
    levels: int | None,
    symbol: str | None,
    price_format: str,
    block_size: int,
    calibration_ns: int = 0,
    cache_dir: str | Path | None = None,
    symbol_cache: bool = True,
    depth_side: str | None = None,
) -> MarketData:
    header = read_header(path)
    _check_columns(path, header)
    if symbol is not None and symbol_cache and "symbol" in header:
        # A multi-symbol file is split once into per-symbol Parquet; each symbol then reads only its own.
        from allocator.data import symbol_cache as cache

        cached = cache.load_symbol(
            path,
            header,
            window,
            levels=levels,
            symbol=symbol,
            price_format=price_format,
            block_size=block_size,
            calibration_ns=calibration_ns,
            cache_dir=cache_dir,
            depth_side=depth_side,
        )
        if cached is not None:
            return cached
    return load_csv_direct(
        path,
        header,
        window,
        levels=levels,
        depth_side=depth_side,
        symbol=symbol,
        price_format=price_format,
        block_size=block_size,
        calibration_ns=calibration_ns,
    )


def load_csv_direct(
    path: Path,
    header: list[str],
    window: WindowSpec,
    *,
    levels: int | None,
    symbol: str | None,
    price_format: str,
    block_size: int = BLOCK_SIZE,
    calibration_ns: int = 0,
    depth_side: str | None = None,
) -> MarketData:
    """Parse the whole CSV (its header already checked), keeping the rows of `window` (and `symbol`)."""
    wanted, types, use_levels = column_plan(header, levels, depth_side)
    price_columns = [c for c in wanted if types[c] == pa.float64()]
    state = Accumulator(path, window, symbol, price_format, price_columns, calibration_ns)
    for block in parsed_blocks(path, header, wanted, types, block_size, state.prices):
        state.add(block)
    return state.finish(use_levels)


@functools.cache
def reader_pool() -> pa.MemoryPool:
    """jemalloc returns the reader's freed blocks to the OS promptly; the default (mimalloc) keeps them,
    which measured as +35 % peak RSS on a 2-million-row load (bench/bench_loader.py)."""
    try:
        pool = pa.jemalloc_memory_pool()
        # Return freed pages at once, not after jemalloc's default 10 s: the blocks are freed while the
        # result is joined, and a peak of the result plus its blocks is what reading by blocks avoids.
        pa.jemalloc_set_decay_ms(0)
        return pool
    except (NotImplementedError, pa.ArrowException):
        return pa.default_memory_pool()


def _parse_workers() -> int:
    """Threads parsing blocks at once: pyarrow's streaming CSV reader is single-threaded, so the blocks
    are parsed here, in parallel, a few blocks per worker in flight (bounding memory)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def parsed_blocks(
    path: Path,
    header: list[str],
    wanted: list[str],
    types: dict[str, pa.DataType],
    block_size: int,
    prices: PriceFormat,
) -> Iterator[Block]:
    """The file's blocks parsed and converted in a thread pool, yielded in file order.

    A failure is raised in file order too: a block's error only after every earlier block was handed
    on (whose own checks may fail first), a read error (truncated .gz) only after the blocks before it.
    Line numbers are 2 + the rows before, as the streaming reader counted them; the workers cannot know
    them, so a block whose conversion failed is converted again here to name its line.
    """
    workers = _parse_workers()
    price_columns = frozenset(c for c in wanted if types[c] == pa.float64())
    reading = _Reading(types)
    # Two blocks a worker queued: one worker held up (a shared machine) does not stall the others at
    # the oldest block, which must be handed on first.
    in_flight = 2 * workers + 1
    buffers = Buffers(block_size, in_flight + 2)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sor-csv")
    pending: deque[Future[Block | pa.Table]] = deque()
    failure: UserError | None = None
    raw = raw_blocks(path, block_size, buffers)
    line = 2

    def ready() -> Block:
        nonlocal line
        done = pending.popleft().result()
        if isinstance(done, pa.Table):  # its conversion failed: again, with its line, for the message
            convert_block(done, line, path, price_columns, None)
            raise AssertionError("a block's conversion failed once but not twice")  # pragma: no cover
        done.first_line = line
        line += done.rows
        return done

    try:
        while True:
            try:
                data = next(raw, None)
            except UserError as exc:
                failure = exc
                break
            except (OSError, pa.ArrowException) as exc:
                failure = _csv_error(path, exc, header, types)
                break
            if data is None:
                break
            pending.append(
                pool.submit(_parse_block, path, header, wanted, reading, price_columns, data, prices, buffers)
            )
            while len(pending) > in_flight:
                yield ready()
        while pending:
            yield ready()
        if failure is not None:
            raise failure
    finally:
        raw.close()
        pool.shutdown(wait=True, cancel_futures=True)


class Buffers:
    """Block buffers handed back once parsed and read into again: a fresh 8 MiB buffer per block costs
    its page faults and zeroing on every read, which measured as a third of a top-of-book parse."""

    def __init__(self, block_size: int, keep: int) -> None:
        self.size = block_size + (64 << 10)  # a block and a typical unfinished line before it
        self.keep = keep
        self.free: list[bytearray] = []
        self.lock = threading.Lock()

    def get(self, size: int) -> bytearray:
        with self.lock:
            if self.free and size <= self.size:
                return self.free.pop()
        return bytearray(max(size, self.size))

    def put(self, view: memoryview) -> None:
        """Return the buffer `view` is a piece of: its bytes were parsed, nothing refers to them now."""
        buffer = view.obj
        try:
            view.release()
        except BufferError:  # something still refers to it (an error's traceback): leave it be
            return
        if isinstance(buffer, bytearray) and len(buffer) == self.size:
            with self.lock:
                if len(self.free) < self.keep:
                    self.free.append(buffer)


def raw_blocks(path: Path, block_size: int, buffers: Buffers | None = None) -> Generator[memoryview]:
    """The data lines after the header in pieces of about `block_size` bytes, cut at line ends, each in
    its own buffer (read into, not copied; from `buffers` when given, handed back there once parsed). A
    line of `block_size` bytes or more is refused, as the streaming reader did: it bounds what one row
    may hold in memory."""
    buffers = buffers or Buffers(block_size, 0)
    with pa.input_stream(str(path), compression="detect") as stream:
        carry = b""  # the start of a line not yet ended
        in_header = True
        while True:
            buffer = buffers.get(len(carry) + block_size)
            buffer[: len(carry)] = carry
            end = len(carry) + _read_into(stream, memoryview(buffer)[len(carry) : len(carry) + block_size])
            start = 0
            if in_header:
                newline = buffer.find(b"\n", 0, end)
                if newline < 0:
                    if end == len(carry):
                        return  # a header and no newline: no data rows
                    carry = bytes(buffer[:end])
                    continue
                start, in_header = newline + 1, False
            elif end == len(carry):  # the end of the file
                if carry:  # the last line, without a newline
                    if len(carry) >= block_size:
                        raise _long_line_error(path, block_size)
                    yield memoryview(buffer)[:end]
                return
            first = buffer.find(b"\n", start, end)
            if (first if first >= 0 else end) - start >= block_size:
                raise _long_line_error(path, block_size)
            last = buffer.rfind(b"\n", start, end) + 1
            if last == 0:
                carry = bytes(buffer[start:end])
                continue
            carry = bytes(buffer[last:end])
            if last > start:
                yield memoryview(buffer)[start:last]


def _read_into(stream: pa.NativeFile, target: memoryview) -> int:
    """Fill `target` from the stream; fewer bytes only at its end."""
    filled = 0
    while filled < len(target):
        got = stream.readinto(target[filled:])
        if not got:
            break
        filled += got
    return filled


def _long_line_error(path: Path, block_size: int) -> UserError:
    line = _locate_long_line(path, block_size)
    where = f"line {line}" if line else "a row"
    return UserError(
        f"{path}: {where} is longer than the {_size_in_words(block_size)} the loader reads at a time "
        "(one huge field?); fix or drop that row"
    )


def _locate_long_line(path: Path, limit: int) -> int | None:
    """Slow path: the first line of at least `limit` bytes, found per 1 MiB chunk with numpy (no per-line
    Python work), holding only the current chunk."""
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            number, length = 1, 0  # the current line and its bytes so far
            while chunk := stream.read(1 << 20):
                ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == ord("\n"))
                if not len(ends):
                    length += len(chunk)
                    if length >= limit:
                        return number
                    continue
                lengths = np.diff(ends, prepend=-1) - 1  # bytes of each line ended in this chunk
                lengths[0] += length
                long = np.flatnonzero(lengths >= limit)
                if len(long):
                    return number + int(long[0])
                number += len(ends)
                length = len(chunk) - int(ends[-1]) - 1
                if length >= limit:
                    return number
    except (OSError, pa.ArrowException):
        return None
    return None


class _Reading:
    """The column types blocks are parsed with. Timestamps are parsed by the CSV reader itself as UTC
    ISO-8601 (no text column is built: the bulk of a top-of-book parse) until a block's do not parse so
    — integer nanoseconds, naive or mixed forms, a bad value —; from then on they are read as text and
    converted by `parse_timestamps`, which accepts the other forms and names a bad value's line."""

    def __init__(self, types: dict[str, pa.DataType]) -> None:
        self.text = types
        self.native = {
            name: pa.timestamp("ns", tz="UTC") if name in TIMESTAMP_COLUMNS else kind
            for name, kind in types.items()
        }
        self.timestamps_native = any(name in TIMESTAMP_COLUMNS for name in types)


def _parse_block(
    path: Path,
    header: list[str],
    wanted: list[str],
    reading: _Reading,
    price_columns: frozenset[str],
    data: memoryview,
    prices: PriceFormat,
    buffers: Buffers,
) -> Block | pa.Table:
    """One block, parsed by pyarrow and converted (a worker's job); the parsed table instead when its
    conversion fails, for `parsed_blocks` to name the line."""
    try:
        table = _parse_text(path, header, wanted, reading, data)
    finally:
        buffers.put(data)  # the parsed table holds copies (pyarrow's CSV reader never refers to its input)
    try:
        return convert_block(table, 2, path, price_columns, prices.mode)
    except UserError:
        return table


def _parse_text(
    path: Path, header: list[str], wanted: list[str], reading: _Reading, data: memoryview
) -> pa.Table:
    try:
        table = None
        if reading.timestamps_native:
            try:
                table = _read_pieces(data, header, wanted, reading.native)
            except pa.ArrowException:
                table = None  # read again with text timestamps: this error, if still one, is named then
        if table is None:
            table = _read_pieces(data, header, wanted, reading.text)
            reading.timestamps_native = False
    except (OSError, pa.ArrowException) as exc:
        raise _csv_error(path, exc, header, reading.text) from None
    return table


def _read_pieces(
    data: memoryview, header: list[str], wanted: list[str], types: dict[str, pa.DataType]
) -> pa.Table:
    """A block parsed in PARSE_BLOCK_SIZE pieces, or whole when a line is longer than a piece."""
    try:
        return read_block(data, header, wanted, types, min(len(data) + 1, PARSE_BLOCK_SIZE))
    except pa.ArrowInvalid as exc:
        if "straddl" not in str(exc):
            raise
        return read_block(data, header, wanted, types, len(data) + 1)


def read_block(
    data: memoryview, header: list[str], wanted: list[str], types: dict[str, pa.DataType], block_size: int
) -> pa.Table:
    return pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(column_names=header, block_size=block_size, use_threads=False),
        convert_options=pacsv.ConvertOptions(
            include_columns=wanted, column_types=types, strings_can_be_null=True
        ),
        memory_pool=reader_pool(),
    )


def _csv_error(path: Path, exc: Exception, header: list[str], types: dict[str, pa.DataType]) -> UserError:
    """Turn a pyarrow failure into one line naming the file, line and column."""
    text = _short(exc)
    lowered = text.lower()
    if "truncated" in lowered or "compress" in lowered or "gzip" in lowered or "zstd" in lowered:
        return UserError(
            f"{path}: compressed data is truncated or corrupt ({text}); re-download or re-export it"
        )
    match = _CSV_COLUMN_ERROR.search(text)
    if match:
        index = int(match.group(1))  # pyarrow counts the file's columns, not the parsed subset
        column = header[index] if index < len(header) else f"#{index + 1}"
        dtype = types.get(column)
        located, problem = _locate_bad_value(path, header, column, dtype)
        if "utf8" in lowered or "utf-8" in lowered:
            return UserError(
                f"{path}: {located or f'column {column}'}: bytes that are not UTF-8 text; re-export the file as UTF-8"
            )
        kind = "a whole number" if dtype == pa.int64() else "a number" if dtype == pa.float64() else "valid"
        return UserError(
            f"{path}: {located or f'column {column}'} {problem or f'is not {kind}'}; fix or drop that row"
        )
    if "expected" in lowered and "columns" in lowered:
        line = _locate_ragged_line(path, len(header))
        where = f"line {line}" if line else "a row"
        return UserError(
            f"{path}: {where} has a different number of fields than the header's {len(header)}; "
            "the file may be cut or mixed"
        )
    return UserError(f"{path}: cannot parse the CSV ({text})")


def _locate_bad_value(
    path: Path, header: list[str], column: str, dtype: pa.DataType | None
) -> tuple[str, str]:
    """Slow path, only after a failure: re-read one column as text to name the offending line and what is
    wrong with its value ("", "" when it cannot be found)."""
    try:
        reader = pacsv.open_csv(
            str(path),
            read_options=_read_options(header, BLOCK_SIZE),
            convert_options=pacsv.ConvertOptions(
                include_columns=[column], column_types={column: pa.binary()}
            ),
        )
        line = 2
        for batch in reader:
            for i, raw in enumerate(batch.column(0).to_pylist()):
                value = raw if raw is not None else b""
                problem = _value_problem(value, dtype)
                if problem:
                    shown = value.decode("utf-8", "backslashreplace")
                    return f"line {line + i}, column {column}: value {shown!r}", problem
            line += batch.num_rows
    except (OSError, pa.ArrowException):
        return "", ""
    return "", ""


def _read_options(header: list[str], block_size: int) -> pacsv.ReadOptions:
    """The header as `read_header` parsed it (names stripped), so the reader's columns are the checked ones."""
    return pacsv.ReadOptions(block_size=block_size, column_names=header, skip_rows=1)


def _size_in_words(size: int) -> str:
    return f"{size >> 20} MiB" if size >= 1 << 20 and not size % (1 << 20) else f"{size:,} bytes"


def _locate_ragged_line(path: Path, fields: int) -> int | None:
    """Slow path: the first line whose comma count differs from the header's (quoted fields aside)."""
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            pending, number = b"", 0
            while chunk := stream.read(1 << 20):
                *complete, pending = (pending + chunk).split(b"\n")
                for line in complete:
                    number += 1
                    if _ragged(line, fields):
                        return number
            if _ragged(pending, fields):  # the last line, without a newline: a file cut mid-row
                return number + 1
    except (OSError, pa.ArrowException):
        return None
    return None


_WHOLE_NUMBER = re.compile(r"[+-]?\d+")


def _ragged(line: bytes, fields: int) -> bool:
    return bool(line.strip()) and line.count(b",") + 1 != fields and b'"' not in line


def _value_problem(value: bytes, dtype: pa.DataType | None) -> str:
    """Why the reader refused `value` as `dtype` ("" when it would accept it): the same rules, in Python,
    for the one column being searched after a failure."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return "is not UTF-8 text"
    text = text.strip()
    if dtype is None or text == "" or text.lower() in {"nan", "null", "na", "n/a"}:
        return ""
    if dtype == pa.int64():
        if not _WHOLE_NUMBER.fullmatch(text):
            return "is not a whole number"
        if not _INT64_MIN <= int(text) <= _INT64_MAX:
            return "is outside the 64-bit integer range"
    elif dtype == pa.float64():
        try:
            float(text.replace("_", "?"))  # Python allows 1_000; the reader does not
        except ValueError:
            return "is not a number"
    return ""


# ------------------------------------------------------------------------------------------ blocks

# One block's columns by name: for a number column, its chunks as int64/float64 numpy arrays (views of
# the parsed pieces, joined once, at the end); for a string column, one pyarrow dictionary array (the kind
# follows the column's name, which the type checker cannot see, so values are Any).
_Columns = dict[str, Any]
# The checks a block's prices get: "decimal" (nothing at or above FIXED_POINT_THRESHOLD), "fixed" (given:
# whole numbers) and "fixed_detected" (detected: whole numbers, and no small non-zero price either).
_PriceCheck = str


@dataclass
class Block:
    """One block of rows, converted: the loader's column types, undefined prices NaN (not yet scaled from
    fixed-point, which is done once for the whole result), and what its prices say about the format."""

    first_line: int
    columns: _Columns
    ts: np.ndarray  # ts_event, whole (the window and the calibration span are cut on it)
    tops: dict[str, float]  # per price column, the largest |price| (NaN aside)
    first_priced: tuple[int, str] | None = None  # the first non-zero price (row, column), when asked for
    checked: _PriceCheck | None = None  # the check `bad` holds the outcome of, when run by the worker
    bad: tuple[int, str] | None = None

    @property
    def rows(self) -> int:
        return len(self.ts)

    def prices(self) -> dict[str, np.ndarray]:
        return {name: joined(self.columns[name]) for name in self.tops}

    def value(self, name: str, row: int) -> float:
        for chunk in self.columns[name]:
            if row < len(chunk):
                return float(chunk[row])
            row -= len(chunk)
        raise IndexError(row)


def convert_block(
    table: pa.Table,
    first_line: int,
    path: Path,
    price_columns: frozenset[str],
    check: _PriceCheck | None,
) -> Block:
    """A parsed table in the loader's types, with the per-row checks that need no other block.

    Columns are checked in file order (an empty identifier, a bad timestamp), as the rows were before.
    `check` is the price check the file's format calls for, or None while the format is undecided: then
    the block's first non-zero price is found instead, for the format to be decided from.
    """
    columns: _Columns = {}
    tops: dict[str, float] = {}
    for name in table.column_names:
        column = table.column(name)
        if name in REQUIRED_IDENTIFIERS and column.null_count:
            row = int(np.flatnonzero(pc.is_null(column).to_numpy())[0])
            raise UserError(
                f"{path}: line {first_line + row}, column {name} is empty; every row needs "
                f"{REQUIRED_IDENTIFIERS[name]} — fix or drop that row"
            )
        # One array per column and block (the parsed pieces' small chunks joined): what is kept until
        # the final join is then one allocation per column, which goes back to the OS whole when freed.
        whole = one_chunk(column)
        if name in TIMESTAMP_COLUMNS:
            if pa.types.is_timestamp(column.type) and not column.null_count:  # parsed by the reader
                columns[name] = [pc.cast(whole, pa.int64()).to_numpy()]
            else:
                columns[name] = [parse_timestamps(whole, path, name, first_line)]
        elif name in STRING_COLUMNS:
            columns[name] = as_dictionary(whole)
        elif name in price_columns:
            values, tops[name] = _price_values(whole)
            columns[name] = [values]
        else:
            columns[name] = [integer_values(whole)]
    ts = joined(columns["ts_event"])
    columns["ts_event"] = [ts]
    block = Block(first_line, columns, ts, tops)
    if check is None:
        block.first_priced = _first_priced(block.prices())
    else:
        block.checked, block.bad = check, _first_bad(block, check)
    return block


def integer_values(arr: pa.Array) -> np.ndarray:
    """An integer column of a block as int32 when every value fits, else int64 (an empty cell is 0)."""
    pool = reader_pool()
    if arr.null_count:
        arr = pc.fill_null(arr, 0, memory_pool=pool)
    if arr.type != pa.int32():
        try:
            arr = pc.cast(arr, pa.int32(), safe=True, memory_pool=pool)
        except pa.ArrowInvalid:  # a value outside int32 (or not an integer type): int64, as before
            return arr.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return arr.to_numpy(zero_copy_only=False)


def integer_dtype(lo: int, hi: int) -> np.dtype:
    """The first of `INTEGER_DTYPES` that holds every value in [lo, hi]."""
    for dtype, low, high in _INTEGER_RANGES:
        if low <= lo and hi <= high:
            return dtype
    return INTEGER_DTYPES[-1]  # pragma: no cover - int64 values always fit int64


def joined_integers(chunks: list[np.ndarray]) -> np.ndarray:
    """An integer column's chunks as one array of the narrowest of `INTEGER_DTYPES` that holds every
    value (checked, never wrapped), whatever the chunks' own types: int8 for venue ids, int16 for sizes."""
    present = [chunk for chunk in chunks if len(chunk)]
    lo = min((int(chunk.min()) for chunk in present), default=0)
    hi = max((int(chunk.max()) for chunk in present), default=0)
    dtype = integer_dtype(lo, hi)
    if len(present) == 1 and present[0].dtype == dtype:
        return present[0]
    # The range was checked above: "same_kind" narrows an integer type only where every value fits.
    return np.concatenate(present or [np.empty(0, dtype)], dtype=dtype, casting="same_kind")


def one_chunk(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 1:
            return column.chunk(0)
        # concat_arrays, not combine_chunks: only it allocates from the given pool.
        return pa.concat_arrays(column.chunks or [pa.array([], type=column.type)], reader_pool())
    return column


def joined(chunks: list[np.ndarray]) -> np.ndarray:
    """A number column's chunks as one array (the chunk itself when there is one)."""
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def _price_values(arr: pa.Array) -> tuple[np.ndarray, float]:
    """float64 with NaN for an empty cell and for Databento's undefined price (INT64_MAX), and the
    largest |price| (NaN aside) — from two reductions, not a pass that writes, in the usual case."""
    values = arr.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    top = _largest(values)
    if top >= UNDEF_PRICE_FLOAT:
        values = values.copy()
        values[np.abs(values) >= UNDEF_PRICE_FLOAT] = np.nan
        top = _largest(values)
    return values, top


def _largest(values: np.ndarray) -> float:
    """max |v| over the non-NaN values (0 when there are none)."""
    return max(float(np.fmax.reduce(values, initial=0.0)), -float(np.fmin.reduce(values, initial=0.0)))


def _first_priced(prices: dict[str, np.ndarray]) -> tuple[int, str] | None:
    """The earliest non-zero price (row, then column order): the one that decides an "auto" format."""
    best: tuple[int, str] | None = None
    for name, v in prices.items():
        head = v if best is None else v[: best[0]]
        priced = np.isfinite(head) & (head != 0)
        if priced.any():
            best = (int(np.argmax(priced)), name)
    return best


def _first_bad(block: Block, check: _PriceCheck) -> tuple[int, str] | None:
    """The earliest price (row, then column order) that the format's rule refuses, or None."""
    best: tuple[int, str] | None = None
    for name, top in block.tops.items():
        if check == "decimal" and top < FIXED_POINT_THRESHOLD:
            continue  # the usual case, from the block's largest price alone
        v = joined(block.columns[name])
        head = v if best is None else v[: best[0]]
        if check == "decimal":
            wrong = np.abs(head) >= FIXED_POINT_THRESHOLD  # NaN compares False
        else:
            wrong = np.isfinite(head) & (head != np.round(head))
            if check == "fixed_detected":  # detected, not given: a small price is a decimal
                wrong |= (head != 0) & (np.abs(head) < FIXED_POINT_THRESHOLD) & np.isfinite(head)
        if wrong.any():
            best = (int(np.argmax(wrong)), name)
    return best


def as_dictionary(arr: pa.Array) -> pa.DictionaryArray:
    """A string column as a dictionary array (the CSV reader's form; DBN and Parquet may give plain)."""
    if pa.types.is_dictionary(arr.type):
        return arr
    return pc.dictionary_encode(arr, memory_pool=reader_pool())


def dictionary_codes(arr: pa.DictionaryArray) -> np.ndarray:
    """The indices as int64, -1 for an empty cell."""
    indices = arr.indices
    if indices.null_count:
        indices = pc.fill_null(indices, -1)
    return indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def used_values(arr: pa.DictionaryArray, codes: np.ndarray) -> list[str]:
    """The dictionary values that `codes` (a subset of the array's) use."""
    values = arr.dictionary.to_pylist()
    if not values or not len(codes):
        return []
    present = np.bincount(codes + 1, minlength=len(values) + 1)[1:] > 0
    return [str(v) for v, used in zip(values, present, strict=True) if used]


def _code_of(arr: pa.DictionaryArray, value: str) -> int:
    """The index of `value` in the array's dictionary, or -2 (no row has it: -1 means empty)."""
    found = pc.index(arr.dictionary, value).as_py()
    return -2 if found is None or found < 0 else int(found)


def _take(columns: _Columns, mask: np.ndarray) -> _Columns:
    selection = pa.array(mask)
    return {
        name: pc.filter(v, selection, memory_pool=reader_pool())
        if isinstance(v, pa.Array)
        else [joined(v)[mask]]
        for name, v in columns.items()
    }


def _rows(part: _Columns) -> int:
    return sum(len(chunk) for chunk in part["ts_event"])


def _categorical(parts: list[pa.DictionaryArray]) -> pd.Categorical:
    """One categorical for the parts' rows, its categories the values they use, sorted: a dtype that does
    not depend on how the rows were read (blocks, a cache), so every path gives the same frame."""
    coded = [(dictionary_codes(part), part) for part in parts]
    categories = sorted({value for codes, part in coded for value in used_values(part, codes)})
    index = {value: i for i, value in enumerate(categories)}
    joined = [
        np.array([index.get(str(v), -1) for v in part.dictionary.to_pylist()] + [-1], dtype=np.int64)[codes]
        for codes, part in coded
    ]
    codes = np.concatenate(joined) if joined else np.empty(0, dtype=np.int64)
    dtype = pd.CategoricalDtype(pd.Index(categories, dtype="str"))
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


class PriceFormat:
    """The file's one price format — decimal or Databento fixed-point (1e-9) — given, or decided ("auto")
    from the file's first non-zero price; every block is checked against it, so a file that changes
    format part-way fails at the line where it changes instead of being scaled as if it did not."""

    def __init__(self, path: Path, given: str) -> None:
        self.path = path
        self.format = given  # "auto" until decided
        # (line, column) of the price that decided an "auto" format; None while undecided or when given.
        self.decided_at: tuple[int, str] | None = None

    @property
    def mode(self) -> _PriceCheck | None:
        """The check a block's prices get, None while the format is undecided (read by the workers)."""
        if self.format == "auto":
            return None
        if self.format == "decimal":
            return "decimal"
        return "fixed" if self.decided_at is None else "fixed_detected"

    @property
    def fixed(self) -> bool:
        return self.format == "fixed"

    def check(self, block: Block) -> None:
        """Decide the format from this block if still undecided, then check the block against it."""
        if self.format == "auto" and block.first_priced is not None:
            row, name = block.first_priced
            value = block.value(name, row)
            looks_fixed = value == round(value) and abs(value) >= FIXED_POINT_THRESHOLD
            self.format = "fixed" if looks_fixed else "decimal"
            self.decided_at = (block.first_line + row, name)
        check = self.mode or "decimal"
        bad = block.bad if block.checked == check else _first_bad(block, check)
        if bad is not None:
            row, name = bad
            raise self._error(name, block.first_line + row, block.value(name, row))

    def scaled(self, values: np.ndarray) -> np.ndarray:
        """A price column in dollars: fixed-point prices scaled by 1e-9 (and rounded to the 1e-9 grid)."""
        return np.round(values * FIXED_PRICE_SCALE, 9) if self.fixed else values

    def _error(self, name: str, line: int, value: float) -> UserError:
        where = (
            f"{self.path}: line {line}, column {name}: price {np.format_float_positional(value, trim='-')}"
        )
        fixed = self.format == "fixed"
        if self.decided_at is None:  # the format was given by the user
            kind = "is not a whole number, so not" if fixed else "looks like"
            other = "decimal" if fixed else "fixed"
            return SettingError(
                f"{SettingError.literal(where)} {kind} Databento fixed-point (1e-9), yet {{fmt}} "
                f"{self.format} was given; pass {{fmt}} {other} or fix the file",
                fmt="price_format",
            )
        line0, name0 = self.decided_at
        kind, earlier = (
            ("is a decimal", "Databento fixed-point (1e-9)")
            if fixed
            else ("looks like Databento fixed-point (1e-9)", "a decimal")
        )
        return UserError(
            f"{where} {kind}, but the file's first price (line {line0}, column {name0}) is {earlier}; "
            "a file must use one price format throughout — re-export it"
        )


@functools.cache
def _malloc_trim() -> Any:
    """glibc's malloc_trim, or None elsewhere (another C library, another OS)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return None


def release_freed_memory() -> None:
    """Hand the pages freed by the join back to the OS. The blocks' small arrays were allocated by the
    worker threads from their own malloc arenas, which keep freed pages for reuse by those threads only:
    on a full MBP-10 day that measured as 100-200 MB of RSS held for the rest of the run."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@contextlib.contextmanager
def _small_pages() -> Iterator[None]:
    """numpy asks the kernel for huge pages for large arrays (madvise); where the kernel then compacts
    memory to find them (THP defrag "madvise", a common default), first touching a big result measured
    as twice the CPU of the join itself. The result's columns are allocated without that hint."""
    try:
        setter = getattr(importlib.import_module("numpy._core.multiarray"), "_set_madvise_hugepage", None)
    except ImportError:  # pragma: no cover - another numpy
        setter = None
    if setter is None:  # pragma: no cover - another numpy: keep its default
        yield
        return
    previous = setter(False)
    try:
        yield
    finally:
        setter(previous)


class Accumulator:
    """Takes converted blocks in file order: checks their prices, window-filters them and keeps only the
    in-window rows (and, with a calibration span, the rows just before the window, apart, as history)."""

    def __init__(
        self,
        path: Path,
        window: WindowSpec,
        symbol: str | None,
        price_format: str,
        price_columns: list[str],
        calibration_ns: int = 0,
    ) -> None:
        self.path = path
        self.window_spec = window
        self.symbol = symbol
        self.prices = PriceFormat(path, price_format)
        self.price_columns = price_columns
        self.window: Window | None = None
        self.rows_total = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.kept: list[_Columns] = []
        self.any_in_window = False  # rows of any symbol in the window
        self.symbols_in_window: set[str] = set()
        self.calibration_ns = calibration_ns
        # None = no history wanted (calibration 0): the window-only path stays exactly as before.
        self.history: list[_Columns] | None = [] if calibration_ns > 0 else None
        self.history_from = 0

    def start(self, first_ts: int) -> None:
        """Resolve the window on the date of the file's first row."""
        self.window = self.window_spec.resolve(first_ts)
        self.history_from = history_start(self.window, self.calibration_ns)

    def add(self, block: Block, *, validated: bool = False) -> None:
        """Take one block; `validated` blocks (from the symbol cache) were checked and counted already."""
        if block.rows == 0:
            return
        columns = block.columns
        ts = block.ts
        if not validated:
            self.prices.check(block)
            self.rows_total += len(ts)
            lo, hi = int(ts.min()), int(ts.max())
            self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
            self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)
        if self.window is None:
            self.start(int(ts[0]))
        assert self.window is not None
        keep = self.window.contains(ts)
        before = self._history_mask(ts)
        in_window = bool(keep.any())
        if not in_window and before is None:
            return
        self.any_in_window |= in_window
        if "symbol" in columns:
            symbols = columns["symbol"]
            codes = dictionary_codes(symbols)
            if in_window:
                self.symbols_in_window.update(used_values(symbols, codes[keep]))
            if self.symbol is not None:
                wanted = codes == _code_of(symbols, self.symbol)
                keep &= wanted
                if before is not None:
                    before &= wanted
        if before is not None and self.history is not None and before.any():
            self.history.append(_take(columns, before))
        if not in_window:
            return
        self.kept.append(columns if keep.all() else _take(columns, keep))

    def _history_mask(self, ts: np.ndarray) -> np.ndarray | None:
        """Rows of this block in the calibration span before the window, or None when there are none."""
        if self.history is None or self.window is None or self.history_from >= self.window.start_ns:
            return None
        mask = (ts >= self.history_from) & (ts < self.window.start_ns)
        return mask if mask.any() else None

    def _columns(self, parts: list[_Columns]) -> dict[str, np.ndarray | pd.Categorical]:
        """Join the parts column by column, a few columns at once (the copy and the first touch of the
        result's memory are most of a big load's tail), each column's parts freed once it is joined: the
        peak is the result plus those few columns, not twice the result."""
        names = list(parts[0])
        with _small_pages(), ThreadPoolExecutor(_parse_workers(), thread_name_prefix="sor-join") as pool:
            jobs = [pool.submit(self._column, name, [part.pop(name) for part in parts]) for name in names]
            return {name: job.result() for name, job in zip(names, jobs, strict=True)}

    def _column(self, name: str, pieces: list[Any]) -> np.ndarray | pd.Categorical:
        if name in STRING_COLUMNS:
            return _categorical(pieces)
        chunks = [chunk for piece in pieces for chunk in piece]
        pieces.clear()  # the chunks go now, not when the job's arguments do
        if name in self.price_columns:
            return self.prices.scaled(joined(chunks))
        return joined(chunks) if name in TIMESTAMP_COLUMNS else joined_integers(chunks)

    def _history_of_symbol(self, symbols: list[str]) -> list[_Columns]:
        """Without --symbol the window holds one symbol; history rows of any other one are dropped too
        (outflow of another instrument is no calibration for this one)."""
        history = self.history or []
        if self.symbol is not None or len(symbols) != 1 or not history or "symbol" not in history[0]:
            return history
        kept = []
        for part in history:
            same = dictionary_codes(part["symbol"]) == _code_of(part["symbol"], symbols[0])
            if same.any():
                kept.append(part if same.all() else _take(part, same))
        return kept

    def finish(self, levels: int) -> MarketData:
        if self.rows_total == 0 or self.window is None:
            raise UserError(f"{self.path} has a header but no data rows")
        if not self.any_in_window:
            assert self.first_ts is not None and self.last_ts is not None  # rows were read
            where = SettingError.literal(f"{self.path}: no rows in the window {self.window.in_words()}")
            raise SettingError(
                f"{where}; the file covers {format_ns(self.first_ts)} – {format_ns(self.last_ts)} "
                "(pass {start}/{end} inside that range)",
                start="start",
                end="end",
            )
        symbols = sorted(self.symbols_in_window)
        if self.symbol is None and len(symbols) > 1:
            listed = SettingError.literal(
                f"{self.path} holds several symbols in the window ({', '.join(symbols)})"
            )
            raise SettingError(f"{listed}; choose one with {{symbol}}", symbol="symbol")
        if self.symbol is not None and not any(_rows(part) for part in self.kept):
            raise UserError(
                f"{self.path}: symbol {self.symbol!r} has no rows in the window; symbols there: {', '.join(symbols)}"
            )
        history_frame: pd.DataFrame | None = None
        history = None if self.history is None else self._history_of_symbol(symbols)
        self.history = None
        if history:
            # Each string column is one categorical over the history and the window, split after, so
            # `pd.concat([history, frame])` keeps the category dtype.
            split = sum(_rows(part) for part in history)
            joined = pd.DataFrame(self._columns([*history, *self.kept]), copy=False)
            # Slices of `joined`, sharing its memory (copy-on-write): the frame is held once.
            history_frame = joined.iloc[:split].reset_index(drop=True)
            frame = joined.iloc[split:].reset_index(drop=True)
        else:
            frame = pd.DataFrame(self._columns(self.kept), copy=False)
            if history is not None:
                history_frame = frame.iloc[:0].copy()  # same columns and dtypes (categories too)
        self.kept = []
        release_freed_memory()
        data = MarketData(
            frame=frame,
            source=str(self.path),
            window=self.window,
            rows_total=self.rows_total,
            file_first_ts=self.first_ts,
            file_last_ts=self.last_ts,
            levels=levels,
            price_format=self.prices.format if self.prices.format != "auto" else "decimal",
            symbols=symbols if self.symbol is None else [self.symbol],
            history=history_frame,
        )
        if history and history_frame is not None:
            data.joined = (history_frame, frame, joined)
        return data


def parse_timestamps(arr: pa.Array, path: Path | str, column: str, first_line: int = 2) -> np.ndarray:
    """ISO-8601 strings (any precision up to ns, `Z`/offset or naive UTC) or integer ns → int64 ns."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if pa.types.is_timestamp(arr.type):  # parsed by the CSV reader already: only an empty cell is left
        if arr.null_count:
            row = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
            raise UserError(
                f"{path}: line {first_line + row}, column {column}: an empty value is not a timestamp "
                "(expected ISO-8601 like 2024-08-01T13:36:32.491911683Z or integer nanoseconds)"
            )
        return pc.cast(arr, pa.int64()).to_numpy()
    # Fast paths for a uniform column (the usual case); the classified path below handles the rest.
    if arr.null_count == 0:
        for target in (pa.timestamp("ns", tz="UTC"), pa.int64()):
            try:
                pool = reader_pool()
                return pc.cast(
                    pc.cast(arr, target, memory_pool=pool), pa.int64(), memory_pool=pool
                ).to_numpy()
            except pa.ArrowException:
                continue
    is_int = pc.fill_null(pc.utf8_is_digit(arr), False)
    is_iso = pc.fill_null(pc.match_substring_regex(arr, _ISO_RE), False)
    bad = pc.invert(pc.or_(is_int, is_iso))
    if pc.any(bad).as_py():
        row = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
        value = arr[row].as_py()
        shown = "an empty value" if value is None or value == "" else repr(value)
        raise UserError(
            f"{path}: line {first_line + row}, column {column}: {shown} is not a timestamp "
            "(expected ISO-8601 like 2024-08-01T13:36:32.491911683Z or integer nanoseconds)"
        )
    out = np.empty(len(arr), dtype=np.int64)
    int_mask = is_int.to_numpy(zero_copy_only=False)
    zoned = pc.fill_null(pc.match_substring_regex(arr, _ZONE_RE), False)
    zoned_mask = zoned.to_numpy(zero_copy_only=False)
    for mask, target in (
        (int_mask, pa.int64()),
        (~int_mask & zoned_mask, pa.timestamp("ns", tz="UTC")),
        (~int_mask & ~zoned_mask, pa.timestamp("ns")),
    ):
        if mask.any():
            part = arr.filter(pa.array(mask))
            try:
                out[mask] = pc.cast(part, target).cast(pa.int64()).to_numpy()
            except pa.ArrowException:
                # The right shape but not a time (month 13, an int beyond int64): name its line.
                row = int(np.flatnonzero(mask)[_first_failing_cast(part, target)])
                raise UserError(
                    f"{path}: line {first_line + row}, column {column}: {arr[row].as_py()!r} is not a "
                    "timestamp (expected ISO-8601 like 2024-08-01T13:36:32.491911683Z or integer "
                    "nanoseconds within int64)"
                ) from None
    return out


def _first_failing_cast(arr: pa.Array, target: pa.DataType) -> int:
    """Index of the first value of `arr` that does not cast to `target`, by bisection: a few casts of
    halves instead of one per value. Only called after the whole cast failed."""
    lo, hi = 0, len(arr)  # the first failure is in [lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            pc.cast(arr.slice(lo, mid - lo), target)
        except pa.ArrowException:
            hi = mid
        else:
            lo = mid
    return lo


# --------------------------------------------------------------------------------------------- DBN


def _load_dbn(
    path: Path,
    window: WindowSpec,
    *,
    levels: int | None,
    symbol: str | None,
    calibration_ns: int = 0,
    depth_side: str | None = None,
) -> MarketData:
    """DBN files through the official `databento` package, streamed in chunks like the CSV path."""
    try:
        import databento
    except ImportError:
        raise UserError(
            f"{path} is a DBN file: reading it needs the 'databento' package (pip install databento), "
            "or export it to CSV"
        ) from None
    try:
        store = databento.DBNStore.from_file(path)
        with (
            warnings.catch_warnings()
        ):  # the package's own pandas deprecation noise is not the user's concern
            warnings.simplefilter("ignore")
            chunks = store.to_df(price_type="float", pretty_ts=False, map_symbols=True, count=1_000_000)
    except Exception as exc:  # the package raises several types for bad files
        raise UserError(f"{path}: cannot read the DBN file ({_short(exc)})") from None
    if isinstance(chunks, pd.DataFrame):
        chunks = iter([chunks])
    header: list[str] | None = None
    state: Accumulator | None = None
    use_levels = 0
    for chunk in _quiet(chunks):
        chunk = chunk.reset_index()
        if header is None:
            # Without symbology in the file the package's symbol column is all None: no column, not
            # rows without an instrument (which the loader refuses).
            unmapped = "symbol" in chunk.columns and bool(chunk["symbol"].isna().all())
            header = [c for c in chunk.columns if not (unmapped and c == "symbol")]
            _check_columns(path, header)
            wanted, types, use_levels = column_plan(header, levels, depth_side)
            price_columns = [c for c in wanted if types[c] == pa.float64()]
            state = Accumulator(path, window, symbol, "decimal", price_columns, calibration_ns)
        table = pa.Table.from_pandas(_dbn_to_text_timestamps(chunk[wanted]), preserve_index=False)
        assert state is not None  # made with the first chunk's header
        state.add(convert_block(table, 2, path, frozenset(state.price_columns), state.prices.mode))
    if state is None:
        raise UserError(f"{path} holds no records")
    return state.finish(use_levels)


def _quiet(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Iterate the package's chunks without its own pandas deprecation warnings reaching the user."""
    iterator = iter(chunks)
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            chunk = next(iterator, None)
        if chunk is None:
            return
        yield chunk


def _dbn_to_text_timestamps(chunk: pd.DataFrame) -> pd.DataFrame:
    """databento returns integer ns (pretty_ts=False); give them the CSV path's string form."""
    chunk = chunk.copy()
    for name in TIMESTAMP_COLUMNS:
        if name in chunk.columns:
            values = chunk[name]
            if pd.api.types.is_datetime64_any_dtype(values):
                values = values.astype("int64")
            chunk[name] = values.astype("int64").astype(str)
    return chunk


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def frame_with_history(data: MarketData) -> pd.DataFrame:
    """History rows (before the window, for the outflow estimator only) followed by the window's rows."""
    history = data.history
    if history is None or len(history) == 0:
        return data.frame
    if data.joined is not None and data.joined[0] is history and data.joined[1] is data.frame:
        return data.joined[2]  # the loader's own frame of both: no copy
    return pd.concat([history, data.frame], ignore_index=True)


def window_bounds(data: MarketData) -> tuple[int, int]:
    """The window in ns; an unbounded side (--start/--end all) is measured from the window's own rows."""
    start, end = data.window.start_ns, data.window.end_ns
    if len(data.frame):
        ts = data.frame["ts_event"].to_numpy(dtype=np.int64)
        start = int(ts.min()) if data.window.open_start else start
        end = int(ts.max()) + 1 if data.window.open_end else end
    return start, end


def duplicate_rows(frame: pd.DataFrame) -> int:
    """Rows identical to an earlier row in every loaded column. Harmless under the snapshot rule (the
    first message at a tick wins and an identical later one changes nothing), so they are counted only.

    Exact, and fast on a full day: rows are hashed on a few key columns, and only those whose key hash
    is shared with another row — every true duplicate is among them — are compared in full.
    """
    if len(frame) < 2:
        return 0
    keys = [c for c in DUPLICATE_KEYS if c in frame.columns] or list(frame.columns)
    hashes = pd.util.hash_pandas_object(frame[keys], index=False).to_numpy()
    candidates = pd.Series(hashes).duplicated(keep=False).to_numpy()
    if not candidates.any():
        return 0
    return int(frame[candidates].duplicated().sum())
