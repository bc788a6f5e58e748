"""Per-symbol cache of multi-symbol CSVs: one pass splits the file into Parquet files by symbol, so that a
load of one symbol reads that symbol's rows instead of parsing every symbol's (500 runs over a 500-symbol
file parsed it 500 times).

Where: `cache_dir` (`load(..., cache_dir=)`), else $SOR_SYMBOL_CACHE (`off`: always parse directly),
else `.sor_cache/symbols` in the current directory; one directory per source file, named by its file
name and a hash of its absolute path, holding `manifest.json` and the Parquet parts. The manifest keys
the entry by the source's size, mtime and SHA-256: it is used while size and mtime match and the content
is the same — known without reading the file when the inode's ctime is unchanged too (no write can have
happened since), re-hashed otherwise — and rebuilt when they differ. An entry is written into a
temporary directory and renamed into place, so no reader ever sees half of one.

The split is the loader's own parse of the whole file (every level, every check), so a cached load
gives exactly what the direct parse gives: a file the parse refuses is not cached (that is recorded, so
it is not tried again) and each load parses it directly, failing as it always did.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from allocator.data.loader import (
    BLOCK_SIZE,
    STRING_COLUMNS,
    Accumulator,
    Block,
    MarketData,
    PriceFormat,
    as_dictionary,
    column_plan,
    dictionary_codes,
    joined,
    one_chunk,
    parsed_blocks,
    raw_blocks,
    read_block,
    reader_pool,
)
from allocator.data.window import WindowSpec
from allocator.errors import UserError

log = logging.getLogger(__name__)

CACHE_ENV = "SOR_SYMBOL_CACHE"
OFF = ("off", "none", "0", "false", "no")
DEFAULT_CACHE_DIR = Path(".sor_cache") / "symbols"
# Bumped whenever what is stored changes meaning: entries of another version are rebuilt. 2: the order
# counts (*_ct_NN) are no longer stored, since the loader no longer reads them.
CACHE_VERSION = 2
MANIFEST = "manifest.json"
# Rows buffered per symbol before they are written, across all symbols; the largest buffers are written
# first when it is exceeded, which bounds the split's memory whatever the number of symbols.
BUFFER_BYTES = 256 << 20


def cache_root(cache_dir: str | Path | None = None) -> Path | None:
    """The directory that holds the per-source entries; None when $SOR_SYMBOL_CACHE is "off"."""
    if cache_dir:
        return Path(cache_dir)
    chosen = os.environ.get(CACHE_ENV, "").strip()
    if chosen.lower() in OFF:
        return None
    return Path(chosen or DEFAULT_CACHE_DIR)


def entry_dir(path: Path, cache_dir: str | Path | None = None) -> Path | None:
    """The entry of one source file: its name (made safe) and a hash of its absolute path."""
    root = cache_root(cache_dir)
    if root is None:
        return None
    absolute = str(path.resolve())
    name = re.sub(r"[^A-Za-z0-9._-]", "_", path.name)[:80]
    return root / f"{name}-{hashlib.sha256(absolute.encode()).hexdigest()[:16]}"


def load_symbol(
    path: Path,
    header: list[str],
    window: WindowSpec,
    *,
    levels: int | None,
    symbol: str,
    price_format: str,
    block_size: int = BLOCK_SIZE,
    calibration_ns: int = 0,
    cache_dir: str | Path | None = None,
    depth_side: str | None = None,
) -> MarketData | None:
    """`symbol`'s rows from the cache, splitting the file first if it has no valid entry yet; None when the
    file should be parsed directly instead (one symbol in its first block, a file the parse refuses, a
    cache that cannot be written)."""
    entry = entry_dir(path, cache_dir)
    if entry is None:
        return None
    try:
        manifest = _valid_manifest(entry, path, price_format)  # no lock needed to read a whole entry
        if manifest is None:
            with _locked(entry):
                manifest = _valid_manifest(entry, path, price_format)  # built while we waited?
                if manifest is None:
                    if not _holds_several_symbols(path, header, block_size):
                        return None
                    manifest = _build(entry, path, header, price_format, block_size)
    except OSError as exc:
        log.warning("symbol cache unusable (%s); parsing %s directly", exc, path)
        return None
    if manifest.get("failed"):
        return None
    try:
        return _load_entry(
            entry, manifest, path, header, window, levels, symbol, price_format, calibration_ns, depth_side
        )
    except (OSError, pa.ArrowException, KeyError, ValueError) as exc:
        # Replaced under us by another process's rebuild, or damaged: the direct parse is always right.
        log.warning("symbol cache entry %s unreadable (%s); parsing %s directly", entry, exc, path)
        return None


# ------------------------------------------------------------------------------------------ validity


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
        "dev": st.st_dev,
    }


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes as stored (compressed or not)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _read_manifest(entry: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _valid_manifest(entry: Path, path: Path, price_format: str) -> dict[str, Any] | None:
    """The entry's manifest if it describes this very content (and was split with this price format)."""
    manifest = _read_manifest(entry)
    if manifest is None or manifest.get("version") != CACHE_VERSION:
        return None
    if manifest.get("price_format") != price_format:
        return None
    stored, now = manifest.get("source"), _stat_key(path)
    if not isinstance(stored, dict) or any(stored.get(k) != now[k] for k in ("size", "mtime_ns")):
        return None
    if all(stored.get(k) == now[k] for k in ("ctime_ns", "ino", "dev")):
        return manifest
    # Same size and mtime, yet the inode changed (a copy, a restore, a write that kept the mtime): the
    # content decides, and the manifest learns the new inode so the next load need not hash again.
    if content_hash(path) != stored.get("sha256"):
        return None
    manifest["source"] = {**now, "sha256": stored["sha256"]}
    _write_json(entry / MANIFEST, manifest)
    return manifest


@contextlib.contextmanager
def _locked(entry: Path) -> Iterator[None]:
    """One process builds an entry at a time; the others wait and then find it built."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: concurrent builders each build, and the last rename wins
        yield
        return
    with open(entry.parent / f".{entry.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _holds_several_symbols(path: Path, header: list[str], block_size: int) -> bool:
    """Whether the file's first block already names more than one symbol (a Databento multi-symbol
    export interleaves its symbols in time order); a file of one symbol keeps the direct parse."""
    blocks = raw_blocks(path, block_size)
    try:
        first = next(blocks, None)
        if first is None:
            return False
        table = read_block(
            first, header, ["symbol"], {"symbol": pa.dictionary(pa.int32(), pa.string())}, 1 << 20
        )
    except (UserError, OSError, pa.ArrowException):
        return False  # the direct parse names what is wrong
    finally:
        blocks.close()
    column = as_dictionary(one_chunk(table.column("symbol")))
    return len(np.unique(dictionary_codes(column))) > 1


# ------------------------------------------------------------------------------------------ the split


def _build(entry: Path, path: Path, header: list[str], price_format: str, block_size: int) -> dict[str, Any]:
    """Split the file into the entry, replacing what was there; a file the parse refuses is recorded as
    such (and gets the direct parse, whose error names what to fix)."""
    before = _stat_key(path)
    digest = content_hash(path)
    tmp = entry.parent / f".{entry.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    tmp.mkdir(parents=True)
    try:
        log.info(
            "splitting %s by symbol into %s (once; later loads of a symbol read only its rows)", path, entry
        )
        try:
            manifest = _split(path, header, price_format, block_size, tmp)
        except UserError as exc:
            manifest = {"failed": True, "error": str(exc)}
        if _stat_key(path) != before:  # written to while being read: keep nothing
            raise OSError(f"{path} changed while it was being split")
        manifest.update(
            version=CACHE_VERSION,
            price_format=price_format,
            source={**before, "sha256": digest, "path": str(path.resolve())},
        )
        _write_json(tmp / MANIFEST, manifest)
        _replace(tmp, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _split(path: Path, header: list[str], price_format: str, block_size: int, out: Path) -> dict[str, Any]:
    """One parse of the whole file (every level) written out by symbol; what the loads need to know of the
    whole file (row count, time range, price format) goes in the manifest."""
    wanted, types, _ = column_plan(header, None)
    prices = PriceFormat(path, price_format)
    writer = _SymbolWriter(out)
    rows_total = 0
    first_row_ts: int | None = None
    first_ts = last_ts = 0
    priced: set[str] = set()
    try:
        for block in parsed_blocks(path, header, wanted, types, block_size, prices):
            if block.rows == 0:
                continue
            prices.check(block)
            ts = block.ts
            lo, hi = int(ts.min()), int(ts.max())
            if first_row_ts is None:
                first_row_ts, first_ts, last_ts = int(ts[0]), lo, hi
            first_ts, last_ts = min(first_ts, lo), max(last_ts, hi)
            rows_total += len(ts)
            priced.update(name for name, top in block.tops.items() if top > 0)
            writer.add(block)
        writer.close()
    finally:
        writer.stop()
    if first_row_ts is None:
        raise UserError(f"{path} has a header but no data rows")
    return {
        "failed": False,
        "header": header,
        "rows_total": rows_total,
        "first_row_ts": first_row_ts,
        "first_ts": first_ts,
        "last_ts": last_ts,
        "decided": prices.format if prices.format != "auto" else None,
        "decided_at": list(prices.decided_at) if prices.decided_at else None,
        "priced_columns": sorted(priced),
        "symbols": writer.symbols,
    }


class _SymbolWriter:
    """Rows grouped by symbol, buffered and written as Parquet parts, each symbol's in file order.

    Parts are encoded on a thread of their own while the next blocks are parsed (Parquet encoding is as
    much work as the parse), one part in hand at a time to bound memory; each part is joined into whole
    columns first (encoding the many small per-block slices measured three times slower).
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.buffers: dict[str, list[pa.Table]] = {}
        self.buffered: dict[str, int] = {}
        self.total = 0
        self.symbols: dict[str, dict[str, Any]] = {}
        self.index: dict[str, int] = {}
        self.encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sor-parquet")
        self.encoding: Future[None] | None = None

    def add(self, block: Block) -> None:
        symbols = block.columns["symbol"]
        codes = dictionary_codes(symbols)
        names = symbols.dictionary.to_pylist()
        if (codes == codes[0]).all():
            table = pa.table(
                {
                    name: v if isinstance(v, pa.Array) else pa.chunked_array([_stored(c) for c in v])
                    for name, v in block.columns.items()
                }
            )
            ts = block.ts
            self._append(str(names[codes[0]]), table, int(ts.min()), int(ts.max()), _width(table))
        else:
            # Grouped by symbol, file order kept within each (numpy's gather: pyarrow's take of the
            # chunked columns measured several times slower).
            order = np.argsort(codes, kind="stable")
            indices = pa.array(order)
            grouped = pa.table(
                {
                    name: pc.take(v, indices, memory_pool=reader_pool())
                    if isinstance(v, pa.Array)
                    else _stored(joined(v)[order])
                    for name, v in block.columns.items()
                }
            )
            width = _width(grouped)
            sorted_codes, ts = codes[order], block.ts[order]
            starts = np.flatnonzero(np.diff(sorted_codes, prepend=-2))
            lows, highs = np.minimum.reduceat(ts, starts), np.maximum.reduceat(ts, starts)
            ends = [*starts[1:].tolist(), len(order)]
            for start, end, low, high in zip(
                starts.tolist(), ends, lows.tolist(), highs.tolist(), strict=True
            ):
                symbol = str(names[sorted_codes[start]])
                self._append(symbol, grouped.slice(start, end - start), low, high, width)
        while self.total > BUFFER_BYTES:
            self._flush(max(self.buffered, key=self.buffered.__getitem__))

    def _append(self, symbol: str, rows: pa.Table, low: int, high: int, width: float) -> None:
        info = self.symbols.get(symbol)
        if info is None:
            self.index[symbol] = len(self.index)
            info = self.symbols[symbol] = {"files": [], "rows": 0, "first_ts": low, "last_ts": high}
        info["rows"] += rows.num_rows
        info["first_ts"], info["last_ts"] = min(info["first_ts"], low), max(info["last_ts"], high)
        self.buffers.setdefault(symbol, []).append(rows)
        size = int(rows.num_rows * width)
        self.buffered[symbol] = self.buffered.get(symbol, 0) + size
        self.total += size

    def _flush(self, symbol: str) -> None:
        info = self.symbols[symbol]
        name = f"{self.index[symbol]:05d}-{len(info['files']):05d}.parquet"
        info["files"].append(name)
        self.total -= self.buffered.pop(symbol)
        rows = self.buffers.pop(symbol)
        self._wait()
        self.encoding = self.encoder.submit(_write_part, rows, self.out / name)

    def _wait(self) -> None:
        if self.encoding is not None:
            encoding, self.encoding = self.encoding, None
            encoding.result()  # a write error (disk full) surfaces here

    def close(self) -> None:
        """Write what is still buffered, and wait for it."""
        for symbol in list(self.buffers):
            self._flush(symbol)
        self._wait()

    def stop(self) -> None:
        """End the encoding thread (after `close`, or instead of it when the split failed)."""
        self.encoder.shutdown(wait=True, cancel_futures=True)


def _stored(values: np.ndarray) -> pa.Array:
    """A number column as stored: integers always as int64 (a block holds int32 where its values fit, and
    every part of one symbol must have one schema); the loader narrows them again when it joins them."""
    return pa.array(values.astype(np.int64, copy=False) if values.dtype.kind in "iu" else values)


def _width(table: pa.Table) -> float:
    """Bytes a row holds, to account for buffered slices without measuring each."""
    return table.nbytes / max(table.num_rows, 1)


def _write_part(parts: list[pa.Table], target: Path) -> None:
    import pyarrow.parquet as pq

    # One chunk per column (and one dictionary per string column) before encoding.
    rows = pa.concat_tables(parts).combine_chunks(memory_pool=reader_pool())
    parts.clear()
    pq.write_table(
        rows, target, compression="lz4", use_dictionary=list(STRING_COLUMNS), write_statistics=False
    )


def _write_json(target: Path, data: dict[str, Any]) -> None:
    """Write `target` whole or not at all (a temporary file renamed over it)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, target)


def _replace(tmp: Path, entry: Path) -> None:
    """Put the finished directory `tmp` in the place of `entry` (renames only; the old one is removed)."""
    old = entry.with_name(f".{entry.name}.{secrets.token_hex(4)}.old")
    with contextlib.suppress(FileNotFoundError):
        os.rename(entry, old)
    os.rename(tmp, entry)
    shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------------------ loading


def _load_entry(
    entry: Path,
    manifest: dict[str, Any],
    path: Path,
    header: list[str],
    window: WindowSpec,
    levels: int | None,
    symbol: str,
    price_format: str,
    calibration_ns: int,
    depth_side: str | None = None,
) -> MarketData:
    """What the direct parse of the file would give for `symbol`, from that symbol's parts alone."""
    wanted, types, use_levels = column_plan(header, levels, depth_side)
    price_columns = [c for c in wanted if types[c] == pa.float64()]
    state = Accumulator(path, window, symbol, price_format, price_columns, calibration_ns)
    # The format as the direct parse of these columns would have it: decided by the whole file's first
    # price, unless none of these columns holds a price at all (then nothing decides it, and nothing
    # would be scaled: their prices are zero or undefined).
    decided = manifest["decided"]
    if price_format == "auto" and decided and set(price_columns) & set(manifest["priced_columns"]):
        state.prices.format = decided
        line, column = manifest["decided_at"]
        state.prices.decided_at = (int(line), str(column))
    state.rows_total = manifest["rows_total"]
    state.first_ts, state.last_ts = manifest["first_ts"], manifest["last_ts"]
    state.start(manifest["first_row_ts"])
    files = manifest["symbols"].get(symbol, {}).get("files", [])
    for name in files:
        state.add(_read_part(entry / name, wanted), validated=True)
    if not any(len(joined(part["ts_event"])) for part in state.kept):
        # The error the direct parse gives: which symbols the window does hold, if any.
        present = set(_symbols_in_window(entry, manifest, state))
        state.symbols_in_window = present
        state.any_in_window = bool(present)
    else:
        state.any_in_window = True
    return state.finish(use_levels)


def _read_part(part: Path, columns: list[str]) -> Block:
    import pyarrow.parquet as pq

    table = pq.read_table(part, columns=columns)
    converted: dict[str, Any] = {}
    for name in table.column_names:
        column = table.column(name)
        if name in STRING_COLUMNS:
            converted[name] = as_dictionary(one_chunk(column))
        else:
            converted[name] = [joined([c.to_numpy(zero_copy_only=False) for c in column.chunks])]
    return Block(first_line=0, columns=converted, ts=converted["ts_event"][0], tops={})


def _symbols_in_window(entry: Path, manifest: dict[str, Any], state: Accumulator) -> Iterator[str]:
    """Symbols with a row in the window (only when the one asked for has none: the error lists them)."""
    import pyarrow.parquet as pq

    window = state.window
    assert window is not None
    for name, info in manifest["symbols"].items():
        if info["last_ts"] < window.start_ns or info["first_ts"] >= window.end_ns:
            continue
        for part in info["files"]:
            ts = pq.read_table(entry / part, columns=["ts_event"]).column("ts_event").to_numpy()
            if window.contains(ts).any():
                yield name
                break
