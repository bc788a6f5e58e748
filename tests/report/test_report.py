"""The JSON report: the savings formula and the shape users read."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from allocator.report.build import savings_bps
from tests.helpers import NS, at

REPO = Path(__file__).resolve().parents[2]
nan = math.nan


def test_savings_formula():
    assert savings_bps(100.0, 99.0) == 100.0
    assert savings_bps(100.0, 101.0) == -100.0
    assert savings_bps(None, 1.0) is None


def test_report_json_shape_and_types(tmp_path):
    from tests.helpers import frame, quote, to_csv_text, write

    rows = [
        quote(at("13:36:40") + i * NS, 2 + (i % 3) * 3, 222.80 + (i % 4) / 100, 800 + 10 * i)
        for i in range(40)
    ]
    path = write(tmp_path / "m.csv", to_csv_text(frame(rows)))
    fills = tmp_path / "fills.csv"
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "order_allocator.py"),
            "--csv",
            str(path),
            "--order-size",
            "1000",
            "--fills",
            str(fills),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(out.stdout)
    assert set(report) >= {"best_parameters", "optimized", "baselines", "savings_vs_baselines_bps"}
    assert set(report["best_parameters"]) == {"lambda_over", "lambda_under", "theta_queue"}
    strategy_keys = {"total_cost", "total_cash", "shares_filled", "avg_fill_px"}
    assert set(report["optimized"]) == strategy_keys
    assert set(report["baselines"]) == {"best_ask", "twap", "vwap"}
    for summary in [report["optimized"], *report["baselines"].values()]:
        assert set(summary) == strategy_keys
        assert isinstance(summary["shares_filled"], int)
        assert all(isinstance(summary[k], float) for k in ("total_cost", "total_cash", "avg_fill_px"))
    assert set(report["savings_vs_baselines_bps"]) == {"best_ask", "twap", "vwap"}
    assert report["optimized"]["shares_filled"] == 1000
    assert report["grid"]["points"] == 125 and report["grid"]["distinct_outcomes"] == 1
    assert report["optimized"]["avg_fill_px"] == pytest.approx(
        report["optimized"]["total_cash"] / report["optimized"]["shares_filled"]
    )
    for name, bps in report["savings_vs_baselines_bps"].items():
        base = report["baselines"][name]["avg_fill_px"]
        assert bps == pytest.approx((base - report["optimized"]["avg_fill_px"]) / base * 1e4, abs=1e-3)
    ledger = fills.read_text().splitlines()
    assert ledger[0].startswith("strategy,tick,ts_event,publisher_id,venue")
