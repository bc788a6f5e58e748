"""Both modes' outputs on the shipped data, pinned byte for byte: the JSON report, the fills CSV, the decision log.

The faithful reports (tests/pipeline/golden/faithful_{buy,sell}.json) were written at commit bff2859,
before the realistic mode gained its calibration history, exact solver and common arrival; nothing in the
realistic mode may move a byte of them. Every other file here was written at commit c6c91d1, before the
layout moved into one package per stage (issue 13), by

    order_allocator.py --csv data/l1_day.csv.gz --jobs 1 [--mode cont-kukanov] [--side sell]
        --fills FILE.csv [--decisions FILE.jsonl]

with the report's `run` and `status` sections (timings, paths) removed. A refactor that moves one byte
fails here; a deliberate change of a number regenerates the files in the same commit and says why.
The decision logs are 2–2.5 MB, so only their SHA-256 is kept.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "pipeline" / "golden"


def _run_cli(tmp_path: Path, mode: str, side: str) -> tuple[str, Path, Path]:
    fills, decisions = tmp_path / "fills.csv", tmp_path / "decisions.jsonl"
    argv = [sys.executable, str(REPO / "order_allocator.py"), "--csv", str(REPO / "data" / "l1_day.csv.gz")]
    argv += ["--jobs", "1", "--mode", mode, "--side", side, "--fills", str(fills)]
    if mode == "cont-kukanov":
        argv += ["--decisions", str(decisions)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report.pop("status") == "complete"
    report.pop("run")
    return json.dumps(report, indent=2, allow_nan=False) + "\n", fills, decisions


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["faithful", "cont-kukanov"])
@pytest.mark.parametrize("side", ["buy", "sell"])
def test_outputs_are_byte_identical_to_the_pinned_ones(tmp_path: Path, mode: str, side: str) -> None:
    report, fills, decisions = _run_cli(tmp_path, mode, side)
    assert report == (GOLDEN / f"{mode}_{side}.json").read_text()
    assert fills.read_bytes() == (GOLDEN / f"{mode}_{side}.fills.csv").read_bytes()
    if mode == "cont-kukanov":
        digest = hashlib.sha256(decisions.read_bytes()).hexdigest()
        assert digest == (GOLDEN / f"{mode}_{side}.decisions.sha256").read_text().strip()
