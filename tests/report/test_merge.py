"""Merging per-parent reports: sums from the reports' own numbers, and never a silent partial summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from allocator.data.parents import read_parents
from allocator.errors import EXIT_INCOMPLETE
from allocator.report.merge import merge, write_report

REPO = Path(__file__).resolve().parents[2]


def report(side: str, size: int, px: float, baseline_px: float, filled: int | None = None) -> dict:
    """A minimal report: the router at `px`, one baseline (best_ask) at `baseline_px`."""
    filled = size if filled is None else filled
    sign = 1 if side == "buy" else -1
    savings = round((baseline_px - px) / baseline_px * 10_000 * sign, 4)
    return {
        "optimized": {
            "total_cost": sign * px * filled,
            "total_cash": px * filled,
            "shares_filled": filled,
            "avg_fill_px": px,
        },
        "baselines": {
            "best_ask": {
                "total_cost": sign * baseline_px * size,
                "total_cash": baseline_px * size,
                "shares_filled": size,
                "avg_fill_px": baseline_px,
            }
        },
        "savings_vs_baselines_bps": {"best_ask": savings},
        "fills": {
            "order_size": size,
            "equal_fills": filled == size,
            "unfilled_shares": {"optimized": size - filled},
        },
        "router": {"mode": "faithful"},
        "status": "complete",
        "run": {"run_id": "r", "partition": 0},
    }


@pytest.fixture
def parents(tmp_path: Path) -> Path:
    path = tmp_path / "parents.csv"
    path.write_text("symbol,side,size\nAAPL,buy,100\nMSFT,buy,200\nNVDA,sell,100\n")
    return path


def test_totals_per_side_from_the_reports_numbers(tmp_path, parents):
    out = tmp_path / "reports"
    write_report(out, "AAPL-buy-100.json", report("buy", 100, 10.0, 10.01))
    write_report(out, "MSFT-buy-200.json", report("buy", 200, 20.02, 20.0))
    write_report(out, "NVDA-sell-100.json", report("sell", 100, 5.01, 5.0))
    summary, missing = merge(out, read_parents(parents))
    assert missing == [] and summary["complete"]
    assert [r["baselines"]["best_ask"]["savings_usd"] for r in summary["parents"]] == [1.0, -4.0, 1.0]
    buy = summary["totals"]["buy"]
    assert buy["shares_filled"] == 300 and buy["total_cash"] == pytest.approx(1000 + 4004)
    # -3 $ on a baseline notional of 10.01·100 + 20·200 = 5001 $
    assert buy["vs_baselines"]["best_ask"]["savings_usd"] == -3.0
    assert buy["vs_baselines"]["best_ask"]["savings_bps"] == round(-3.0 / 5001 * 10_000, 4)
    assert summary["totals"]["sell"]["vs_baselines"]["best_ask"]["savings_bps"] == 20.0  # 1 $ on 500 $
    assert not list(out.glob(".*"))  # no temporary file left behind


def test_a_missing_report_is_named_and_the_command_exits_4(tmp_path, parents):
    out = tmp_path / "reports"
    write_report(out, "AAPL-buy-100.json", report("buy", 100, 10.0, 10.01))
    write_report(out, "MSFT-buy-200.json", report("buy", 999, 20.0, 20.0))  # another order's report
    (out / "stray.json").write_text("{}")
    summary, missing = merge(out, read_parents(parents))
    assert [(m["id"], m["problem"]) for m in missing] == [
        ("MSFT-buy-200", "its order_size 999 is not the parent's size 200"),
        ("NVDA-sell-100", "no report"),
    ]
    assert summary["unexpected_reports"] == ["stray.json"] and not summary["complete"]
    done = subprocess.run(
        [sys.executable, "-m", "allocator.report.merge", str(out), "--parents", str(parents)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == EXIT_INCOMPLETE
    assert json.loads(done.stdout)["missing"][1]["id"] == "NVDA-sell-100"
    assert "parent NVDA-sell-100 (NVDA): no report" in done.stderr
    assert "2 of 3 parents have no usable report" in done.stderr


def test_a_missing_directory_is_one_line(tmp_path, parents):
    done = subprocess.run(
        [sys.executable, "-m", "allocator.report.merge", str(tmp_path / "none"), "--parents", str(parents)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "reports directory not found" in done.stderr
