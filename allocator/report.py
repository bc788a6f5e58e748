"""The JSON report: the original README's shape, plus sections that keep the numbers honest.

Definitions (also in README.md):
- total_cash = Σ shares·(price + fee) − rebates earned
- total_cost = total_cash + θ·(unfilled + overfill) + λ_under·unfilled + λ_over·overfill, with the best
  grid point's λ/θ applied to every strategy so the costs are comparable
- avg_fill_px = total_cash / shares_filled
- savings_bps = (baseline avg_fill_px − optimized avg_fill_px) / baseline avg_fill_px × 10,000
"""

from __future__ import annotations

from typing import Any

from allocator.execution import Execution
from allocator.search import SearchResult
from allocator.window import format_ns

MONEY_DECIMALS = 6
BPS_DECIMALS = 4


def savings_bps(baseline_avg: float | None, optimized_avg: float | None) -> float | None:
    """Positive when the router paid less per share than the baseline; None if either bought nothing."""
    if baseline_avg is None or optimized_avg is None or baseline_avg == 0:
        return None
    return round((baseline_avg - optimized_avg) / baseline_avg * 10_000, BPS_DECIMALS)


def _money(value: float | None) -> float | None:
    return None if value is None else round(float(value), MONEY_DECIMALS)


def strategy_summary(execution: Execution, params: tuple[float, float, float]) -> dict[str, Any]:
    """The four numbers the original README shows for each strategy."""
    return {
        "total_cost": _money(execution.total_cost(*params)),
        "total_cash": _money(execution.total_cash),
        "shares_filled": execution.shares_filled,
        "avg_fill_px": _money(execution.avg_fill_px),
    }


def venue_breakdown(execution: Execution, publisher_ids, names: list[str]) -> list[dict[str, Any]]:
    """Shares and cash per venue, in publisher_id order, only venues that filled something."""
    rows = []
    for v, pid in enumerate(publisher_ids):
        mask = execution.venue == v
        shares = int(execution.shares[mask].sum())
        if shares == 0:
            continue
        cash = float((execution.shares[mask] * (execution.price[mask] + execution.fee[mask])).sum())
        cash -= float(execution.rebate[mask].sum())
        rows.append(
            {
                "publisher_id": int(pid),
                "venue": names[v],
                "shares": shares,
                "cash": _money(cash),
                "fees": _money(float((execution.shares[mask] * execution.fee[mask]).sum())),
                "child_fills": int(mask.sum()),
            }
        )
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
            "first_fill_ts": format_ns(tick_ts[router.tick[0]]) if len(router.tick) else None,
            "last_fill_ts": format_ns(tick_ts[router.tick[-1]]) if len(router.tick) else None,
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
            "note": (
                "every grid point made the same fills: the parameters only change the penalty terms"
                if result.distinct_outcomes == 1
                else f"the grid produced {result.distinct_outcomes} different sets of fills"
            ),
        },
        "data": data_section,
    }
    return report
