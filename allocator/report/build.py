"""The JSON report: the original README's shape, plus sections that keep the numbers honest.

Definitions (also in README.md):
- total_cash = Σ shares·(price + fee) − rebates earned
- total_cost = total_cash + θ·(unfilled + overfill) + λ_under·unfilled + λ_over·overfill, with the best
  grid point's λ/θ applied to every strategy so the costs are comparable
- avg_fill_px = total_cash / shares_filled
- savings_bps = (baseline avg_fill_px − optimized avg_fill_px) / baseline avg_fill_px × 10,000

For `--side sell`, total_cash is the money received (net of fees, plus rebates), avg_fill_px the net price
received, total_cost = penalties − total_cash (lower is better, as for a buy) and savings_bps is positive
when the router received more. Internally all of these are computed once, in cost space (allocator.snapshots.side).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from allocator.allocation.penalties import Penalties
from allocator.allocation.policy import Decision
from allocator.config import RunConfig
from allocator.data.loader import MarketData, duplicate_rows
from allocator.data.venues import FeeTable
from allocator.data.window import NS_PER_SECOND, format_ns
from allocator.execution.faithful import Execution
from allocator.execution.sim_market import SimMarket
from allocator.search import SearchResult
from allocator.snapshots.rule import Snapshots
from allocator.snapshots.side import Side, side_sign

IntArray = npt.NDArray[np.int64]

MONEY_DECIMALS = 6
LIQUIDITY_KINDS = ("taker", "maker", "cleanup")
BPS_DECIMALS = 4


def savings_bps(baseline_avg: float | None, optimized_avg: float | None) -> float | None:
    """Positive when the router did better per share than the baseline; None if either filled nothing.

    Arguments are cost-space averages (a sell's are negative), so one formula serves both sides."""
    if baseline_avg is None or optimized_avg is None or baseline_avg == 0:
        return None
    return round((baseline_avg - optimized_avg) / abs(baseline_avg) * 10_000, BPS_DECIMALS)


def _money(value: float | None) -> float | None:
    return None if value is None else round(float(value), MONEY_DECIMALS)


def market_cash(execution: Execution) -> float:
    """Money paid (buy) or received (sell)."""
    return side_sign(execution.side) * execution.total_cash


def market_avg_px(execution: Execution) -> float | None:
    avg = execution.avg_fill_px
    return None if avg is None else side_sign(execution.side) * avg


def strategy_summary(execution: Execution, penalties: Penalties) -> dict[str, Any]:
    """The four numbers the original README shows for each strategy."""
    return {
        "total_cost": _money(execution.total_cost(penalties)),
        "total_cash": _money(market_cash(execution)),
        "shares_filled": execution.shares_filled,
        "avg_fill_px": _money(market_avg_px(execution)),
    }


def venue_breakdown(execution: Execution, publisher_ids: IntArray, names: list[str]) -> list[dict[str, Any]]:
    """Shares and cash per venue, in publisher_id order, only venues that filled something."""
    rows = []
    for v, pid in enumerate(publisher_ids):
        mask = execution.venue == v
        shares = int(execution.shares[mask].sum())
        if shares == 0:
            continue
        cash = float(execution.fill_gross[mask].sum())
        cash -= float(execution.rebate[mask].sum())
        row = {
            "publisher_id": int(pid),
            "venue": names[v],
            "shares": shares,
            "cash": _money(side_sign(execution.side) * cash),
            "fees": _money(float((execution.shares[mask] * execution.fee[mask]).sum())),
            "child_fills": int(mask.sum()),
        }
        if execution.simulated:  # the realistic mode says how each share filled
            kinds = execution.kind[mask]
            for kind in LIQUIDITY_KINDS:
                row[f"{kind}_shares"] = int(execution.shares[mask][kinds == kind].sum())
            row["rebates"] = _money(float(execution.rebate[mask].sum()))
        rows.append(row)
    return rows


def build_report(
    result: SearchResult,
    baselines: dict[str, Execution],
    *,
    config: RunConfig,
    snapshots: Snapshots,
    venue_names: list[str],
    data_section: dict[str, Any],
    sim_market: SimMarket | None = None,
) -> dict[str, Any]:
    """The report, deterministic given the same inputs; `with_run_sections` adds what differs per run."""
    best = result.best
    router = best.execution
    report: dict[str, Any] = {
        "best_parameters": best.penalties.report(),
        "optimized": strategy_summary(router, best.penalties),
        "baselines": {name: strategy_summary(ex, best.penalties) for name, ex in baselines.items()},
        "savings_vs_baselines_bps": {
            name: savings_bps(ex.avg_fill_px, router.avg_fill_px) for name, ex in baselines.items()
        },
        "fills": fills_section(router, baselines, config.order_size),
        "router": router_section(router, config, snapshots, venue_names),
        "grid": grid_section(result, config),
        "data": data_section,
    }
    if sim_market is not None:
        report["execution"] = execution_section(sim_market, result, baselines, venue_names)
    return report


def with_run_sections(
    report: dict[str, Any],
    *,
    complete: bool,
    source: dict[str, Any],
    fee_table: FeeTable,
    grid_workers: int,
    elapsed_seconds: float,
) -> dict[str, Any]:
    """The report plus what differs from run to run (where the rows came from, timings, stream counters):
    `status` and `run`, the only sections allowed to differ between an offline and a Kafka run."""
    return report | {
        "status": "complete" if complete else "incomplete",
        "run": source
        | {
            "fee_table": fee_table.path,
            "fee_override": fee_table.overridden or None,
            "grid_workers": grid_workers,
            "elapsed_seconds": round(elapsed_seconds, 3),
        },
    }


def fills_section(router: Execution, baselines: dict[str, Execution], order_size: int) -> dict[str, Any]:
    """Who filled how much: averages compare fairly only when every strategy filled the same shares."""
    filled = {"optimized": router.shares_filled} | {n: ex.shares_filled for n, ex in baselines.items()}
    unfilled = {"optimized": router.unfilled} | {n: ex.unfilled for n, ex in baselines.items()}
    equal = len(set(filled.values())) == 1
    return {
        "order_size": order_size,
        "shares_filled": filled,
        "unfilled_shares": unfilled,
        "equal_fills": equal,
        "note": (
            "all strategies filled the same number of shares"
            if equal
            else "strategies filled different quantities: compare avg_fill_px with care, and see total_cost, "
            "which charges the penalties for unfilled shares"
        ),
    }


def router_section(
    router: Execution, config: RunConfig, snapshots: Snapshots, venue_names: list[str]
) -> dict[str, Any]:
    times = fill_times(router, snapshots.ts_event)
    return {
        "mode": config.mode,
        "step": config.step,
        "ticks_waited": router.ticks_waited,
        "child_fills": len(router.shares),
        "side": router.side,
        "first_fill_ts": format_ns(times[0]) if len(router.tick) else None,
        "last_fill_ts": format_ns(times[-1]) if len(router.tick) else None,
        "fees_paid": _money(router.fees_paid),
        "venues": venue_breakdown(router, snapshots.publisher_ids, venue_names),
    }


def grid_section(result: SearchResult, config: RunConfig) -> dict[str, Any]:
    """The spread of outcomes over the grid, so a 'best' point that changed nothing reads as such."""
    costs = [p.total_cost for p in result.points]
    best, worst = min(costs), max(costs)
    return {
        "points": len(result.points),
        **{axis: list(values) for axis, values in config.grid.axes().items()},
        "distinct_outcomes": result.distinct_outcomes,
        "best_total_cost": _money(best),
        "worst_total_cost": _money(worst),
        "worst_minus_best": _money(worst - best),
        "worst_minus_best_bps": round((worst - best) / abs(best) * 10_000, BPS_DECIMALS) if best else None,
        "note": (
            "every grid point made the same fills: the parameters only change the penalty terms"
            if result.distinct_outcomes == 1
            else f"the grid produced {result.distinct_outcomes} different sets of fills"
        ),
    }


def fill_times(execution: Execution, tick_ts: IntArray) -> IntArray:
    """ns timestamps of the fills: the simulator's own times, or the faithful mode's tick times."""
    return execution.ts if len(execution.ts) == len(execution.shares) else tick_ts[execution.tick]


def shortfall_bps(execution: Execution, arrival_mid_cost: float | None) -> float | None:
    """Implementation shortfall against the arrival mid, in bps: positive = paid above (sold below) it."""
    avg = execution.avg_fill_px
    if avg is None or not arrival_mid_cost:
        return None
    return round((avg - arrival_mid_cost) / abs(arrival_mid_cost) * 10_000, BPS_DECIMALS)


def execution_profile(
    execution: Execution, arrival_mid_cost: float | None, publisher_ids: IntArray, names: list[str]
) -> dict[str, Any]:
    """How one strategy filled in the realistic mode: shortfall, fill rate before clean-up, liquidity mix."""
    cleanup = execution.shares_of("cleanup")
    cleanup_mask = execution.kind == "cleanup"
    cleanup_cash = float(np.sum(execution.fill_gross[cleanup_mask]))
    sign = side_sign(execution.side)
    return {
        "implementation_shortfall_bps": shortfall_bps(execution, arrival_mid_cost),
        "fill_rate_before_cleanup": round((execution.shares_filled - cleanup) / execution.order_size, 6),
        "taker_shares": execution.shares_of("taker"),
        "maker_shares": execution.shares_of("maker"),
        "cleanup_shares": cleanup,
        "cleanup_avg_px": _money(sign * cleanup_cash / cleanup) if cleanup else None,
        "overfill_shares": execution.overfill,
        "rebates_earned": _money(execution.rebates_earned),
        "fees_paid": _money(execution.fees_paid),
        "child_fills": len(execution.shares),
        "venues": venue_breakdown(execution, publisher_ids, names),
    }


def decision_summary(
    decisions: Sequence[Decision], publisher_ids: IntArray, side: Side
) -> list[dict[str, Any]]:
    """The router's per-horizon choices, in market prices and publisher ids."""
    sign = side_sign(side)
    out = []
    for d in decisions:
        out.append(
            {
                "ts": format_ns(d.t),
                "remaining": d.remaining,
                "market_shares": d.market,
                "limit_shares": {str(int(publisher_ids[v])): q for v, q in d.limits.items()},
                "limit_px": None if d.post_px is None else _money(sign * d.post_px),
                "queue_ahead": {str(int(publisher_ids[v])): q for v, q in d.queue_ahead.items()},
                "half_spread": _money(d.half_spread),
                "outflow_samples": d.outflow_samples,
                "solver": d.solver,
                "certificate": (d.certificate or {}).get("method"),
            }
        )
    return out


DECISION_LOG_VERSION = 1


def decision_log(
    decisions: Sequence[Decision], publisher_ids: IntArray, side: Side, grid_point: int
) -> list[dict[str, Any]]:
    """Every input and output of each router solve, as the README documents them, so anyone can re-solve
    a line (allocator.allocation.exact.solve_exact on S, h, f, r, Q, xi and the penalties) and get its M and L.

    Prices (mid, limit_px) are market prices; h, f, r, Q and xi are what the solver saw. Floats are written
    with their full repr, so a re-solve reads back the very numbers that were solved."""
    sign = side_sign(side)
    ids = [int(p) for p in publisher_ids]
    lines = []
    for d in decisions:
        x = d.x
        line: dict[str, Any] = {
            "version": DECISION_LOG_VERSION,
            "grid_point": grid_point,
            "ts": format_ns(d.t),
            "side": side,
            "S": d.remaining,
            "horizon_seconds": d.horizon_ns / NS_PER_SECOND,
            "mid": None if d.mid is None else sign * d.mid,
            "h": d.half_spread,
            "f": d.f,
            "r": d.r,
            "Q": d.Q,
            "venues": [ids[v] for v in d.venues],
            "market_venue": ids[d.market_venue],
            "limit_px": None if d.post_px is None else sign * d.post_px,
            "xi": d.xi.tolist() if d.xi is not None else [],
            **d.penalties.report(),
            "M": float(x[0]) + 0.0 if x is not None else float(d.market),
            "L": [float(v) + 0.0 for v in x[1:]] if x is not None else [],
            "sent": {"M": d.market, "L": [int(d.limits.get(v, 0)) for v in d.venues]},
            "objective": d.objective,
            "sent_objective": d.sent_objective,
            "solver": d.solver,
            "certificate": d.certificate
            or {"method": "forced", "reason": "no venue to post at: the whole remainder is a market order"},
        }
        lines.append(line)
    return lines


def parameter_effects(result: SearchResult) -> dict[str, list[dict[str, Any]]]:
    """For each value of each grid axis, averaged over the other axes: the share of the order the router
    sent as market orders at its decisions, how much it over-posted (M + ΣL − S, as a share of S), and the
    mean total_cost. Where every posted share surely fills these rows are flat: the parameters then have
    nothing to trade off, and the table says so rather than inventing an effect."""
    out: dict[str, list[dict[str, Any]]] = {}
    for axis in ("lambda_over", "lambda_under", "theta_queue"):
        rows = []
        values = sorted({getattr(p.penalties, axis) for p in result.points})
        for value in values:
            points = [p for p in result.points if getattr(p.penalties, axis) == value]
            market = posted = wanted = 0
            for p in points:
                for d in p.execution.decisions:
                    market += d.market
                    posted += d.market + sum(d.limits.values())
                    wanted += d.remaining
            rows.append(
                {
                    "value": value,
                    "market_share": round(market / wanted, 6) if wanted else None,
                    "over_posting": round((posted - wanted) / wanted, 6) if wanted else None,
                    "mean_total_cost": _money(float(np.mean([p.total_cost for p in points]))),
                }
            )
        out[axis] = rows
    return out


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
