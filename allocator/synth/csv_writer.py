"""Writing a frame as the Databento MBP-10 CSV export writes it, reproducibly (vectorised, no row loop)."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from allocator.data.schema import MBP10_COLUMNS, is_price_column
from allocator.errors import UserError

GZIP_LEVEL = 6  # level 9 saves ~5% size for 3-4x the time; tests regenerate the file
_SEP = ","


def price_strings(values: np.ndarray) -> pa.Array:
    """Prices as the trial file writes them: shortest decimal ("222.8"), empty when undefined."""
    valid = ~np.isnan(values)
    ticks = np.where(valid, np.rint(np.nan_to_num(values) * 100.0), 0).astype(np.int64)
    uniq, inverse = np.unique(ticks, return_inverse=True)
    text = np.array([f"{t // 100}.{t % 100:02d}".rstrip("0").rstrip(".") for t in uniq.tolist()])
    return pa.array(text[inverse], type=pa.string(), mask=~valid)


def timestamp_strings(series: pd.Series) -> pa.Array:
    """ISO-8601 UTC with exactly 9 fractional digits and a Z, e.g. 2024-08-01T13:36:32.491911683Z."""
    ns = pd.to_datetime(series, utc=True).to_numpy(dtype=np.int64)
    text = np.datetime_as_string(ns.view("datetime64[ns]"), unit="ns")
    return pa.array(np.char.add(text, "Z"), type=pa.string())


def _column_strings(df: pd.DataFrame, col: str) -> pa.Array:
    """One column in the export's text form."""
    s = df[col]
    if col in ("ts_recv", "ts_event"):
        return timestamp_strings(s)
    if is_price_column(col):
        return price_strings(s.to_numpy(dtype=float, na_value=np.nan))
    if col in ("action", "side", "symbol"):
        return pa.array(s.astype(str).to_numpy(), type=pa.string())
    return pa.array(s.to_numpy(dtype=np.int64))


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    """The uncompressed CSV text of `df` in the Databento MBP-10 layout."""
    missing = [c for c in MBP10_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"cannot write CSV: columns missing: {', '.join(missing[:5])}")
    arrays = [_column_strings(df, col) for col in MBP10_COLUMNS]
    table = pa.Table.from_arrays(arrays, names=list(MBP10_COLUMNS))
    sink = pa.BufferOutputStream()
    # pyarrow quotes header names even with quoting_style="none"; the export does not
    sink.write((_SEP.join(MBP10_COLUMNS) + "\n").encode())
    pacsv.write_csv(
        table, sink, pacsv.WriteOptions(include_header=False, quoting_style="none", batch_size=65536)
    )
    return bytes(sink.getvalue().to_pybytes())


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """Write `df` as CSV; a .gz path gets a reproducible gzip header (mtime 0, no file name)."""
    path = Path(path)
    data = to_csv_bytes(df)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with (
            open(path, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL) as gz,
        ):
            gz.write(data)
    else:
        path.write_bytes(data)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, to check the shipped dataset against a fresh generation."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
