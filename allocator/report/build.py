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

from typing import Any

import numpy as np

from allocator.data.window import NS_PER_SECOND, format_ns
from allocator.execution.faithful import Execution
from allocator.search import SearchResult
from allocator.snapshots.side import side_sign

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


def strategy_summary(execution: Execution, params: tuple[float, float, float]) -> dict[str, Any]:
    """The four numbers the original README shows for each strategy."""
    return {
        "total_cost": _money(execution.total_cost(*params)),
        "total_cash": _money(market_cash(execution)),
        "shares_filled": execution.shares_filled,
        "avg_fill_px": _money(market_avg_px(execution)),
    }


def venue_breakdown(execution: Execution, publisher_ids, names: list[str]) -> list[dict[str, Any]]:
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
    order_size: int,
    publisher_ids,
    venue_names: list[str],
    tick_ts,
    grid_axes: dict[str, tuple[float, ...]],
    data_section: dict[str, Any],
    mode: str,
    step: int,
) -> dict[str, Any]:
    """Assemble the report dict (deterministic given the same inputs: run metadata is added by callers)."""
    best = result.best
    params = (best.lambda_over, best.lambda_under, best.theta_queue)
    router = best.execution
    summaries = {name: strategy_summary(ex, params) for name, ex in baselines.items()}
    optimized = strategy_summary(router, params)
    filled = {"optimized": router.shares_filled} | {n: ex.shares_filled for n, ex in baselines.items()}
    unfilled = {"optimized": router.unfilled} | {n: ex.unfilled for n, ex in baselines.items()}
    equal = len(set(filled.values())) == 1
    costs = [p.total_cost for p in result.points]
    report: dict[str, Any] = {
        "best_parameters": {
            "lambda_over": best.lambda_over,
            "lambda_under": best.lambda_under,
            "theta_queue": best.theta_queue,
        },
        "optimized": optimized,
        "baselines": summaries,
        "savings_vs_baselines_bps": {
            name: savings_bps(ex.avg_fill_px, router.avg_fill_px) for name, ex in baselines.items()
        },
        "fills": {
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
        },
        "router": {
            "mode": mode,
            "step": step,
            "ticks_waited": router.ticks_waited,
            "child_fills": len(router.shares),
            "side": router.side,
            "first_fill_ts": format_ns(fill_times(router, tick_ts)[0]) if len(router.tick) else None,
            "last_fill_ts": format_ns(fill_times(router, tick_ts)[-1]) if len(router.tick) else None,
            "fees_paid": _money(router.fees_paid),
            "venues": venue_breakdown(router, publisher_ids, venue_names),
        },
        "grid": {
            "points": len(result.points),
            "lambda_over": list(grid_axes["lambda_over"]),
            "lambda_under": list(grid_axes["lambda_under"]),
            "theta_queue": list(grid_axes["theta_queue"]),
            "distinct_outcomes": result.distinct_outcomes,
            "best_total_cost": _money(min(costs)),
            "worst_total_cost": _money(max(costs)),
            "worst_minus_best": _money(max(costs) - min(costs)),
            "worst_minus_best_bps": (
                round((max(costs) - min(costs)) / abs(min(costs)) * 10_000, BPS_DECIMALS)
                if min(costs)
                else None
            ),
            "note": (
                "every grid point made the same fills: the parameters only change the penalty terms"
                if result.distinct_outcomes == 1
                else f"the grid produced {result.distinct_outcomes} different sets of fills"
            ),
        },
        "data": data_section,
    }
    return report


def fill_times(execution: Execution, tick_ts) -> Any:
    """ns timestamps of the fills: the simulator's own times, or the faithful mode's tick times."""
    return execution.ts if len(execution.ts) == len(execution.shares) else tick_ts[execution.tick]


def shortfall_bps(execution: Execution, arrival_mid_cost: float | None) -> float | None:
    """Implementation shortfall against the arrival mid, in bps: positive = paid above (sold below) it."""
    avg = execution.avg_fill_px
    if avg is None or not arrival_mid_cost:
        return None
    return round((avg - arrival_mid_cost) / abs(arrival_mid_cost) * 10_000, BPS_DECIMALS)


def execution_profile(
    execution: Execution, arrival_mid_cost: float | None, publisher_ids, names: list[str]
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


def decision_summary(decisions: list[dict], publisher_ids, side: str) -> list[dict[str, Any]]:
    """The router's per-horizon choices, in market prices and publisher ids."""
    sign = side_sign(side)
    out = []
    for d in decisions:
        certificate = d.get("certificate") or {}
        out.append(
            {
                "ts": format_ns(d["t"]),
                "remaining": d["remaining"],
                "market_shares": d["market"],
                "limit_shares": {str(int(publisher_ids[v])): q for v, q in d["limits"].items()},
                "limit_px": None if d.get("post_px") is None else _money(sign * d["post_px"]),
                "queue_ahead": {str(int(publisher_ids[v])): q for v, q in d.get("queue_ahead", {}).items()},
                "half_spread": _money(d["half_spread"]),
                "outflow_samples": d.get("outflow_samples", 0),
                "solver": d.get("solver"),
                "certificate": certificate.get("method"),
            }
        )
    return out


DECISION_LOG_VERSION = 1


def decision_log(decisions: list[dict], publisher_ids, side: str, grid_point: int) -> list[dict[str, Any]]:
    """Every input and output of each router solve, as the README documents them, so anyone can re-solve
    a line (allocator.allocation.exact.solve_exact on S, h, f, r, Q, xi and the penalties) and get its M and L.

    Prices (mid, limit_px) are market prices; h, f, r, Q and xi are what the solver saw. Floats are written
    with their full repr, so a re-solve reads back the very numbers that were solved."""
    sign = side_sign(side)
    ids = [int(p) for p in publisher_ids]
    lines = []
    for d in decisions:
        venues = d.get("venues", [])
        x = d.get("x")
        limits = d["limits"]
        line: dict[str, Any] = {
            "version": DECISION_LOG_VERSION,
            "grid_point": grid_point,
            "ts": format_ns(d["t"]),
            "side": side,
            "S": d["remaining"],
            "horizon_seconds": d["horizon_ns"] / NS_PER_SECOND,
            "mid": None if d.get("mid") is None else sign * d["mid"],
            "h": d["half_spread"],
            "f": d.get("f"),
            "r": d.get("r", []),
            "Q": d.get("Q", []),
            "venues": [ids[v] for v in venues],
            "market_venue": ids[d["market_venue"]],
            "limit_px": None if d.get("post_px") is None else sign * d["post_px"],
            "xi": d["xi"].tolist() if "xi" in d else [],
            "lambda_over": d["lambda_over"],
            "lambda_under": d["lambda_under"],
            "theta_queue": d["theta_queue"],
            "M": float(x[0]) + 0.0 if x is not None else float(d["market"]),
            "L": [float(v) + 0.0 for v in x[1:]] if x is not None else [],
            "sent": {"M": d["market"], "L": [int(limits.get(v, 0)) for v in venues]},
            "objective": d.get("objective"),
            "sent_objective": d.get("sent_objective"),
            "solver": d.get("solver"),
            "certificate": d.get("certificate")
            or {"method": "forced", "reason": "no venue to post at: the whole remainder is a market order"},
        }
        lines.append(line)
    return lines


def parameter_effects(result: SearchResult) -> dict[str, list[dict[str, Any]]]:
    """For each value of each grid axis, averaged over the other axes: the share of the order the router
    sent as market orders at its decisions, how much it over-posted (M + ΣL − S, as a share of S), and the
    mean total_cost. Where every posted share surely fills these rows are flat: the parameters then have
    nothing to trade off, and the table says so rather than inventing an effect."""
    axes = {"lambda_over": 0, "lambda_under": 1, "theta_queue": 2}
    out: dict[str, list[dict[str, Any]]] = {}
    for axis, index in axes.items():
        rows = []
        values = sorted({(p.lambda_over, p.lambda_under, p.theta_queue)[index] for p in result.points})
        for value in values:
            points = [
                p for p in result.points if (p.lambda_over, p.lambda_under, p.theta_queue)[index] == value
            ]
            market = posted = wanted = 0
            for p in points:
                for d in p.execution.decisions:
                    market += d["market"]
                    posted += d["market"] + sum(d["limits"].values())
                    wanted += d["remaining"]
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
