"""What a replay would stream: the producer's --dry-run, computed without touching Kafka."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from allocator.data.loader import MarketData
from allocator.data.window import format_ns
from allocator.snapshots.rule import build_snapshots


def dry_run_summary(data: MarketData) -> dict[str, Any]:
    """Counts a user checks before a replay: rows, window coverage, venues, ticks, untradable quotes."""
    frame = data.frame
    ts = frame["ts_event"].to_numpy(dtype=np.int64)
    snaps = build_snapshots(frame)
    per_venue = frame.groupby("publisher_id", sort=True).size()
    return {
        "source": data.source,
        "rows": data.rows_total,
        "rows_in_window": len(frame),
        "window": data.window.report(),
        "file_first_ts_event": format_ns(data.file_first_ts) if data.file_first_ts is not None else None,
        "file_last_ts_event": format_ns(data.file_last_ts) if data.file_last_ts is not None else None,
        "first_ts_event": format_ns(int(ts.min())),
        "last_ts_event": format_ns(int(ts.max())),
        "ticks": snaps.ticks,
        "venues": [int(p) for p in snaps.publisher_ids],
        "rows_per_venue": {
            str(int(k)): int(v) for k, v in zip(per_venue.index.tolist(), per_venue.tolist(), strict=True)
        },
        "skipped_untradable": snaps.untradable_quotes,
        "crossed_quotes": snaps.crossed_quotes,
        "duplicate_rows": duplicate_rows(frame),
        "levels": data.levels,
        "price_format": data.price_format,
        "symbols": data.symbols,
        "out_of_order_rows": int(np.count_nonzero(np.diff(ts) < 0)),
    }


def duplicate_rows(frame: pd.DataFrame) -> int:
    """Rows identical to an earlier row in every loaded column. Harmless under the snapshot rule (the
    first message at a tick wins and an identical later one changes nothing), so they are counted only."""
    return int(frame.duplicated().sum()) if len(frame) else 0
