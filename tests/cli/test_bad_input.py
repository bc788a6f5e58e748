"""The bad-input corpus (tests/cli/corpus/): each file's exact outcome — one clear line, or a counted skip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import order_allocator
from allocator.cli.common import run_main
from tests.cli.corpus.build import write_all

CORPUS = Path(__file__).resolve().parent / "corpus"
FLAGS = ["--order-size", "300", "--lambda-over", "0.5", "--lambda-under", "0.5", "--theta-queue", "0.1"]

# file → the single stderr line (after "order_allocator.py: error: <path>") for files that must fail.
ERRORS = {
    "missing.csv": "data file not found",
    "empty.csv": "is empty: expected a CSV header with ts_event, publisher_id, ask_px_00, ask_sz_00",
    "header_only.csv": "has a header but no data rows",
    "semicolon.csv": "the header is separated by ';'; the loader expects comma-separated values",
    "tab_separated.csv": "the header is separated by tab",
    "missing_ask_size.csv": "missing required column(s) ask_sz_00",
    "non_numeric_price.csv": "line 3, column ask_px_00: value 'abc' is not a number; fix or drop that row",
    "non_numeric_size.csv": "line 4, column ask_sz_00: value '12x' is not a whole number",
    "bad_timestamp.csv": "line 6, column ts_event: '2024-08-01 noonish' is not a timestamp",
    "outside_window.csv": "no rows in the window 2024-08-01T13:36:32.000000000Z – 2024-08-01T13:45:14.999999999Z; "
    "the file covers 2024-08-01T15:00:00.000000000Z – 2024-08-01T15:00:00.000000004Z",
    "non_utf8.csv": "line 2, column symbol: value 'AAPL\\\\xff\\\\xfe': bytes that are not UTF-8 text",
    "truncated.csv.gz": "compressed data is truncated or corrupt",
    "several_symbols.csv": "holds several symbols in the window (AAPL, MSFT); choose one with --symbol",
    "ragged_row.csv": "line 5 has a different number of fields than the header's 74",
    "binary_garbage.csv": "the header line is not UTF-8 text; is this a CSV file?",
    "empty_publisher_id.csv": "line 5, column publisher_id is empty; every row needs its venue — fix or drop "
    "that row",
    "empty_symbol.csv": "line 9, column symbol is empty; every row needs its instrument — fix or drop that row",
    "duplicate_column.csv": "the header repeats column names: 'ask_px_00' (field 15) and 'ask_px_00' "
    "(field 21); each column must be named once (case and spaces aside) — rename or drop the extra ones",
    "case_variant_column.csv": "the header repeats column names: 'ask_px_00' (field 15) and 'ASK_PX_00' "
    "(field 70); each column must be named once",
    "cut_last_line.csv": "line 25 has a different number of fields than the header's 74; the file may be cut",
    "timestamp_out_of_range.csv": "line 20, column ts_event: '2024-13-01T13:36:59Z' is not a timestamp",
    "size_overflow.csv": "line 17, column ask_sz_00: value '99999999999999999999' is outside the 64-bit "
    "integer range; fix or drop that row",
    "huge_field.csv.gz": "line 10 is longer than the 8 MiB the loader reads at a time (one huge field?); fix "
    "or drop that row",
    "fixed_point_then_decimal.csv": "line 14, column price: price 222.83 is a decimal, but the file's first "
    "price (line 2, column price) is Databento fixed-point (1e-9); a file must use one price format "
    "throughout — re-export it",
}
# file → what the report must show for files that are accepted (with their defects counted).
ACCEPTED = {
    "base.csv": {"rows_in_window": 24},
    "extra_columns.csv": {"rows_in_window": 24},
    "zero_and_negative_size.csv": {"untradable_quotes": 2},
    "nan_price.csv": {"untradable_quotes": 1},
    "crossed_quote.csv": {"crossed_quotes": 1},
    "duplicated_rows.csv": {"duplicate_rows": 5, "rows_in_window": 29},
    "rows_out_of_order.csv": {"rows_in_window": 24},
    "mixed_timestamp_formats.csv": {"rows_in_window": 24},
    "fixed_point_prices.csv": {"rows_in_window": 24},
    "two_rows.csv": {"rows_in_window": 2, "ticks": 2},
    "one_venue.csv": {"venues": [2]},
}
# Accepted files whose defect cannot change any decision: their report equals the clean file's.
SAME_AS_BASE = {
    "extra_columns.csv",
    "duplicated_rows.csv",
    "rows_out_of_order.csv",
    "mixed_timestamp_formats.csv",
    "fixed_point_prices.csv",
    "crossed_quote.csv",
}


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = run_main("order_allocator.py", order_allocator.main, [*args, *FLAGS])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_corpus_is_what_the_builder_writes():
    files = write_all()
    assert len(files) >= 20
    for name, data in files.items():
        assert (CORPUS / name).read_bytes() == data, name
    assert set(files) | {"missing.csv"} == set(ERRORS) | set(ACCEPTED)


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_bad_files_fail_with_one_clear_line(capsys, name):
    code, out, err = run_cli(capsys, "--csv", str(CORPUS / name))
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("order_allocator.py: error: ")
    assert ERRORS[name] in lines[0]


def _report(capsys, name: str) -> dict:
    code, out, _err = run_cli(capsys, "--csv", str(CORPUS / name))
    assert code == 0
    return json.loads(out)


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_files_count_their_defects(capsys, name):
    report = _report(capsys, name)
    for key, value in ACCEPTED[name].items():
        assert report["data"][key] == value, (key, report["data"])
    assert report["status"] == "complete"
    if name in SAME_AS_BASE:
        base = _report(capsys, "base.csv")
        keep = ("best_parameters", "optimized", "baselines", "savings_vs_baselines_bps", "router")
        assert {k: report[k] for k in keep} == {k: base[k] for k in keep}


def test_symbol_selection_resolves_a_multi_symbol_file(capsys):
    code, out, _ = run_cli(capsys, "--csv", str(CORPUS / "several_symbols.csv"), "--symbol", "MSFT")
    assert code == 0
    assert json.loads(out)["data"]["rows_in_window"] == 12


def test_no_traceback_from_the_real_scripts():
    for name in ("truncated.csv.gz", "non_utf8.csv", "ragged_row.csv"):
        for script in ("order_allocator.py", "kafka_producer.py"):
            extra = ["--dry-run"] if script == "kafka_producer.py" else []
            result = subprocess.run(
                [sys.executable, str(CORPUS.parents[2] / script), "--csv", str(CORPUS / name), *extra],
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 2
            assert "Traceback" not in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--lambda-over", "0.1,x"],
            "--lambda-over 'x' is not a number (use e.g. --lambda-over 0.2,0.5,1.0)",
        ),
        (["--theta-queue", "-1"], "--theta-queue -1: must be a number ≥ 0"),
        (["--lambda-under", "nan"], "--lambda-under nan: must be a number ≥ 0"),
    ],
)
def test_bad_numeric_flags_name_the_flag(capsys, args, message):
    code = run_main("order_allocator.py", order_allocator.main, ["--csv", str(CORPUS / "base.csv"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert err[0].startswith(f"order_allocator.py: error: {message}")


def test_bad_speed_names_the_flag():
    from allocator.cli.common import speed_value
    from allocator.errors import UserError

    for value, message in (
        ("-1", "--speed -1: must be ≥ 0"),
        ("fast", "--speed 'fast' is not a number"),
    ):
        with pytest.raises(UserError, match=message):
            speed_value(value)
