"""The faithful mode's report on the shipped data, pinned byte for byte.

tests/golden/faithful_{buy,sell}.json were written by `order_allocator.py --csv data/l1_day.csv.gz
[--side sell]` at commit bff2859, before the realistic mode gained its calibration history, exact solver
and common arrival, with the `run` and `status` sections (timings, paths) removed. Nothing in the realistic
mode may move a byte of the faithful report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from allocator.data import load
from allocator.pipeline import RunConfig, run
from allocator.venues import load_fee_table

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("side", ["buy", "sell"])
def test_faithful_report_is_byte_identical_to_the_pinned_one(side):
    data = load(REPO / "data" / "l1_day.csv.gz", levels=1)
    report = run(data, load_fee_table(), RunConfig(side=side, jobs=1)).report
    pinned = (REPO / "tests" / "golden" / f"faithful_{side}.json").read_text()
    assert json.dumps(report, indent=2, allow_nan=False) + "\n" == pinned
