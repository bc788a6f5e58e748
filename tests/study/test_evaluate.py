"""One study order: the same numbers as the single-order report, and a path cut without re-reading it."""

from __future__ import annotations

from pathlib import Path

import pytest

from allocator.config import PenaltyGrid, RunConfig
from allocator.data.loader import load
from allocator.data.venues import load_fee_table
from allocator.data.window import FULL_FILE, NS_PER_SECOND, WindowSpec
from allocator.pipeline import run
from allocator.study.evaluate import evaluate_order, router_label

REPO = Path(__file__).resolve().parents[2]
DATASET = REPO / "data" / "l1_day.csv.gz"
ORDER = WindowSpec("13:38:00", "13:39:59")  # a two-minute order, inside the shipped file's 13:35–13:46
CALIBRATION_NS = 60 * NS_PER_SECOND
CONFIG = RunConfig(order_size=2000, mode="cont-kukanov", grid=PenaltyGrid((0.2,), (0.2, 5.0), (0.1,)), jobs=1)


@pytest.fixture(scope="module")
def whole_path():
    return load(DATASET, FULL_FILE)


@pytest.mark.slow
def test_a_cut_path_gives_the_report_of_loading_that_window(whole_path):
    fees = load_fee_table()
    direct = load(DATASET, ORDER, calibration_ns=CALIBRATION_NS)
    cut = whole_path.sub_window(direct.window, CALIBRATION_NS)
    assert len(cut.frame) == len(direct.frame) and cut.history_rows == direct.history_rows
    assert run(cut, fees, CONFIG).report == run(direct, fees, CONFIG).report


@pytest.mark.slow
def test_outcomes_are_the_reports_numbers(whole_path):
    fees = load_fee_table()
    data = whole_path.sub_window(ORDER.resolve(int(whole_path.frame["ts_event"].iloc[0])), CALIBRATION_NS)
    outcomes = {o.strategy: o for o in evaluate_order(data, fees, CONFIG)}
    report = run(data, fees, CONFIG).report
    strategies = report["execution"]["strategies"]
    assert set(outcomes) == {"router@0.2,0.2,0.1", "router@0.2,5,0.1", "best_ask", "twap", "vwap"}
    best = report["best_parameters"]
    best_label = router_label(next(p for p in CONFIG.grid.points() if p.report() == best))
    for name, profile in strategies.items():
        outcome = outcomes[best_label if name == "optimized" else name]
        assert outcome.shortfall_bps == profile["implementation_shortfall_bps"], name
        assert outcome.fees == pytest.approx(profile["fees_paid"], abs=1e-6)
        assert outcome.maker_share == pytest.approx(
            profile["maker_shares"] / report["fills"]["order_size"], abs=0.01
        )
        assert 0 < outcome.completion_seconds <= 125  # two minutes plus the clean-up's round trip
