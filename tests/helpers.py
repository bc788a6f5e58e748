"""Builders for small Databento-style files the tests write themselves."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from allocator.data.schema import MBP10_COLUMNS, level_column, mbp_columns

DAY = np.datetime64("2024-08-01T00:00:00", "ns").astype(np.int64)
NS = 1_000_000_000


def at(clock: str) -> int:
    """Epoch ns of a UTC time of day on 2024-08-01, e.g. at("13:36:32.000000001")."""
    hms, _, frac = clock.partition(".")
    h, m, s = (int(x) for x in hms.split(":"))
    return int(DAY + ((h * 60 + m) * 60 + s) * NS + int(frac.ljust(9, "0") or 0))


def quote(
    ts: int,
    publisher_id: int,
    ask: float | None,
    ask_size: int,
    bid: float | None = None,
    bid_size: int = 100,
    *,
    action: str = "A",
    side: str = "A",
    sequence: int = 0,
) -> dict:
    """One MBP-10 row: level 0 as given, deeper levels one tick apart, 100 shares each."""
    bid = round(ask - 0.01, 2) if bid is None and ask is not None else bid
    row = {
        "ts_recv": ts + 150_000,
        "ts_event": ts,
        "rtype": 10,
        "publisher_id": publisher_id,
        "instrument_id": 38,
        "action": action,
        "side": side,
        "depth": 0,
        "price": ask if ask is not None else np.nan,
        "size": ask_size,
        "flags": 130,
        "ts_in_delta": 150_000,
        "sequence": sequence,
        "symbol": "AAPL",
    }
    for lvl in range(10):
        row[level_column("ask_px", lvl)] = round(ask + 0.01 * lvl, 2) if ask is not None else np.nan
        row[level_column("bid_px", lvl)] = round(bid - 0.01 * lvl, 2) if bid is not None else np.nan
        row[level_column("ask_sz", lvl)] = ask_size if lvl == 0 else 100
        row[level_column("bid_sz", lvl)] = bid_size if lvl == 0 else 100
        row[level_column("ask_ct", lvl)] = 1
        row[level_column("bid_ct", lvl)] = 1
    return row


def frame(rows: Iterable[dict]) -> pd.DataFrame:
    rows = list(rows)
    for i, row in enumerate(rows):
        row.setdefault("sequence", i)
        if not row["sequence"]:
            row["sequence"] = 1000 + i
    return pd.DataFrame(rows, columns=list(MBP10_COLUMNS))


def _iso(ts: int) -> str:
    return str(np.datetime64(int(ts), "ns")) + "Z"


def to_csv_text(
    df: pd.DataFrame,
    *,
    timestamps: str = "iso",
    prices: str = "decimal",
    levels: int = 10,
    columns: Sequence[str] | None = None,
) -> str:
    """Render like a Databento CSV export: ISO-ns `Z` or integer ns; decimal or fixed-point (1e-9) prices."""
    cols = list(columns) if columns is not None else mbp_columns(levels)
    out = df.copy()
    for name in ("ts_event", "ts_recv"):
        if timestamps == "iso":
            out[name] = [_iso(t) for t in out[name]]
    for name in cols:
        if name == "price" or "_px_" in name:
            values = out[name].astype(float)
            if prices == "fixed":
                out[name] = [str(9223372036854775807) if np.isnan(v) else str(round(v * 1e9)) for v in values]
            else:
                out[name] = ["" if np.isnan(v) else repr(float(v)).removesuffix(".0") for v in values]
    return out[cols].to_csv(index=False)


def write(path: Path, text: str | bytes) -> Path:
    """Write text, compressing by suffix (.gz, .zst) through pyarrow like a real export."""
    data = text.encode() if isinstance(text, str) else text
    name = str(path)
    if name.endswith((".gz", ".zst")):
        codec = "gzip" if name.endswith(".gz") else "zstd"
        with pa.CompressedOutputStream(name, codec) as stream:
            stream.write(data)
    else:
        Path(name).write_bytes(data)
    return path


def make_market(
    ask_px: Sequence[Sequence[float]],
    ask_sz: Sequence[Sequence[int]],
    fees: Sequence[float],
    *,
    ts: Sequence[int] | None = None,
    rebates: Sequence[float] | None = None,
    publisher_ids: Sequence[int] | None = None,
    start: int | None = None,
    end: int | None = None,
):
    """A Market straight from [tick][venue] arrays (NaN/0 = no quote), for hand-computed cases."""
    from allocator.execution.faithful import Market
    from allocator.snapshots.rule import Snapshots

    px = np.array(ask_px, dtype=np.float64)
    sz = np.array(ask_sz, dtype=np.int64)
    n_ticks, n_venues = px.shape
    tick_ts = np.array(
        ts if ts is not None else [at("13:36:32") + i * NS for i in range(n_ticks)], dtype=np.int64
    )
    ok = np.isfinite(px) & (sz > 0)
    snaps = Snapshots(
        ts_event=tick_ts,
        publisher_ids=np.array(publisher_ids if publisher_ids is not None else range(1, n_venues + 1)),
        # Cell (t, v) is frame row t·V + v; the post side is a cent below the ask, 100 shares.
        source_row=np.arange(n_ticks * n_venues, dtype=np.int64).reshape(n_ticks, n_venues),
        fresh=np.ones((n_ticks, n_venues), dtype=bool),
        take_px=np.where(ok, px, np.nan),
        take_sz=np.where(ok, sz, 0),
        row_post_px=np.append(np.where(ok, px - 0.01, np.nan).ravel(), np.nan),
        row_post_sz=np.append(np.where(ok, 100, 0).ravel(), 0),
        untradable_quotes=0,
    )
    return Market(
        snapshots=snaps,
        taker_fee=np.array(fees, dtype=np.float64),
        maker_rebate=np.array(rebates if rebates is not None else [0.0] * n_venues, dtype=np.float64),
        window_start_ns=start if start is not None else at("13:36:32"),
        window_end_ns=end if end is not None else at("13:45:15"),
    )


def write_dbn(df: pd.DataFrame, path: Path) -> Path:
    """Encode rows as a DBN MBP-1 file with the official `databento_dbn` package (fixed-point prices)."""
    import databento_dbn as dbn

    def fixed(value: float) -> int:
        return 9223372036854775807 if np.isnan(value) else round(value * 1e9)

    ts = df["ts_event"].to_numpy()
    meta = dbn.Metadata(
        dataset="XNAS.ITCH",
        schema=dbn.Schema.MBP_1,
        start=int(ts.min()),
        end=int(ts.max()) + 1,
        stype_in=dbn.SType.RAW_SYMBOL,
        stype_out=dbn.SType.INSTRUMENT_ID,
        symbols=["AAPL"],
        partial=[],
        not_found=[],
        mappings=[],
        limit=None,
        ts_out=False,
        version=2,
    )
    actions = {
        "A": dbn.Action.ADD,
        "C": dbn.Action.CANCEL,
        "M": dbn.Action.MODIFY,
        "T": dbn.Action.TRADE,
        "F": dbn.Action.FILL,
    }
    sides = {"A": dbn.Side.ASK, "B": dbn.Side.BID, "N": dbn.Side.NONE}
    blob = bytearray(meta.encode())
    for row in df.to_dict("records"):
        level = dbn.BidAskPair(
            bid_px=fixed(row["bid_px_00"]),
            ask_px=fixed(row["ask_px_00"]),
            bid_sz=int(row["bid_sz_00"]),
            ask_sz=int(row["ask_sz_00"]),
            bid_ct=int(row["bid_ct_00"]),
            ask_ct=int(row["ask_ct_00"]),
        )
        record = dbn.MBP1Msg(
            publisher_id=int(row["publisher_id"]),
            instrument_id=int(row["instrument_id"]),
            ts_event=int(row["ts_event"]),
            ts_recv=int(row["ts_recv"]),
            price=fixed(row["price"]),
            size=int(row["size"]),
            action=actions[row["action"]],
            side=sides[row["side"]],
            flags=int(row["flags"]),
            depth=int(row["depth"]),
            ts_in_delta=int(row["ts_in_delta"]),
            sequence=int(row["sequence"]),
            levels=level,
        )
        blob += bytes(record)
    Path(path).write_bytes(bytes(blob))
    return Path(path)
