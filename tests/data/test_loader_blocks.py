"""The block reader: blocks parsed in parallel give the file-order result and the file-order first error,
timestamps parsed by the CSV reader or as text give the same values, and the duplicate count is exact."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.cli.common import flag_for
from allocator.data import loader
from allocator.data.loader import PARSE_BLOCK_SIZE, duplicate_rows, load
from allocator.data.window import FULL_FILE
from allocator.errors import SettingError, UserError
from tests.helpers import NS, at, frame, quote, to_csv_text, write

SMALL_BLOCK = 4096  # a few rows per block: many blocks from a small file


def rows(n: int) -> list[dict]:
    actions = "ACMTF"
    return [
        quote(
            at("13:37:00") + i * NS, (2, 5, 43)[i % 3], 222.8 + 0.01 * (i % 3), 100 + i, action=actions[i % 5]
        )
        for i in range(n)
    ]


def lines_of(n: int = 200, **kwargs: str) -> list[str]:
    return to_csv_text(frame(rows(n)), **kwargs).splitlines()


def with_cell(lines: list[str], line: int, column: str, value: str) -> list[str]:
    cells = lines[line - 1].split(",")
    cells[lines[0].split(",").index(column)] = value
    return [*lines[: line - 1], ",".join(cells), *lines[line:]]


def error_of(path: Path, **kwargs: object) -> str:
    with pytest.raises(UserError) as info:
        load(path, block_size=SMALL_BLOCK, **kwargs)  # type: ignore[arg-type]
    error = info.value
    return error.render(flag_for) if isinstance(error, SettingError) else str(error)


def test_the_first_error_in_the_file_is_the_one_reported(tmp_path):
    lines = lines_of()
    early_ts = with_cell(with_cell(lines, 150, "ts_event", "noon"), 190, "publisher_id", "")
    early_venue = with_cell(with_cell(lines, 150, "publisher_id", ""), 190, "ts_event", "noon")
    path = tmp_path / "two.csv"
    path.write_text("\n".join(early_ts) + "\n")
    assert "two.csv: line 150, column ts_event: 'noon' is not a timestamp" in error_of(path)
    path.write_text("\n".join(early_venue) + "\n")
    assert "two.csv: line 150, column publisher_id is empty" in error_of(path)


def test_a_price_error_in_an_earlier_block_wins_over_a_parse_error_in_a_later_one(tmp_path):
    fixed, decimal = lines_of(prices="fixed"), lines_of(prices="decimal")
    mixed = [*fixed[:151], decimal[151], *with_cell(fixed, 190, "ask_sz_00", "12x")[152:]]
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(mixed) + "\n")
    assert "line 152, column price: price 222.8 is a decimal" in error_of(path)


def test_a_bad_row_before_the_cut_of_a_truncated_gzip_is_reported_first(tmp_path):
    text = "\n".join(with_cell(lines_of(3000), 40, "ts_event", "noon")) + "\n"
    blob = gzip.compress(text.encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(blob[: len(blob) * 2 // 3])
    assert "cut.csv.gz: line 40, column ts_event: 'noon' is not a timestamp" in error_of(path)
    path.write_bytes(gzip.compress("\n".join(lines_of(3000)).encode())[: len(blob) * 2 // 3])
    assert "compressed data is truncated or corrupt" in error_of(path)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_the_result_does_not_depend_on_the_number_of_workers(tmp_path, monkeypatch, workers):
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(lines_of(500)) + "\n")
    whole = load(path, FULL_FILE)
    monkeypatch.setattr(loader, "_parse_workers", lambda: workers)
    small = load(path, FULL_FILE, block_size=SMALL_BLOCK)
    pd.testing.assert_frame_equal(small.frame, whole.frame, check_exact=True, check_categorical=True)
    assert small.rows_total == whole.rows_total == 500


def test_categories_are_the_values_present_sorted(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(lines_of(500)) + "\n")
    data = load(path, FULL_FILE, block_size=SMALL_BLOCK)
    for name in ("action", "side", "symbol"):
        values = sorted(set(data.frame[name].astype(str)))
        assert list(data.frame[name].cat.categories) == values
    assert list(data.frame["action"].cat.categories) == ["A", "C", "F", "M", "T"]


def test_a_line_longer_than_a_parse_piece_but_shorter_than_a_block_is_read(tmp_path):
    lines = lines_of(50)
    header = lines[0] + ",note"
    plain = [header, *(line + "," for line in lines[1:])]
    long = [*plain[:20], lines[20] + "," + "x" * (PARSE_BLOCK_SIZE + 1000), *plain[21:]]
    a, b = tmp_path / "plain.csv", tmp_path / "long.csv"
    a.write_text("\n".join(plain) + "\n")
    b.write_text("\n".join(long) + "\n")
    pd.testing.assert_frame_equal(load(b, FULL_FILE).frame, load(a, FULL_FILE).frame, check_exact=True)


def test_timestamps_read_by_the_reader_or_as_text_are_the_same(tmp_path):
    iso, integer = lines_of(300), lines_of(300, timestamps="int")
    mixed = [iso[0], *iso[1:150], *integer[150:]]  # the first blocks parse natively, the later cannot
    a, b = tmp_path / "iso.csv", tmp_path / "mixed.csv"
    a.write_text("\n".join(iso) + "\n")
    b.write_text("\n".join(mixed) + "\n")
    want = load(a, FULL_FILE, block_size=SMALL_BLOCK).frame
    pd.testing.assert_frame_equal(load(b, FULL_FILE, block_size=SMALL_BLOCK).frame, want, check_exact=True)
    pd.testing.assert_frame_equal(load(b, FULL_FILE).frame, want, check_exact=True)


def test_an_empty_timestamp_in_a_natively_parsed_file_names_its_line(tmp_path):
    path = tmp_path / "empty_ts.csv"
    path.write_text("\n".join(with_cell(lines_of(), 120, "ts_recv", "")) + "\n")
    assert error_of(path).endswith(
        "empty_ts.csv: line 120, column ts_recv: an empty value is not a timestamp (expected ISO-8601 like "
        "2024-08-01T13:36:32.491911683Z or integer nanoseconds)"
    )


def test_a_whole_file_and_its_gzip_read_the_same(tmp_path):
    text = "\n".join(lines_of(400)) + "\n"
    plain = write(tmp_path / "rows.csv", text)
    packed = write(tmp_path / "rows.csv.gz", text)
    pd.testing.assert_frame_equal(
        load(packed, FULL_FILE, block_size=SMALL_BLOCK).frame, load(plain, FULL_FILE).frame, check_exact=True
    )


# ------------------------------------------------------------------------------------------ duplicates


def test_duplicates_by_hand():
    rows_ = [quote(at("13:40:00"), 2, 222.8, 100), quote(at("13:40:01"), 2, 222.8, 100)]
    df = frame([rows_[0], rows_[1], dict(rows_[0]), dict(rows_[1]), dict(rows_[0])])
    df["sequence"] = [1, 2, 1, 2, 1]
    assert duplicate_rows(df) == 3
    df.loc[4, "bid_sz_09"] = 7  # differs from the first row in one column only (not a hashed key)
    assert duplicate_rows(df) == 2
    assert duplicate_rows(df.iloc[:1]) == 0 and duplicate_rows(df.iloc[:0]) == 0


def test_colliding_hashes_are_compared_in_full(monkeypatch):
    df = pd.DataFrame({"ts_event": [1, 2, 1, 3, 2], "price": [1.0, 2.0, 1.0, 3.0, 2.5]})
    monkeypatch.setattr(
        pd.util, "hash_pandas_object", lambda frame, index: pd.Series(np.zeros(len(frame), "u8"))
    )
    assert duplicate_rows(df) == int(df.duplicated().sum()) == 1


columns = st.fixed_dictionaries(
    {
        "ts_event": st.integers(0, 3),
        "publisher_id": st.sampled_from([2, 5]),
        "price": st.sampled_from([1.0, -0.0, 0.0, float("nan"), 2.5]),
        "ask_sz_00": st.integers(0, 2),
        "side": st.sampled_from(["A", "B", None]),
    }
)


@settings(max_examples=200, deadline=None)
@given(st.lists(columns, max_size=40), st.booleans())
def test_the_duplicate_count_is_pandas_exact_count(records, without_keys):
    df = pd.DataFrame(records, columns=["ts_event", "publisher_id", "price", "ask_sz_00", "side"])
    df["side"] = df["side"].astype("category")
    if without_keys:  # none of the hashed key columns: every column is hashed
        df = df.drop(columns=["ts_event", "publisher_id", "price"])
    assert duplicate_rows(df) == int(df.duplicated().sum())
