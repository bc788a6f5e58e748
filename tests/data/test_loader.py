"""Data layer: every format gives the same snapshots; the window and snapshot rules; clear errors."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from allocator.cli.common import flag_for
from allocator.data.loader import load
from allocator.data.window import FULL_FILE, WindowSpec
from allocator.errors import SettingError, UserError
from allocator.snapshots.rule import build_snapshots
from tests.helpers import at, frame, quote, to_csv_text, write

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO.parent / "shared" / "reference" / "l1_day_head5.csv"


def snapshot_arrays(path: Path, **kwargs) -> tuple:
    snaps = build_snapshots(load(path, **kwargs).frame)
    return snaps.ts_event, snaps.publisher_ids, snaps.take_px, snaps.take_sz, snaps.post_px


@pytest.mark.parametrize(
    ("name", "timestamps", "prices", "levels", "columns"),
    [
        ("mbp10_int_ts.csv", "int", "decimal", 10, None),
        ("mbp10_fixed.csv", "iso", "fixed", 10, None),
        ("mbp10.csv.gz", "iso", "decimal", 10, None),
        ("mbp10.csv.zst", "int", "fixed", 10, None),
        ("mbp1.csv", "iso", "decimal", 1, None),
        (
            "minimal_l1.csv",
            "iso",
            "decimal",
            1,
            ["ts_event", "publisher_id", "ask_px_00", "ask_sz_00", "bid_px_00"],
        ),
    ],
)
def test_every_format_gives_the_same_snapshots(
    tmp_path, market_rows, name, timestamps, prices, levels, columns
):
    reference = write(tmp_path / "reference.csv", to_csv_text(market_rows))
    other = write(
        tmp_path / name,
        to_csv_text(market_rows, timestamps=timestamps, prices=prices, levels=levels, columns=columns),
    )
    expected = snapshot_arrays(reference)
    got = snapshot_arrays(other)
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_array_equal(want, have)


def test_dbn_gives_the_same_snapshots(tmp_path, market_rows):
    from tests.helpers import write_dbn

    reference = write(tmp_path / "reference.csv", to_csv_text(market_rows))
    dbn = write_dbn(market_rows, tmp_path / "rows.mbp-1.dbn")
    for want, have in zip(snapshot_arrays(reference), snapshot_arrays(dbn), strict=True):
        np.testing.assert_array_equal(want, have)


def test_quoted_header_and_fields_are_read(tmp_path, market_rows):
    text = to_csv_text(market_rows)
    header, rest = text.split("\n", 1)
    quoted = ",".join(f'"{name}"' for name in header.split(",")) + "\n" + rest.replace(",AAPL", ',"AAPL"')
    plain = snapshot_arrays(write(tmp_path / "plain.csv", text))
    for want, have in zip(plain, snapshot_arrays(write(tmp_path / "quoted.csv", quoted)), strict=True):
        np.testing.assert_array_equal(want, have)


def test_window_edges_at_nanosecond_precision(tmp_path):
    stamps = [
        "13:36:31.999999999",
        "13:36:32.000000000",
        "13:45:14.828351989",
        "13:45:14.999999999",
        "13:45:15.000000000",
    ]
    path = write(tmp_path / "edges.csv", to_csv_text(frame([quote(at(s), 2, 222.8, 100) for s in stamps])))
    kept = load(path).frame["ts_event"].tolist()
    assert kept == [at(s) for s in stamps[1:4]]
    iso = load(path, WindowSpec("2024-08-01T13:36:31.999999999Z", "2024-08-01T13:45:14.828351989Z")).frame
    assert iso["ts_event"].tolist() == [at(s) for s in stamps[:3]]
    tenth = load(path, WindowSpec("13:36:32", "13:45:14.8")).frame
    assert tenth["ts_event"].tolist() == [at(s) for s in stamps[1:3]]
    assert len(load(path, FULL_FILE).frame) == 5


def test_window_end_must_follow_start(tmp_path):
    path = write(tmp_path / "a.csv", to_csv_text(frame([quote(at("13:40:00"), 2, 1.0, 1)])))
    # The library names the settings; the CLI renders them as the flags the user typed.
    with pytest.raises(SettingError, match=r"^end 13:00:00 is not after start 13:40:00") as bad_order:
        load(path, WindowSpec("13:40:00", "13:00:00"))
    assert bad_order.value.render(flag_for).startswith("--end 13:00:00 is not after --start 13:40:00")
    with pytest.raises(SettingError, match=r"^start 'noon' is not a time") as not_a_time:
        load(path, WindowSpec("noon", "13:00:00"))
    assert not_a_time.value.render(flag_for).startswith("--start 'noon' is not a time")


def test_a_path_with_braces_reaches_the_message_as_written(tmp_path):
    missing = tmp_path / "{odd}.csv"
    with pytest.raises(SettingError) as error:
        load(missing)
    assert error.value.render(flag_for) == (
        f"data file not found: {missing} (pass --csv PATH to a Databento MBP-1/MBP-10 or L1 CSV)"
    )


def test_symbol_selection(tmp_path):
    rows = [quote(at("13:40:00"), 2, 1.0, 1), quote(at("13:40:01"), 2, 2.0, 1)]
    rows[1]["symbol"] = "MSFT"
    path = write(tmp_path / "two.csv", to_csv_text(frame(rows)))
    with pytest.raises(SettingError, match=r"several symbols in the window \(AAPL, MSFT\)") as several:
        load(path)
    assert several.value.render(flag_for).endswith("; choose one with --symbol")
    assert load(path, symbol="MSFT").frame["ask_px_00"].tolist() == [2.0]


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared/reference is not beside this checkout")
def test_reads_the_real_trial_rows():
    data = load(REFERENCE)
    assert data.rows_total == 5 and data.levels == 10 and data.symbols == ["AAPL"]
    snaps = build_snapshots(data.frame)
    assert snaps.ticks == 2  # four rows share the first ts_event
    assert snaps.take_px[0, 0] == 222.83 and snaps.take_sz[0, 0] == 36  # first row of the tick
    assert data.frame["ts_event"].iloc[0] == at("13:36:32.491911683")


# ----------------------------------------------------------------------------------------------- errors


def test_errors_name_what_to_fix(tmp_path):
    good = to_csv_text(frame([quote(at("13:40:00"), 2, 222.8, 100)] * 3))
    cases = {
        "missing.csv": (None, "data file not found"),
        "empty.csv": ("", "is empty"),
        "header_only.csv": (good.splitlines()[0] + "\n", "has a header but no data rows"),
        "semicolon.csv": (good.replace(",", ";"), "separated by ';'"),
        "no_size.csv": (
            to_csv_text(
                frame([quote(at("13:40:00"), 2, 1.0, 1)]), columns=["ts_event", "publisher_id", "ask_px_00"]
            ),
            "missing required column(s) ask_sz_00",
        ),
        "bad_ts.csv": (
            good.replace("2024-08-01T13:40:00.000000000Z", "yesterday", 1),
            "line 2, column ts_event: 'yesterday' is not a timestamp",
        ),
        "bad_price.csv": (good.replace(",222.8,", ",abc,", 1), "line 2, column price: value 'abc'"),
        "outside.csv": (
            to_csv_text(frame([quote(at("09:30:00"), 2, 1.0, 1)])),
            "no rows in the window 2024-08-01T13:36:32.000000000Z – 2024-08-01T13:45:14.999999999Z; "
            "the file covers 2024-08-01T09:30:00.000000000Z",
        ),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(UserError) as info:
            load(path)
        assert message in str(info.value), (name, str(info.value))
        assert "\n" not in str(info.value)


def test_truncated_gzip(tmp_path):
    blob = gzip.compress(
        to_csv_text(frame([quote(at("13:40:00") + i, 2, 222.8, 100) for i in range(3000)])).encode()
    )
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(UserError, match="compressed data is truncated or corrupt"):
        load(path)


def test_dbn_without_databento_names_the_package(tmp_path, monkeypatch):
    path = tmp_path / "x.dbn.zst"
    path.write_bytes(b"DBN")
    monkeypatch.setitem(sys.modules, "databento", None)
    with pytest.raises(UserError, match="needs the 'databento' package"):
        load(path)


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "kafka_producer.py"), "--dry-run", "--csv", str(tmp_path / "nope.csv")],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"kafka_producer.py: error: data file not found: {tmp_path / 'nope.csv'} "
        "(pass --csv PATH to a Databento MBP-1/MBP-10 or L1 CSV)"
    ]


def test_dry_run_describes_the_window(tmp_path, market_rows):
    import json

    rows = [*market_rows.to_dict("records"), quote(at("13:50:00"), 2, 222.9, 100)]
    path = write(tmp_path / "d.csv", to_csv_text(frame(rows)))
    result = subprocess.run(
        [sys.executable, str(REPO / "kafka_producer.py"), "--dry-run", "--csv", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(result.stdout)
    assert info["rows"] == 7 and info["rows_in_window"] == 6
    assert info["venues"] == [2, 5, 43] and info["ticks"] == 5 and info["skipped_untradable"] == 1
    assert info["first_ts_event"] == "2024-08-01T13:36:33.000000000Z"
    assert info["last_ts_event"] == "2024-08-01T13:36:37.000000000Z"


def test_an_unbounded_window_is_described_in_words():
    from allocator.data.window import WindowSpec

    first = at("13:36:32")
    assert WindowSpec(start="all", end="all").resolve(first).in_words() == "the whole file"
    assert WindowSpec(start="13:36:00", end="all").resolve(first).in_words() == (
        "2024-08-01T13:36:00.000000000Z – the end of the file"
    )
    assert (
        WindowSpec(start="all", end="13:37:00")
        .resolve(first)
        .in_words()
        .startswith("the start of the file – ")
    )
