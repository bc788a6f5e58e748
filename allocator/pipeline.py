"""data → snapshots → allocation → execution → baselines → search → report, in one call.

Both entry points use this: `order_allocator.py --csv` with a frame read from a file, and the Kafka
consumer with a frame decoded from the stream. Same frame in, same report out.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from allocator.baselines.simulated import SIMULATED_BASELINES
from allocator.baselines.snapshot import BASELINES
from allocator.data.loader import MarketData
from allocator.data.venues import FeeTable
from allocator.data.window import NS_PER_SECOND, format_ns
from allocator.errors import UserError
from allocator.execution.book import build_book
from allocator.execution.faithful import Execution, Market, run_faithful_router
from allocator.execution.realistic import SimMarket, SimSettings, build_sim_market, run_ck_router
from allocator.report.build import (
    build_report,
    decision_log,
    decision_summary,
    execution_profile,
    fill_times,
    parameter_effects,
)
from allocator.search import (
    DEFAULT_LAMBDA_OVER,
    DEFAULT_LAMBDA_UNDER,
    DEFAULT_THETA_QUEUE,
    SearchResult,
    grid,
    search,
)
from allocator.snapshots.rule import Snapshots, build_snapshots
from allocator.snapshots.side import SIDES, Side, side_letter, side_sign

MODES = ("faithful", "cont-kukanov")
log = logging.getLogger("order_allocator")


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
    side: Side = "buy"
    sim: SimSettings = field(default_factory=SimSettings)  # used by --mode cont-kukanov only
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.order_size <= 0:
            raise UserError(f"--order-size {self.order_size}: must be a positive number of shares")
        if self.step <= 0:
            raise UserError(f"--step {self.step}: must be a positive number of shares")
        if self.mode not in MODES:
            raise UserError(f"--mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.side not in SIDES:
            raise UserError(f"--side {self.side!r} is not one of {', '.join(SIDES)}")

    @property
    def realistic(self) -> bool:
        return self.mode == "cont-kukanov"


@dataclass
class RunResult:
    report: dict[str, Any]
    market: Market
    search: SearchResult
    baselines: dict[str, Execution]
    venue_names: list[str]


def build_market(data: MarketData, fees: FeeTable, side: Side = "buy") -> tuple[Market, list[str]]:
    """Snapshots plus the fee arrays aligned with their venues."""
    snaps = build_snapshots(data.frame, side)
    taker, rebate = fees.arrays(snaps.publisher_ids)
    start, end = window_bounds(data)
    return Market(snaps, taker, rebate, start, end), fees.names(snaps.publisher_ids)


def window_bounds(data: MarketData) -> tuple[int, int]:
    """The window in ns; an unbounded side (--start/--end all) is measured from the window's own rows."""
    start, end = data.window.start_ns, data.window.end_ns
    if len(data.frame):
        ts = data.frame["ts_event"].to_numpy(dtype=np.int64)
        start = int(ts.min()) if start <= np.iinfo(np.int64).min else start
        end = int(ts.max()) + 1 if end >= np.iinfo(np.int64).max else end
    return start, end


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


def realistic_frame(data: MarketData) -> pd.DataFrame:
    """History rows (before the window, for the outflow estimator only) followed by the window's rows."""
    history = data.history
    if history is None or len(history) == 0:
        return data.frame
    return pd.concat([history, data.frame], ignore_index=True)


def build_sim_market_for(
    data: MarketData, fees: FeeTable, settings: SimSettings, side: Side = "buy"
) -> tuple[SimMarket, list[str]]:
    """The realistic mode's view of the data: every venue's message stream for the order's side, over the
    history and the window, and the common arrival of every strategy."""
    frame = realistic_frame(data)
    snaps = build_snapshots(frame, side)
    taker, rebate = fees.arrays(snaps.publisher_ids)
    book = build_book(frame, snaps.publisher_ids, side)
    if not any(stream.hit_sz.any() for stream in book.streams):
        log.warning(
            "%s: no trade rows against the %s side (action T with price and size): resting orders cannot "
            "fill in the cont-kukanov mode, so whatever the router posts ends in the clean-up",
            data.source,
            "bid" if side == "buy" else "ask",
        )
    ts = frame["ts_event"].to_numpy(dtype=np.int64)
    recv = frame["ts_recv"].to_numpy(dtype=np.int64) if "ts_recv" in frame.columns else ts
    sim_market = build_sim_market(snaps, taker, rebate, window_bounds(data), book, ts, recv, settings)
    arrival = sim_market.arrival
    if arrival.delay_ns:
        log.warning(
            "%s: %.3g s of history before the window (need %g s for the outflow estimate): every strategy "
            "arrives %.3g s late, at %s",
            data.source,
            arrival.history_seconds,
            min(settings.warmup_ns, settings.calibration_ns) / NS_PER_SECOND,
            arrival.delay_ns / NS_PER_SECOND,
            format_ns(arrival.ts_ns),
        )
    return sim_market, fees.names(snaps.publisher_ids)


def run(data: MarketData, fees: FeeTable, config: RunConfig) -> RunResult:
    market, names = build_market(data, fees, config.side)
    window_snaps = market.snapshots
    if window_snaps.ticks == 0:
        raise UserError(f"{data.source}: no rows to route in {data.window.describe()}")
    sim_market = None
    if config.realistic:
        sim_market, names = build_sim_market_for(data, fees, config.sim, config.side)
        market = sim_market.market
        strategy = functools.partial(run_ck_router, sim_market, config.order_size)
    else:
        strategy = functools.partial(run_faithful_router, market, config.order_size, step=config.step)

    def point(lambda_over: float, lambda_under: float, theta_queue: float) -> Execution:
        return strategy(lambda_over=lambda_over, lambda_under=lambda_under, theta_queue=theta_queue)

    points = grid(config.lambda_over, config.lambda_under, config.theta_queue)
    result = search(point, points, jobs=config.jobs)
    if sim_market is not None:
        baselines = {name: fn(sim_market, config.order_size) for name, fn in SIMULATED_BASELINES.items()}
    else:
        baselines = {name: fn(market, config.order_size) for name, fn in BASELINES.items()}
    snaps = market.snapshots
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
        data_section=data_section(data, window_snaps),
        mode=config.mode,
        step=config.step,
    )
    if sim_market is not None:
        report["execution"] = execution_section(sim_market, result, baselines, names)
    return RunResult(report, market, result, baselines, names)


def execution_section(
    sim_market: SimMarket, result: SearchResult, baselines: dict[str, Execution], names: list[str]
) -> dict[str, Any]:
    """What only the realistic mode knows: the model's settings, each strategy's liquidity mix and shortfall
    against the arrival mid, the router's decisions at the best grid point, and how the grid moved them."""
    market = sim_market.market
    snaps = market.snapshots
    mid = sim_market.arrival_mid
    router = result.best.execution
    strategies = {"optimized": router} | baselines
    return {
        "model": sim_market.settings.report() | {"book_levels": sim_market.book.levels},
        "side": snaps.side,
        "arrival_ts": format_ns(sim_market.arrival_ns),
        "arrival": sim_market.arrival.report(),
        "arrival_mid": None if mid is None else round(side_sign(snaps.side) * mid, 6),
        "strategies": {
            name: execution_profile(ex, mid, snaps.publisher_ids, names) for name, ex in strategies.items()
        },
        "router_decisions": decision_summary(router.decisions, snaps.publisher_ids, snaps.side),
        "parameter_effects": parameter_effects(result),
    }


def fills_frame(result: RunResult) -> pd.DataFrame:
    """The child-fill ledger of the router and every baseline, one row per fill, in market prices.

    `liquidity` is taker, maker or cleanup; `queue_ahead` is the displayed size ahead of a resting order when
    it was posted (empty for takers); `order_id` groups the fills of one child order (realistic mode)."""
    snaps = result.market.snapshots
    parts = []
    for ex in [result.search.best.execution, *result.baselines.values()]:
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
                    "venue": [result.venue_names[v] for v in ex.venue],
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


def write_decisions(result: RunResult, path: str | Path) -> int:
    """The decision log (allocator.report.build.decision_log) of every grid point, one JSON object per line."""
    snaps = result.market.snapshots
    try:
        with open(path, "w", encoding="utf-8") as out:
            count = 0
            for index, point in enumerate(result.search.points):
                for line in decision_log(point.execution.decisions, snaps.publisher_ids, snaps.side, index):
                    out.write(json.dumps(line, allow_nan=False, ensure_ascii=False) + "\n")
                    count += 1
    except OSError as exc:
        raise UserError(f"--decisions {path}: cannot write the log ({exc.strerror or exc})") from None
    return count


def write_fills(result: RunResult, path: str | Path) -> int:
    frame = fills_frame(result)
    try:
        frame.to_csv(path, index=False, float_format="%.10g")
    except OSError as exc:
        raise UserError(f"--fills {path}: cannot write the ledger ({exc.strerror or exc})") from None
    return len(frame)
