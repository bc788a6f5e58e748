"""data → snapshots → allocation → execution → baselines → search → report, in one call.

Both entry points use this: `order_allocator.py --csv` with a frame read from a file, and the Kafka
consumer with a frame decoded from the stream. Same frame in, same report out.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from allocator.baselines.simulated import SIMULATED_BASELINES
from allocator.baselines.snapshot import BASELINES
from allocator.config import RunConfig, SimSettings
from allocator.data.loader import MarketData, frame_with_history, window_bounds
from allocator.data.venues import FeeTable
from allocator.data.window import NS_PER_SECOND, format_ns
from allocator.errors import UserError
from allocator.execution.book import build_book
from allocator.execution.faithful import Execution, Market, run_faithful_router
from allocator.execution.realistic import run_ck_router
from allocator.execution.sim_market import SimMarket, build_sim_market
from allocator.report.build import build_report, data_section
from allocator.search import SearchResult, Strategy, search
from allocator.snapshots.rule import Snapshots, build_snapshots
from allocator.snapshots.side import Side

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    report: dict[str, Any]
    market: Market
    search: SearchResult
    baselines: dict[str, Execution]
    venue_names: list[str]
    config: RunConfig
    sim_market: SimMarket | None = None  # the realistic mode's market (arrival, its mid, the streams)

    def executions(self) -> dict[str, Execution]:
        """The router at its best grid point, then each baseline: what the ledger and the plot show."""
        return {"optimized": self.search.best.execution} | self.baselines


def build_market(data: MarketData, fees: FeeTable, side: Side = "buy") -> tuple[Market, list[str]]:
    """Snapshots plus the fee arrays aligned with their venues."""
    snaps = build_snapshots(data.frame, side)
    taker, rebate = fees.arrays(snaps.publisher_ids)
    start, end = window_bounds(data)
    return Market(snaps, taker, rebate, start, end), fees.names(snaps.publisher_ids)


def build_sim_market_for(
    data: MarketData,
    fees: FeeTable,
    settings: SimSettings,
    side: Side = "buy",
    window_snapshots: Snapshots | None = None,
) -> tuple[SimMarket, list[str]]:
    """The realistic mode's view of the data: every venue's message stream for the order's side, over the
    history and the window, and the common arrival of every strategy.

    `window_snapshots`, `build_snapshots(data.frame, side)` when the caller has them already: without
    history they are the snapshots wanted here, and are used instead of being built (and held) twice."""
    frame = frame_with_history(data)
    if window_snapshots is not None and frame is data.frame and window_snapshots.side == side:
        snaps = window_snapshots
    else:
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


def run(
    data: MarketData, fees: FeeTable, config: RunConfig, on_point: Callable[[], None] | None = None
) -> RunResult:
    """Route the order at every grid point, run the baselines, and assemble the report (`on_point`: called
    as each grid point finishes)."""
    market, names = build_market(data, fees, config.side)
    window_snaps = market.snapshots
    if window_snaps.ticks == 0:
        raise UserError(f"{data.source}: no rows to route in {data.window.in_words()}")
    # What the report says about the data, now: the window's snapshots are not needed after it.
    section = data_section(data, window_snaps)
    sim_market = None
    strategy: Strategy
    if config.realistic:
        # Reused when the history is empty (they are then the realistic mode's snapshots too), else freed
        # before the history's and the window's are built.
        reuse = window_snaps if data.history_rows == 0 else None
        del market, window_snaps
        sim_market, names = build_sim_market_for(data, fees, config.sim, config.side, reuse)
        del reuse
        market = sim_market.market
        strategy = functools.partial(run_ck_router, sim_market, config.order_size)
    else:
        strategy = functools.partial(run_faithful_router, market, config.order_size, step=config.step)
    result = search(strategy, config.grid.points(), jobs=config.jobs, on_point=on_point)
    if sim_market is not None:
        baselines = {name: fn(sim_market, config.order_size) for name, fn in SIMULATED_BASELINES.items()}
    else:
        baselines = {name: fn(market, config.order_size) for name, fn in BASELINES.items()}
    report = build_report(
        result,
        baselines,
        config=config,
        snapshots=market.snapshots,
        venue_names=names,
        data_section=section,
        sim_market=sim_market,
    )
    return RunResult(report, market, result, baselines, names, config, sim_market)
