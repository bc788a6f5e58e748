"""The Python API gives what the command line gives, and the example script runs as written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import allocator
from allocator.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "l1_day.csv.gz"


def cli_report(*flags: str) -> dict:
    out = subprocess.run(
        [sys.executable, "order_allocator.py", "--csv", str(DATA), "--jobs", "1", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def same_but_run(api: dict, cli: dict) -> None:
    """Equal in every section but `run` (timings, the source's name), as any two runs of the same data."""
    api, cli = json.loads(json.dumps(api)), dict(cli)
    api_run, cli_run = api.pop("run"), cli.pop("run")
    assert api == cli
    assert api_run["source"] == "python:" + cli_run["source"].removeprefix("csv:")
    assert api_run["rows_in_file"] == cli_run["rows_in_file"]


def test_run_reports_exactly_what_the_command_prints() -> None:
    same_but_run(allocator.run(allocator.load(DATA), jobs=1).report, cli_report())


@pytest.mark.slow
def test_realistic_sell_on_a_small_grid_matches_the_command() -> None:
    flags = ["--mode", "cont-kukanov", "--side", "sell", "--lambda-over", "0.2", "--lambda-under", "0.01,5"]
    flags += ["--theta-queue", "0", "--horizon", "10"]
    run = allocator.run(
        DATA,
        mode="cont-kukanov",
        side="sell",
        lambda_over=[0.2],
        lambda_under=[0.01, 5.0],
        theta_queue=[0.0],
        horizon_seconds=10,
        jobs=1,
    )
    same_but_run(run.report, cli_report(*flags))
    fills = run.fills()
    router = fills[fills["strategy"] == "optimized"]
    assert int(router["shares"].sum()) == run.report["optimized"]["shares_filled"]


def test_bad_settings_raise_the_commands_one_line_error() -> None:
    with pytest.raises(UserError, match="not a multiple of"):
        allocator.run(DATA, order_size=250)
    with pytest.raises(UserError, match="mode"):
        allocator.load(DATA, mode="best")


def test_import_allocator_stays_light() -> None:
    code = "import sys, allocator; print('pandas' in sys.modules, 'allocator.pipeline' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_the_example_script_runs_as_written() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "examples.api_tour"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "116,623 rows in 2024-08-01T13:36:32.000000000Z – 2024-08-01T13:45:14.999999999Z"
    assert lines[1] == "faithful router vs best_ask (bps): -0.4345"
    assert lines[2].startswith("cont-kukanov sell: router shares by liquidity {")
    assert lines[3].startswith("study: router − best_ask ") and lines[3].endswith(" bps over 8 orders")
