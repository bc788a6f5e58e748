"""The loader's rules for hostile files, checked across block boundaries (small `block_size`), so that a
rule holding only inside one block — the first — would fail here."""

from __future__ import annotations

from pathlib import Path

import pytest

from allocator.cli.common import flag_for
from allocator.data.loader import load
from allocator.errors import SettingError, UserError
from tests.helpers import NS, at, frame, quote, to_csv_text

SMALL_BLOCK = 4096  # a few rows per block: many blocks from a small file


def rows(n: int) -> list[dict]:
    return [quote(at("13:37:00") + i * NS, (2, 5)[i % 2], 222.8 + 0.01 * (i % 3), 100 + i) for i in range(n)]


def lines_of(prices: str, n: int = 200) -> list[str]:
    return to_csv_text(frame(rows(n)), prices=prices).splitlines()


def error_of(path: Path, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        load(path, block_size=SMALL_BLOCK, **kwargs)
    text = info.value.render(flag_for) if isinstance(info.value, SettingError) else str(info.value)
    assert "\n" not in text
    return text


def test_fixed_point_then_decimal_fails_at_the_line_where_the_format_changes(tmp_path):
    fixed, decimal = lines_of("fixed"), lines_of("decimal")
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join([fixed[0], *fixed[1:151], *decimal[151:]]) + "\n")  # line 152 is decimal
    assert error_of(path).endswith(
        "mixed.csv: line 152, column price: price 222.8 is a decimal, but the file's first price "
        "(line 2, column price) is Databento fixed-point (1e-9); a file must use one price format "
        "throughout — re-export it"
    )


def test_decimal_then_fixed_point_fails_at_the_line_where_the_format_changes(tmp_path):
    fixed, decimal = lines_of("fixed"), lines_of("decimal")
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join([decimal[0], *decimal[1:151], *fixed[151:]]) + "\n")
    assert (
        "line 152, column price: price 222800000000 looks like Databento fixed-point (1e-9), but the "
        "file's first price (line 2, column price) is a decimal" in error_of(path)
    )


def test_one_column_in_another_format_is_found_too(tmp_path):
    fixed = lines_of("fixed")
    header = fixed[0].split(",")
    cells = fixed[120].split(",")  # line 121
    cells[header.index("ask_px_03")] = "222.84"
    fixed[120] = ",".join(cells)
    path = tmp_path / "one_cell.csv"
    path.write_text("\n".join(fixed) + "\n")
    assert "line 121, column ask_px_03: price 222.84 is a decimal" in error_of(path)


def test_a_uniform_file_reads_the_same_in_any_block_size(tmp_path):
    for prices in ("fixed", "decimal"):
        path = tmp_path / f"{prices}.csv"
        path.write_text("\n".join(lines_of(prices)) + "\n")
        small = load(path, block_size=SMALL_BLOCK)
        whole = load(path)
        assert small.price_format == whole.price_format == prices
        assert small.frame.equals(whole.frame)


def test_a_given_format_that_the_file_contradicts_names_the_flag(tmp_path):
    path = tmp_path / "decimal.csv"
    path.write_text("\n".join(lines_of("decimal")) + "\n")
    assert error_of(path, price_format="fixed").endswith(
        "line 2, column price: price 222.8 is not a whole number, so not Databento fixed-point (1e-9), "
        "yet --price-format fixed was given; pass --price-format decimal or fix the file"
    )
    path.write_text("\n".join(lines_of("fixed")) + "\n")
    assert error_of(path, price_format="decimal").endswith(
        "line 2, column price: price 222800000000 looks like Databento fixed-point (1e-9), yet "
        "--price-format decimal was given; pass --price-format fixed or fix the file"
    )


@pytest.mark.parametrize(
    ("column", "needs"),
    [
        ("publisher_id", "its venue"),
        ("sequence", "its venue's message sequence"),
        ("symbol", "its instrument"),
    ],
)
def test_an_empty_identifier_deep_in_the_file_names_line_and_column(tmp_path, column, needs):
    lines = lines_of("decimal")
    header = lines[0].split(",")
    cells = lines[170].split(",")  # line 171, many blocks in
    cells[header.index(column)] = ""
    lines[170] = ",".join(cells)
    path = tmp_path / "empty.csv"
    path.write_text("\n".join(lines) + "\n")
    assert error_of(path).endswith(
        f"empty.csv: line 171, column {column} is empty; every row needs {needs} — fix or drop that row"
    )


def test_spaces_around_header_names_are_the_names_themselves(tmp_path):
    lines = lines_of("decimal", 20)
    clean, spaced = tmp_path / "clean.csv", tmp_path / "spaced.csv"
    clean.write_text("\n".join(lines) + "\n")
    spaced.write_text("\n".join([", ".join(lines[0].split(",")), *lines[1:]]) + "\n")
    assert load(spaced).frame.equals(load(clean).frame)


def test_a_name_repeated_with_other_spaces_is_refused(tmp_path):
    lines = lines_of("decimal", 20)
    lines[0] = lines[0].replace(",symbol", ", publisher_id ")
    path = tmp_path / "repeat.csv"
    path.write_text("\n".join(lines) + "\n")
    assert "the header repeats column names: 'publisher_id' (field 4) and 'publisher_id' (field 74)" in (
        error_of(path)
    )


def with_cell(lines: list[str], line: int, column: str, value: str) -> list[str]:
    cells = lines[line - 1].split(",")
    cells[lines[0].split(",").index(column)] = value
    return [*lines[: line - 1], ",".join(cells), *lines[line:]]


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("ts_event", "2024-08-01 noonish", "'2024-08-01 noonish' is not a timestamp"),
        ("ts_event", "2024-13-01T13:37:00.000000000Z", "'2024-13-01T13:37:00.000000000Z' is not a timestamp"),
        ("ts_recv", "2024-08-01T25:00:00", "'2024-08-01T25:00:00' is not a timestamp"),
        ("ts_event", "99999999999999999999", "'99999999999999999999' is not a timestamp"),
        (
            "ask_sz_00",
            "99999999999999999999",
            "value '99999999999999999999' is outside the 64-bit integer range",
        ),
        ("bid_sz_00", "-99999999999999999999", "value '-99999999999999999999' is outside the 64-bit integer"),
        ("ask_sz_00", "1_000", "value '1_000' is not a whole number"),
    ],
)
def test_a_bad_value_deep_in_the_file_names_its_line(tmp_path, column, value, message):
    path = tmp_path / "deep.csv"
    path.write_text("\n".join(with_cell(lines_of("decimal"), 183, column, value)) + "\n")
    assert f"deep.csv: line 183, column {column}: {message}" in error_of(path)


def test_a_file_cut_mid_row_names_its_last_line(tmp_path):
    text = "\n".join(lines_of("decimal")) + "\n"
    path = tmp_path / "cut.csv"
    path.write_text(text[: len(text) - 300])  # line 201 loses its tail and its newline
    assert "cut.csv: line 201 has a different number of fields than the header's 74" in error_of(path)


def test_a_field_longer_than_a_block_names_its_line(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text("\n".join(with_cell(lines_of("decimal"), 150, "symbol", "A" * 3 * SMALL_BLOCK)) + "\n")
    assert error_of(path).endswith(
        "huge.csv: line 150 is longer than the 4,096 bytes the loader reads at a time (one huge field?); "
        "fix or drop that row"
    )


def test_a_header_longer_than_any_real_one_is_refused_without_reading_on(tmp_path):
    lines = lines_of("decimal", 5)
    path = tmp_path / "long_header.csv"
    path.write_text("\n".join([lines[0] + "x" * (2 << 20), *lines[1:]]) + "\n")
    assert "long_header.csv: line 1 (the header) is longer than 1 MiB" in error_of(path)
