"""`python -m allocator.study`: a resumed study recomputes nothing and prints the same, the orders table holds
what the JSON says, and bad study inputs are one line naming the flag or file."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from allocator.cli.study import run
from allocator.study.stats import paired

REPO = Path(__file__).resolve().parents[2]


def _study(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    code = run([*args, "--scheduler", "synchronous"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_a_rerun_on_the_same_out_resumes_and_prints_the_same(tmp_path: Path, tiny, capsys):
    out_dir = tmp_path / "study"
    code, first, _ = _study(capsys, [*tiny, "--out", str(out_dir)])
    assert code == 0
    tasks = sorted((out_dir / "tasks").glob("*.parquet"))
    assert len(tasks) == 4  # 2 paths × 2 blocks of one arrival
    stamps = {t: t.stat().st_mtime_ns for t in tasks}
    code, again, _ = _study(capsys, [*tiny, "--out", str(out_dir)])
    assert code == 0 and again == first
    assert {t: t.stat().st_mtime_ns for t in tasks} == stamps  # no task was recomputed
    tasks[1].unlink()  # as if interrupted before that task finished
    code, resumed, _ = _study(capsys, [*tiny, "--out", str(out_dir)])
    assert code == 0 and resumed == first and tasks[1].exists()
    assert (out_dir / "result.json").read_text() == first
    assert (out_dir / "paired.png").stat().st_size > 10_000

    answer = json.loads(first)
    table = pd.read_parquet(out_dir / "orders.parquet")
    assert set(table["strategy"]) == {
        "router",
        "router@0,0.01,0.5",
        "router@0,5,0.5",
        "best_ask",
        "twap",
        "vwap",
    }
    assert len(table) == 8 * 6 and answer["orders"] == 8 and answer["paths"] == 2
    test = table[table["is_test"]]
    for baseline in ("best_ask", "twap", "vwap"):
        router = test[test["strategy"] == "router"].reset_index(drop=True)
        other = test[test["strategy"] == baseline].reset_index(drop=True)
        assert (router[["path", "arrival_ts", "side"]] == other[["path", "arrival_ts", "side"]]).all().all()
        again = paired(router["shortfall_bps"], other["shortfall_bps"], router["path"].tolist(), 500, seed=0)
        assert answer["paired"][baseline]["mean_bps"] == again.mean_bps
        assert answer["paired"][baseline]["ci95"] == list(again.ci95)


@pytest.mark.slow
def test_an_out_dir_of_another_study_is_refused(tmp_path: Path, tiny, capsys):
    out_dir = tmp_path / "study"
    assert _study(capsys, [*tiny, "--out", str(out_dir), "--sides", "buy"])[0] == 0
    code, out, err = _study(capsys, [*tiny, "--out", str(out_dir), "--order-size", "300"])
    assert code == 2 and out == ""
    assert err.strip().splitlines()[-1] == (
        f"python -m allocator.study: error: --out {out_dir} holds a study with other settings (they differ in "
        "fingerprint, order_size, orders); give another --out or delete it to start afresh"
    )


def _error(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    code, out, err = _study(capsys, args)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and "Traceback" not in err, err
    return lines[-1].removeprefix("python -m allocator.study: error: ")


def test_bad_study_inputs_are_one_line_naming_the_flag_or_file(tmp_path: Path, capsys):
    pattern = str(tmp_path / "*.csv.gz")
    assert (
        _error(capsys, [pattern])
        == f"{pattern}: no file matches this pattern; check the path and the quoting"
    )
    assert _error(capsys, []) == "no market paths: give data files (globs allowed), --synthetic N, or both"
    assert _error(capsys, ["--synthetic", "1"]).startswith("out-of-sample selection needs at least 2 paths")
    # a 2-minute path cannot hold 120 s of history and a 120 s order
    assert _error(capsys, ["--synthetic", "2", "--path-minutes", "2"]) == (
        "synthetic-1: the path 2024-08-01T13:35:00.000000000Z – 2024-08-01T13:37:00.000000000Z is too short for an "
        "order: it needs 120 s of --calibration before the arrival and 120 s of --order-horizon after it"
    )
    assert _error(capsys, ["--synthetic", "2", "--order-horizon", "-5"]).startswith(
        "--order-horizon -5: must be more than 0"
    )
    assert (
        _error(capsys, ["--synthetic", "2", "--sides", "buy,hold"])
        == "--sides 'hold' is not one of buy, sell"
    )
    assert _error(capsys, ["--synthetic", "2", "--warmup", "200"]).startswith(
        "--warmup 200 is longer than --calibration"
    )
    assert _error(capsys, ["--synthetic", "2", "--resamples", "10"]).startswith(
        "--resamples 10: must be ≥ 100"
    )
    assert run(["--synthetic", "2", "--workers", "0"]) == 2
    assert (
        capsys.readouterr().err
        == "python -m allocator.study: error: --workers 0: must be ≥ 1 (worker processes, e.g. --workers 2)\n"
    )


@pytest.mark.slow
def test_a_file_without_room_for_history_is_one_line_naming_it(tmp_path: Path, capsys):
    # The shipped file spans 11 minutes: 600 s of calibration and a 120 s order do not fit.
    data = str(REPO / "data" / "l1_day.csv.gz")
    copy = tmp_path / "copy.csv.gz"
    copy.write_bytes(Path(data).read_bytes())
    message = _error(capsys, [data, str(copy), "--calibration", "600"])
    assert message.startswith(f"{data}: the path 2024-08-01T13:35:")
    assert message.endswith(
        "it needs 600 s of --calibration before the arrival and 120 s of --order-horizon after it"
    )
