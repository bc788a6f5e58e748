"""The child-fill ledger (`--fills`, CSV) and the router's decision log (`--decisions`, JSON lines)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from allocator.data.window import format_ns
from allocator.errors import SettingError
from allocator.execution.faithful import Execution
from allocator.report.build import decision_log, fill_times
from allocator.search import GridPoint
from allocator.snapshots.rule import Snapshots
from allocator.snapshots.side import side_letter, side_sign


def fills_frame(executions: Iterable[Execution], snaps: Snapshots, venue_names: list[str]) -> pd.DataFrame:
    """The child-fill ledger of the router and every baseline, one row per fill, in market prices.

    `liquidity` is taker, maker or cleanup; `queue_ahead` is the displayed size ahead of a resting order when
    it was posted (empty for takers); `order_id` groups the fills of one child order (realistic mode)."""
    parts = []
    for ex in executions:
        sign = side_sign(ex.side)
        simulated = ex.simulated
        cash = ex.fill_gross - ex.rebate
        parts.append(
            pd.DataFrame(
                {
                    "strategy": ex.name,
                    "tick": ex.tick,
                    "ts_event": [format_ns(t) for t in fill_times(ex, snaps.ts_event)],
                    "publisher_id": snaps.publisher_ids[ex.venue],
                    "venue": [venue_names[v] for v in ex.venue],
                    "side": side_letter(ex.side),
                    "liquidity": ex.kind if simulated else "taker",
                    "order_id": ex.order_id if simulated else pd.NA,
                    "price": sign * ex.price,
                    "shares": ex.shares,
                    "fee_per_share": ex.fee,
                    "rebate": ex.rebate,
                    "queue_ahead": ex.queue_ahead if simulated else np.nan,
                    "cash": sign * cash,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def write_decisions(points: Iterable[GridPoint], snaps: Snapshots, path: str | Path) -> int:
    """The decision log (allocator.report.build.decision_log) of every grid point, one JSON object per line."""
    try:
        with open(path, "w", encoding="utf-8") as out:
            count = 0
            for index, point in enumerate(points):
                for line in decision_log(point.execution.decisions, snaps.publisher_ids, snaps.side, index):
                    out.write(json.dumps(line, allow_nan=False, ensure_ascii=False) + "\n")
                    count += 1
    except OSError as exc:
        reason = SettingError.literal(f"{path}: cannot write the log ({exc.strerror or exc})")
        raise SettingError("{decisions} " + reason, decisions="decisions") from None
    return count


def write_fills(frame: pd.DataFrame, path: str | Path) -> int:
    try:
        frame.to_csv(path, index=False, float_format="%.10g")
    except OSError as exc:
        reason = SettingError.literal(f"{path}: cannot write the ledger ({exc.strerror or exc})")
        raise SettingError("{fills} " + reason, fills="fills") from None
    return len(frame)
