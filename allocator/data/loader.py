"""Loader: Databento MBP-1/MBP-10 exports and minimal L1 CSVs into one canonical DataFrame.

Whatever the source — `.csv`, `.csv.gz`, `.csv.zst`, DBN through the `databento` package —
timestamps as ISO-8601 strings or integer nanoseconds, prices as decimals or Databento fixed-point
integers — the result is the same frame: Databento column names, `ts_event`/`ts_recv` as int64 epoch
nanoseconds, prices as float64 (NaN when undefined), sizes as int64, rows in file order. The file is
streamed in blocks and only the needed columns are parsed; the window filter is applied per block so a
large file is never held whole in memory.

With `calibration_ns` the rows of that span before the window start are kept too, apart, as
`MarketData.history`: the realistic mode estimates queue outflow from them but never trades on them.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pandas.api.types import union_categoricals

from allocator.data.schema import (
    FIXED_PRICE_SCALE,
    HEADER_FIELDS,
    LEVEL_FIELDS,
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
# A real MBP-10 header is under 1 KiB; anything near this is not a header (and is not read further).
MAX_HEADER_BYTES = 1 << 20
# Seconds of rows before the window kept as calibration history (shared by both CLIs' --calibration).
DEFAULT_CALIBRATION_SECONDS = 120.0
_INT64_MIN = int(np.iinfo(np.int64).min)
_INT64_MAX = int(np.iinfo(np.int64).max)

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
) -> MarketData:
    """Read `path` and keep the rows inside `window` (default: the trial window on the data's date).

    `levels` limits the book levels parsed (1 is enough for top-of-book routing and saves most of the
    work on MBP-10 files); `symbol` selects one instrument of a multi-symbol file. `calibration_ns` > 0
    also keeps the rows that long before the window start as `history` (see `MarketData.history`).
    """
    calibration_ns = int(calibration_ns)
    if calibration_ns < 0:
        raise ValueError(f"calibration_ns must be >= 0, got {calibration_ns}")
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
        return _load_dbn(path, window, levels=levels, symbol=symbol, calibration_ns=calibration_ns)
    return _load_csv(
        path,
        window,
        levels=levels,
        symbol=symbol,
        price_format=price_format,
        block_size=block_size,
        calibration_ns=calibration_ns,
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


def _column_plan(header: list[str], levels: int | None) -> tuple[list[str], dict[str, pa.DataType], int]:
    """Which known columns to parse and as which types; unknown extra columns are ignored."""
    present = set(header)
    available = book_levels(present)
    use_levels = available if levels is None else min(levels, available)
    wanted = [c for c in HEADER_FIELDS if c in present]
    for lvl in range(use_levels):
        wanted += [level_column(f, lvl) for f in LEVEL_FIELDS if level_column(f, lvl) in present]
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
) -> MarketData:
    header = read_header(path)
    _check_columns(path, header)
    wanted, types, use_levels = _column_plan(header, levels)
    price_columns = [c for c in wanted if types[c] == pa.float64()]
    reader = _open_csv(path, header, wanted, types, block_size)
    state = _Accumulator(path, window, symbol, price_format, price_columns, calibration_ns)
    for line_offset, batch in _batches(path, reader, header, types, block_size):
        state.add(batch, line_offset)
    return state.finish(use_levels)


def _open_csv(
    path: Path, header: list[str], wanted: list[str], types: dict[str, pa.DataType], block_size: int
) -> pacsv.CSVStreamingReader:
    try:
        return pacsv.open_csv(
            str(path),
            memory_pool=_reader_pool(),
            read_options=_read_options(header, block_size),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted, column_types=types, strings_can_be_null=True
            ),
        )
    except (OSError, pa.ArrowException) as exc:
        raise _csv_error(path, exc, header, types, block_size) from None


def _read_options(header: list[str], block_size: int) -> pacsv.ReadOptions:
    """The header as `read_header` parsed it (names stripped), so the reader's columns are the checked ones."""
    return pacsv.ReadOptions(block_size=block_size, column_names=header, skip_rows=1)


@functools.cache
def _reader_pool() -> pa.MemoryPool:
    """jemalloc returns the reader's freed blocks to the OS promptly; the default (mimalloc) keeps them,
    which measured as +35 % peak RSS on a 2-million-row load (bench/bench_loader_vs_pandas.py)."""
    try:
        return pa.jemalloc_memory_pool()
    except (NotImplementedError, pa.ArrowException):
        return pa.default_memory_pool()


def _batches(
    path: Path,
    reader: pacsv.CSVStreamingReader,
    header: list[str],
    types: dict[str, pa.DataType],
    block_size: int = BLOCK_SIZE,
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Record batches with the 1-based file line number of their first row (the header is line 1)."""
    line = 2
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (OSError, pa.ArrowException) as exc:
            raise _csv_error(path, exc, header, types, block_size) from None
        yield line, batch
        line += batch.num_rows


def _csv_error(
    path: Path, exc: Exception, header: list[str], types: dict[str, pa.DataType], block_size: int = BLOCK_SIZE
) -> UserError:
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
    if "straddl" in lowered:  # one row longer than a block: the reader cannot hold it
        line = _locate_long_line(path, block_size)
        where = f"line {line}" if line else "a row"
        return UserError(
            f"{path}: {where} is longer than the {_size_in_words(block_size)} the loader reads at a time "
            "(one huge field?); fix or drop that row"
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


# One chunk's columns by name: int64/float64 arrays, string Series, or Categoricals (the kind follows the
# column's name, which pandas-stubs cannot see, so values are Any).
_Columns = dict[str, Any]


class _Accumulator:
    """Converts, checks and window-filters blocks as they stream in; keeps only the in-window rows
    (and, with a calibration span, the rows just before the window, apart, as history)."""

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
        self.price_format = price_format
        self.price_columns = price_columns
        # (line, column) of the price that decided an "auto" format; None while undecided or when given.
        self.price_format_from: tuple[int, str] | None = None
        self.window: Window | None = None
        self.rows_total = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.kept: list[_Columns] = []
        self.symbols_in_window: set[str] = set()
        self.calibration_ns = calibration_ns
        # None = no history wanted (calibration 0): the window-only path stays exactly as before.
        self.history: list[_Columns] | None = [] if calibration_ns > 0 else None
        self.history_from = 0

    def add(self, batch: pa.RecordBatch, first_line: int) -> None:
        if batch.num_rows == 0:
            return
        columns: _Columns = {}
        prices: dict[str, pa.Array] = {}
        for name in batch.schema.names:
            arr = batch.column(name)
            if name in REQUIRED_IDENTIFIERS and arr.null_count:
                row = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
                raise UserError(
                    f"{self.path}: line {first_line + row}, column {name} is empty; every row needs "
                    f"{REQUIRED_IDENTIFIERS[name]} — fix or drop that row"
                )
            if name in TIMESTAMP_COLUMNS:
                columns[name] = parse_timestamps(arr, self.path, name, first_line)
            elif name in STRING_COLUMNS:
                columns[name] = arr.to_pandas()
            elif name in self.price_columns:
                prices[name] = arr
            else:
                columns[name] = arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        if prices:
            columns.update(self._prices(prices, first_line))
            columns = {name: columns[name] for name in batch.schema.names}  # file order, as before
        ts = columns["ts_event"]
        self.rows_total += len(ts)
        lo, hi = int(ts.min()), int(ts.max())
        self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
        self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)
        if self.window is None:
            self.window = self.window_spec.resolve(int(ts[0]))
            self.history_from = history_start(self.window, self.calibration_ns)
        keep = self.window.contains(ts)
        before = self._history_mask(ts)
        in_window = bool(keep.any())
        if not in_window and before is None:
            return
        if "symbol" in columns:
            symbol_values = pd.Categorical(columns["symbol"])
            if in_window:
                present = {str(v) for v in pd.Series(symbol_values[keep]).dropna().unique()}
                self.symbols_in_window |= present
            if self.symbol is not None:
                wanted = np.asarray(symbol_values == self.symbol)
                keep &= wanted
                if before is not None:
                    before &= wanted
        if before is not None and self.history is not None and before.any():
            self.history.append({name: values[before] for name, values in columns.items()})
        if not in_window:
            return
        if not keep.all():
            columns = {name: values[keep] for name, values in columns.items()}
        self.kept.append(columns)

    def _history_mask(self, ts: np.ndarray) -> np.ndarray | None:
        """Rows of this block in the calibration span before the window, or None when there are none."""
        if self.history is None or self.window is None or self.history_from >= self.window.start_ns:
            return None
        mask = (ts >= self.history_from) & (ts < self.window.start_ns)
        return mask if mask.any() else None

    def _prices(self, raw: dict[str, pa.Array], first_line: int) -> _Columns:
        """A block's price columns as float64 dollars (NaN when undefined).

        The format — decimal or Databento fixed-point (1e-9) — is one per file: "auto" decides it from the
        file's first non-zero price, and every later block is checked against it, so a file that changes
        format part-way fails at the line where it changes instead of being scaled as if it did not.
        """
        values = {
            name: arr.to_numpy(zero_copy_only=False).astype(np.float64, copy=True)
            for name, arr in raw.items()
        }
        for v in values.values():
            v[np.abs(v) >= UNDEF_PRICE_FLOAT] = np.nan
        if self.price_format == "auto":
            self._decide_price_format(values, first_line)
        fixed = self.price_format == "fixed"
        bad_row, bad_name = -1, ""
        for name, v in values.items():
            big = np.abs(v) >= FIXED_POINT_THRESHOLD  # NaN compares False
            if fixed:
                wrong = np.isfinite(v) & (v != np.round(v))
                if self.price_format_from is not None:  # detected, not given: a small price is a decimal
                    wrong |= (v != 0) & ~big & np.isfinite(v)
            else:
                wrong = big
            if wrong.any():
                row = int(np.argmax(wrong))
                if bad_row < 0 or row < bad_row:
                    bad_row, bad_name = row, name
        if bad_row >= 0:
            raise self._price_format_error(bad_name, first_line + bad_row, float(values[bad_name][bad_row]))
        if fixed:
            for name, v in values.items():
                v *= FIXED_PRICE_SCALE
                values[name] = np.round(v, 9)
        return values

    def _decide_price_format(self, values: dict[str, np.ndarray], first_line: int) -> None:
        """Fix the file's price format from its first non-zero price (earliest line, then column order)."""
        first_row, first_name = -1, ""
        for name, v in values.items():
            priced = np.isfinite(v) & (v != 0)
            if priced.any():
                row = int(np.argmax(priced))
                if first_row < 0 or row < first_row:
                    first_row, first_name = row, name
        if first_row < 0:
            return
        value = float(values[first_name][first_row])
        looks_fixed = value == round(value) and abs(value) >= FIXED_POINT_THRESHOLD
        self.price_format = "fixed" if looks_fixed else "decimal"
        self.price_format_from = (first_line + first_row, first_name)

    def _price_format_error(self, name: str, line: int, value: float) -> UserError:
        where = (
            f"{self.path}: line {line}, column {name}: price {np.format_float_positional(value, trim='-')}"
        )
        fixed = self.price_format == "fixed"
        if self.price_format_from is None:  # the format was given by the user
            kind = "is not a whole number, so not" if fixed else "looks like"
            other = "decimal" if fixed else "fixed"
            return SettingError(
                f"{SettingError.literal(where)} {kind} Databento fixed-point (1e-9), yet {{fmt}} "
                f"{self.price_format} was given; pass {{fmt}} {other} or fix the file",
                fmt="price_format",
            )
        line0, name0 = self.price_format_from
        kind, earlier = (
            ("is a decimal", "Databento fixed-point (1e-9)")
            if fixed
            else ("looks like Databento fixed-point (1e-9)", "a decimal")
        )
        return UserError(
            f"{where} {kind}, but the file's first price (line {line0}, column {name0}) is {earlier}; "
            "a file must use one price format throughout — re-export it"
        )

    def _concatenate(self) -> dict[str, np.ndarray | pd.Categorical]:
        """Join the kept blocks one column at a time, freeing each column's blocks as it goes, so the
        peak is the result plus one column rather than twice the result."""
        names = list(self.kept[0])
        out: _Columns = {}
        for name in names:
            parts = [part.pop(name) for part in self.kept]
            if name in STRING_COLUMNS:
                out[name] = union_categoricals([pd.Categorical(p) for p in parts], sort_categories=True)
            else:
                out[name] = np.concatenate(parts) if len(parts) > 1 else parts[0]
            del parts
        self.kept = []
        return out

    def _concatenate_with_history(
        self, history: list[_Columns]
    ) -> tuple[dict[str, np.ndarray | pd.Categorical], dict[str, np.ndarray | pd.Categorical]]:
        """Like `_concatenate`, for the window and the history together: each string column is one
        categorical over both, split after, so `pd.concat([history, frame])` keeps the category dtype."""
        names = list(self.kept[0])
        out: _Columns = {}
        out_history: _Columns = {}
        for name in names:
            parts = [part.pop(name) for part in self.kept]
            before = [part.pop(name) for part in history]
            if name in STRING_COLUMNS:
                joined = union_categoricals(
                    [pd.Categorical(p) for p in [*before, *parts]], sort_categories=True
                )
                split = sum(len(p) for p in before)
                out_history[name], out[name] = joined[:split], joined[split:]
            else:
                out[name] = np.concatenate(parts) if len(parts) > 1 else parts[0]
                out_history[name] = np.concatenate(before) if len(before) > 1 else before[0]
            del parts, before
        self.kept = []
        return out, out_history

    def _history_of_symbol(self, symbols: list[str]) -> list[_Columns]:
        """Without --symbol the window holds one symbol; history rows of any other one are dropped too
        (outflow of another instrument is no calibration for this one)."""
        history = self.history or []
        if self.symbol is not None or len(symbols) != 1 or not history or "symbol" not in history[0]:
            return history
        kept = []
        for part in history:
            same = np.asarray(pd.Categorical(part["symbol"]) == symbols[0])
            if same.any():
                kept.append(part if same.all() else {n: v[same] for n, v in part.items()})
        return kept

    def finish(self, levels: int) -> MarketData:
        if self.rows_total == 0 or self.window is None:
            raise UserError(f"{self.path} has a header but no data rows")
        if not self.kept:
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
        if self.symbol is not None and not any(len(part["ts_event"]) for part in self.kept):
            raise UserError(
                f"{self.path}: symbol {self.symbol!r} has no rows in the window; symbols there: {', '.join(symbols)}"
            )
        history_frame: pd.DataFrame | None = None
        if self.history is None:
            frame = pd.DataFrame(self._concatenate(), copy=False)
        else:
            history = self._history_of_symbol(symbols)
            self.history = []
            if history:
                columns, history_columns = self._concatenate_with_history(history)
                frame = pd.DataFrame(columns, copy=False)
                history_frame = pd.DataFrame(history_columns, copy=False)
            else:
                frame = pd.DataFrame(self._concatenate(), copy=False)
                history_frame = frame.iloc[:0].copy()  # same columns and dtypes (categories too)
        return MarketData(
            frame=frame,
            source=str(self.path),
            window=self.window,
            rows_total=self.rows_total,
            file_first_ts=self.first_ts,
            file_last_ts=self.last_ts,
            levels=levels,
            price_format=self.price_format if self.price_format != "auto" else "decimal",
            symbols=symbols if self.symbol is None else [self.symbol],
            history=history_frame,
        )


def parse_timestamps(arr: pa.Array, path: Path | str, column: str, first_line: int = 2) -> np.ndarray:
    """ISO-8601 strings (any precision up to ns, `Z`/offset or naive UTC) or integer ns → int64 ns."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    # Fast paths for a uniform column (the usual case); the classified path below handles the rest.
    if arr.null_count == 0:
        for target in (pa.timestamp("ns", tz="UTC"), pa.int64()):
            try:
                pool = _reader_pool()
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
    path: Path, window: WindowSpec, *, levels: int | None, symbol: str | None, calibration_ns: int = 0
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
    state: _Accumulator | None = None
    use_levels = 0
    for chunk in _quiet(chunks):
        chunk = chunk.reset_index()
        if header is None:
            # Without symbology in the file the package's symbol column is all None: no column, not
            # rows without an instrument (which the loader refuses).
            unmapped = "symbol" in chunk.columns and bool(chunk["symbol"].isna().all())
            header = [c for c in chunk.columns if not (unmapped and c == "symbol")]
            _check_columns(path, header)
            wanted, types, use_levels = _column_plan(header, levels)
            price_columns = [c for c in wanted if types[c] == pa.float64()]
            state = _Accumulator(path, window, symbol, "decimal", price_columns, calibration_ns)
        table = pa.Table.from_pandas(_dbn_to_text_timestamps(chunk[wanted]), preserve_index=False)
        assert state is not None  # made with the first chunk's header
        for batch in table.to_batches():
            state.add(batch, 2)
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
    first message at a tick wins and an identical later one changes nothing), so they are counted only."""
    return int(frame.duplicated().sum()) if len(frame) else 0
