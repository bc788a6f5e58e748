"""data → snapshots → allocation → execution → baselines → search → report, in one call.

Both entry points use this: `order_allocator.py --csv` with a frame read from a file, and the Kafka
consumer with a frame decoded from the stream. Same frame in, same report out.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from allocator.baselines import BASELINES
from allocator.data import MarketData
from allocator.errors import UserError
from allocator.execution import Execution, Market, run_faithful_router
from allocator.report import build_report
from allocator.search import (
    DEFAULT_LAMBDA_OVER,
    DEFAULT_LAMBDA_UNDER,
    DEFAULT_THETA_QUEUE,
    SearchResult,
    grid,
    search,
)
from allocator.snapshots import Snapshots, build_snapshots
from allocator.venues import FeeTable
from allocator.window import format_ns

MODES = ("faithful",)


@dataclass(frozen=True)
class RunConfig:
    """What the user asked for, independent of where the data comes from."""

    order_size: int = 5000
    step: int = 100
    lambda_over: tuple[float, ...] = DEFAULT_LAMBDA_OVER
    lambda_under: tuple[float, ...] = DEFAULT_LAMBDA_UNDER
    theta_queue: tuple[float, ...] = DEFAULT_THETA_QUEUE
    mode: str = "faithful"
    jobs: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.order_size <= 0:
            raise UserError(f"--order-size {self.order_size}: must be a positive number of shares")
        if self.step <= 0:
            raise UserError(f"--step {self.step}: must be a positive number of shares")
        if self.mode not in MODES:
            raise UserError(f"--mode {self.mode!r} is not one of {', '.join(MODES)}")


@dataclass
class RunResult:
    report: dict[str, Any]
    market: Market
    search: SearchResult
    baselines: dict[str, Execution]
    venue_names: list[str]


def build_market(data: MarketData, fees: FeeTable) -> tuple[Market, list[str]]:
    """Snapshots plus the fee arrays aligned with their venues."""
    snaps = build_snapshots(data.frame)
    taker, rebate = fees.arrays(snaps.publisher_ids)
    start = data.window.start_ns
    end = data.window.end_ns
    if snaps.ticks:  # an unbounded window (--start/--end all) is measured from the data itself
        start = int(snaps.ts_event[0]) if start <= np.iinfo(np.int64).min else start
        end = int(snaps.ts_event[-1]) + 1 if end >= np.iinfo(np.int64).max else end
    return Market(snaps, taker, rebate, start, end), fees.names(snaps.publisher_ids)


def data_section(data: MarketData, snaps: Snapshots) -> dict[str, Any]:
    """What was replayed — identical whether the rows came from the file or from Kafka."""
    ts = data.frame["ts_event"].to_numpy()
    return {
        "window": data.window.report(),
        "rows_in_window": len(ts),
        "ticks": snaps.ticks,
        "venues": [int(p) for p in snaps.publisher_ids],
        "first_ts_event": format_ns(int(ts.min())) if len(ts) else None,
        "last_ts_event": format_ns(int(ts.max())) if len(ts) else None,
        "untradable_quotes": snaps.untradable_quotes,
        "crossed_quotes": snaps.crossed_quotes,
        "duplicate_rows": duplicate_rows(data.frame),
    }


def duplicate_rows(frame: pd.DataFrame) -> int:
    """Rows identical to an earlier row in every loaded column. Harmless under the snapshot rule (the
    first message at a tick wins and an identical later one changes nothing), so they are counted only."""
    return int(frame.duplicated().sum()) if len(frame) else 0


def run(data: MarketData, fees: FeeTable, config: RunConfig) -> RunResult:
    market, names = build_market(data, fees)
    snaps = market.snapshots
    if snaps.ticks == 0:
        raise UserError(f"{data.source}: no rows to route in {data.window.describe()}")
    strategy = functools.partial(run_faithful_router, market, config.order_size, step=config.step)

    def point(lambda_over: float, lambda_under: float, theta_queue: float) -> Execution:
        return strategy(lambda_over=lambda_over, lambda_under=lambda_under, theta_queue=theta_queue)

    points = grid(config.lambda_over, config.lambda_under, config.theta_queue)
    result = search(point, points, jobs=config.jobs)
    baselines = {name: fn(market, config.order_size) for name, fn in BASELINES.items()}
    report = build_report(
        result,
        baselines,
        order_size=config.order_size,
        publisher_ids=snaps.publisher_ids,
        venue_names=names,
        tick_ts=snaps.ts_event,
        grid_axes={
            "lambda_over": config.lambda_over,
            "lambda_under": config.lambda_under,
            "theta_queue": config.theta_queue,
        },
        data_section=data_section(data, snaps),
        mode=config.mode,
        step=config.step,
    )
    return RunResult(report, market, result, baselines, names)


def fills_frame(result: RunResult) -> pd.DataFrame:
    """The child-fill ledger of the router and every baseline, one row per fill."""
    snaps = result.market.snapshots
    parts = []
    for ex in [result.search.best.execution, *result.baselines.values()]:
        parts.append(
            pd.DataFrame(
                {
                    "strategy": ex.name,
                    "tick": ex.tick,
                    "ts_event": [format_ns(t) for t in snaps.ts_event[ex.tick]],
                    "publisher_id": snaps.publisher_ids[ex.venue],
                    "venue": [result.venue_names[v] for v in ex.venue],
                    "side": "B",
                    "liquidity": "taker",
                    "price": ex.price,
                    "shares": ex.shares,
                    "fee_per_share": ex.fee,
                    "rebate": ex.rebate,
                    "cash": ex.shares * (ex.price + ex.fee) - ex.rebate,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def write_fills(result: RunResult, path: str | Path) -> int:
    frame = fills_frame(result)
    try:
        frame.to_csv(path, index=False, float_format="%.10g")
    except OSError as exc:
        raise UserError(f"--fills {path}: cannot write the ledger ({exc.strerror or exc})") from None
    return len(frame)
