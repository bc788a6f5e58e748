"""One parent order of a study: the router at every grid point and the three baselines, executed by the same
simulator from the same arrival, each summarised by what the study's statistics need."""

from __future__ import annotations

import math
from dataclasses import dataclass

from allocator.allocation.penalties import Penalties
from allocator.config import RunConfig
from allocator.data.loader import MarketData
from allocator.data.venues import FeeTable
from allocator.data.window import NS_PER_SECOND, format_ns
from allocator.errors import UserError
from allocator.execution.faithful import Execution
from allocator.execution.sim_market import mid_seen_at
from allocator.pipeline import run
from allocator.report.build import shortfall_bps


@dataclass(frozen=True)
class StrategyOutcome:
    """How one strategy did on one order (costs in $, shortfall in bps of the arrival mid, lower is better)."""

    strategy: str  # "router@λo,λu,θ" for a grid point, or the baseline's name
    shortfall_bps: float
    fees: float
    rebates: float
    maker_share: float  # share of the filled shares that rested and were hit
    completion_seconds: float  # from the arrival to the last fill (clean-up included)
    market_move_bps: (
        float  # the mid's move from arrival to deadline, positive = against the order (same for all)
    )


def router_label(penalties: Penalties) -> str:
    """The name of a grid point's router in study outputs, e.g. router@0.2,0.6,0.1."""
    return "router@" + ",".join(f"{v:g}" for v in penalties.as_tuple())


def evaluate_order(data: MarketData, fees: FeeTable, config: RunConfig) -> list[StrategyOutcome]:
    """Every grid point's router and every baseline on the order in `data` (its window is the order's
    arrival to deadline, its history the calibration before it). Needs the realistic mode."""
    if not config.realistic:
        raise UserError("a study evaluates the realistic mode: use mode cont-kukanov")
    result = run(data, fees, config)
    sim_market = result.sim_market
    assert sim_market is not None  # the realistic mode always builds it
    mid, arrival = sim_market.arrival_mid, sim_market.arrival_ns
    move = _market_move_bps(mid, mid_seen_at(sim_market, data.window.end_ns - 1))
    runs = [(router_label(p.penalties), p.execution) for p in result.search.points]
    runs += list(result.baselines.items())
    return [_outcome(name, ex, mid, arrival, data.source, move) for name, ex in runs]


def _market_move_bps(arrival_mid: float | None, end_mid: float | None) -> float:
    """How far the mid moved against the order over its life, in bps (cost-space prices: a sell's are
    negated, so a rise is positive for a buy and a fall for a sell); NaN when either mid is unknown."""
    if arrival_mid is None or end_mid is None or arrival_mid == 0:
        return math.nan
    return (end_mid - arrival_mid) / abs(arrival_mid) * 1e4


def _outcome(
    name: str, ex: Execution, mid: float | None, arrival_ns: int, source: str, move_bps: float
) -> StrategyOutcome:
    shortfall = shortfall_bps(ex, mid)
    if shortfall is None or not len(ex.ts):
        raise UserError(
            f"{source}: {name} filled nothing from {format_ns(arrival_ns)} on, so it has no shortfall"
        )
    filled = ex.shares_filled
    return StrategyOutcome(
        strategy=name,
        shortfall_bps=shortfall,
        fees=ex.fees_paid,
        rebates=ex.rebates_earned,
        maker_share=ex.shares_of("maker") / filled if filled else 0.0,
        completion_seconds=(int(ex.ts.max()) - arrival_ns) / NS_PER_SECOND,
        market_move_bps=move_bps,
    )
