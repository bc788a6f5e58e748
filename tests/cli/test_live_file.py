"""`--csv FILE --live`: the file's rows go through the streaming router in batches, the --live lines go to
stderr, and the report says the live router did exactly what the offline one did (exit 0), in both modes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data" / "l1_day.csv.gz"


@pytest.mark.parametrize(
    ("mode", "flags", "line"),
    [
        ("faithful", ["--order-size", "3000"], " split: "),
        (
            "cont-kukanov",
            ["--order-size", "20000", "--horizon", "5", "--lambda-under", "0.01", "--jitter-ms", "1"],
            " decision 2: ",
        ),
    ],
)
def test_a_file_routed_live_equals_the_offline_router(mode: str, flags: list[str], line: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "order_allocator.py",
            "--csv",
            str(DATA),
            "--start",
            "13:36:32",
            "--end",
            "13:37:00",
            "--mode",
            mode,
            "--live",
            *flags,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    live = json.loads(done.stdout)["run"]["live"]
    assert live["equals_offline"] is True and live["mismatch"] is None
    assert live["decisions"] >= 1 and live["shares_filled"] == live["offline_shares_filled"]
    assert any(line in text for text in done.stderr.splitlines() if text.startswith("live "))
    if mode == "cont-kukanov":
        simulator = live["simulator"]
        assert simulator["execute_ms"]["count"] == simulator["decide_ms"]["count"] >= 2  # each once
