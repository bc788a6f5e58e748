"""Per-parent report files of a consumer-group run, and merging them into one summary.

Each member of the group writes one report per parent order, `<parent id>.json` in the reports
directory (`write_report`: a temporary file renamed into place, so a reader, the merge or a member
killed half-way, never sees half a report). `merge` reads them back and sums them up, only from the
reports' own numbers, and says which parents of the parents file have no report: a summary that
silently left parents out would be wrong.

Command line: `python -m allocator.report.merge DIR --parents parents.csv > summary.json`
(allocator.cli.merge); it exits 4 when a parent has no report (or an unusable one).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from allocator.data.parents import Parent
from allocator.errors import UserError
from allocator.report.build import BPS_DECIMALS, MONEY_DECIMALS

SIGN = {"buy": 1, "sell": -1}  # savings in $ = sign · (baseline price − router price) · shares


def write_report(directory: Path, name: str, report: dict[str, Any]) -> Path:
    """Write `report` as `directory/name` atomically (temp file in the same directory, fsync, rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=2, allow_nan=False)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def read_report(path: Path) -> dict[str, Any] | None:
    """A report file's content, or None when it is missing or not a JSON object."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def reported(directory: Path, parents: list[Parent]) -> list[Parent]:
    """The parents whose report file exists."""
    return [p for p in parents if (directory / p.report_name).is_file()]


def merge(directory: Path, parents: list[Parent]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The summary of every parent's report and, separately, the parents without a usable one."""
    if not directory.is_dir():
        raise UserError(
            f"reports directory not found: {directory} (pass the --reports-dir the consumers wrote)"
        )
    rows: list[dict[str, Any]] = []
    missing: list[dict[str, str]] = []
    for parent in parents:
        path = directory / parent.report_name
        report = read_report(path)
        problem = _problem(report, parent) if report is not None else None
        if report is None or problem is not None:
            why = "no report" if not path.exists() else problem or "not a JSON report"
            missing.append({"id": parent.id, "symbol": parent.symbol, "file": str(path), "problem": why})
            continue
        rows.append(parent_row(parent, report))
    expected = {p.report_name for p in parents}
    extra = sorted(f.name for f in directory.glob("*.json") if f.name not in expected)
    summary = {
        "reports_dir": str(directory),
        "parents": rows,
        "totals": totals(rows),
        "missing": missing,
        "unexpected_reports": extra,
        "complete": not missing and all(r["status"] == "complete" for r in rows),
    }
    return summary, missing


def _problem(report: dict[str, Any], parent: Parent) -> str | None:
    """Why a report cannot stand for `parent` (another order's report under its name), or None."""
    if report.get("status") == "failed":
        return f"routing failed: {report.get('error')}"
    try:
        fills, optimized = report["fills"], report["optimized"]
        order = report.get("run", {}).get("parent", {})
    except (KeyError, TypeError, AttributeError):
        return "not an order_allocator.py report (no optimized/fills sections)"
    if not isinstance(fills, dict) or not isinstance(optimized, dict):
        return "not an order_allocator.py report"
    if fills.get("order_size") != parent.size:
        return f"its order_size {fills.get('order_size')} is not the parent's size {parent.size}"
    if order and (order.get("symbol"), order.get("side")) != (parent.symbol, parent.side):
        return f"it routes {order.get('side')} {order.get('symbol')}, the parent is {parent.side} {parent.symbol}"
    return None


def parent_row(parent: Parent, report: dict[str, Any]) -> dict[str, Any]:
    """One parent's line of the summary: the router's numbers and its savings against each baseline."""
    optimized = report["optimized"]
    sign = SIGN[parent.side]
    shares = optimized.get("shares_filled") or 0
    equal = bool(report["fills"].get("equal_fills"))
    baselines = {}
    for name, base in (report.get("baselines") or {}).items():
        baselines[name] = {
            "shares_filled": base.get("shares_filled"),
            "total_cash": base.get("total_cash"),
            "total_cost": base.get("total_cost"),
            "avg_fill_px": base.get("avg_fill_px"),
            "savings_usd": _savings_usd(sign, optimized, base, equal),
            "savings_bps": (report.get("savings_vs_baselines_bps") or {}).get(name),
            "cost_savings_usd": _diff(base.get("total_cost"), optimized.get("total_cost")),
        }
    run = report.get("run", {})
    return {
        "id": parent.id,
        "symbol": parent.symbol,
        "side": parent.side,
        "size": parent.size,
        "start": parent.start,
        "status": report.get("status", "unknown"),
        "mode": (report.get("router") or {}).get("mode"),
        "shares_filled": shares,
        "unfilled_shares": (report["fills"].get("unfilled_shares") or {}).get("optimized"),
        "equal_fills": equal,
        "total_cash": optimized.get("total_cash"),
        "total_cost": optimized.get("total_cost"),
        "avg_fill_px": optimized.get("avg_fill_px"),
        "baselines": baselines,
        "run_id": run.get("run_id"),
        "partition": run.get("partition"),
    }


def _savings_usd(sign: int, optimized: dict[str, Any], base: dict[str, Any], equal: bool) -> float | None:
    """What the router saved against a baseline in $: the cash difference when both filled the same
    shares, else the per-share price difference on the router's shares (then an estimate; see fills)."""
    if equal and optimized.get("total_cash") is not None and base.get("total_cash") is not None:
        return round(sign * (base["total_cash"] - optimized["total_cash"]), MONEY_DECIMALS)
    o_px, b_px, shares = optimized.get("avg_fill_px"), base.get("avg_fill_px"), optimized.get("shares_filled")
    if o_px is None or b_px is None or not shares:
        return None
    return round(sign * (b_px - o_px) * shares, MONEY_DECIMALS)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, MONEY_DECIMALS)


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums per side (buy and sell $ do not add up): shares, cash, cost, and per baseline its $ savings and
    those savings in bps of the baseline's notional on the router's shares (a share-weighted average)."""
    out: dict[str, Any] = {"parents": len(rows)}
    for side in ("buy", "sell"):
        mine = [r for r in rows if r["side"] == side]
        if not mine:
            continue
        names = sorted({name for r in mine for name in r["baselines"]})
        per_baseline = {}
        for name in names:
            usd = 0.0
            notional = 0.0
            counted = 0
            for r in mine:
                base = r["baselines"].get(name)
                if base is None or base["savings_usd"] is None or base["avg_fill_px"] is None:
                    continue
                usd += base["savings_usd"]
                notional += base["avg_fill_px"] * r["shares_filled"]
                counted += 1
            per_baseline[name] = {
                "savings_usd": round(usd, MONEY_DECIMALS),
                "savings_bps": round(usd / notional * 10_000, BPS_DECIMALS) if notional else None,
                "cost_savings_usd": round(
                    sum(
                        r["baselines"][name]["cost_savings_usd"] or 0.0
                        for r in mine
                        if name in r["baselines"]
                    ),
                    MONEY_DECIMALS,
                ),
                "parents_counted": counted,
            }
        out[side] = {
            "parents": len(mine),
            "order_shares": sum(r["size"] for r in mine),
            "shares_filled": sum(r["shares_filled"] for r in mine),
            "total_cash": round(sum(r["total_cash"] or 0.0 for r in mine), MONEY_DECIMALS),
            "total_cost": round(sum(r["total_cost"] or 0.0 for r in mine), MONEY_DECIMALS),
            "vs_baselines": per_baseline,
        }
    return out


if __name__ == "__main__":  # python -m allocator.report.merge: the command is allocator.cli.merge
    import sys

    from allocator.cli.merge import main

    sys.exit(main())
