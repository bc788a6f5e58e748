"""The parents file of a group run: what it accepts, and one line naming file, line and column otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from allocator.data.parents import Parent, read_parents
from allocator.errors import UserError


def parents_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "parents.csv"
    path.write_text(text)
    return path


def test_the_columns_in_any_order_with_optional_start_and_id(tmp_path):
    path = parents_file(
        tmp_path,
        "# orders of the day\nSide,symbol,size,start,id\nbuy,AAPL,3000,,\n\n"
        "sell,MSFT,2000,13:37:00,\nBUY,NVDA,500,,big-one\n",
    )
    assert read_parents(path) == [
        Parent("AAPL-buy-3000", "AAPL", "buy", 3000, None, 3),
        Parent("MSFT-sell-2000-133700", "MSFT", "sell", 2000, "13:37:00", 5),
        Parent("big-one", "NVDA", "buy", 500, None, 6),
    ]


def test_the_shipped_example_reads():
    example = Path(__file__).resolve().parents[2] / "examples" / "parents.csv"
    assert [p.symbol for p in read_parents(example)] == ["AAPL", "MSFT", "NVDA", "AAPL"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("symbol,side\nAAPL,buy\n", "line 1: missing column(s) size"),
        ("symbol,side,size,venue\nAAPL,buy,100,2\n", "line 1: unknown column(s) venue"),
        ("symbol,side,size\nAAPL,buy,100\nMSFT,hold,100\n", "line 3, column side: 'hold' is not buy or sell"),
        ("symbol,side,size\nAAPL,buy,1e3\n", "line 2, column size: '1e3' is not a whole number"),
        ("symbol,side,size\nAAPL,buy,0\n", "line 2, column size: 0 is not between 1"),
        ("symbol,side,size\n,buy,100\n", "line 2, column symbol: empty"),
        ("symbol,side,size,start\nAAPL,buy,100,noon\n", "line 2, column start: 'noon' is not a time"),
        ("symbol,side,size\nAAPL,buy,100,7\n", "line 2: 4 fields, the header has 3"),
        (
            "symbol,side,size\nAAPL,buy,100\nAAPL,buy,100\n",
            "line 3, column id: parent 'AAPL-buy-100' already given on line 2",
        ),
        ("symbol,side,size,id\nAAPL,buy,100,a/b\n", "line 2, column id: 'a/b' cannot name a report file"),
        ("symbol,side,size\n", "no parent orders after the header"),
        ("\n# nothing\n", "empty parents file"),
    ],
)
def test_a_bad_file_is_one_line_naming_line_and_column(tmp_path, text, message):
    path = parents_file(tmp_path, text)
    with pytest.raises(UserError) as info:
        read_parents(path)
    assert message in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_a_missing_file_says_which(tmp_path):
    with pytest.raises(UserError, match="parents file not found"):
        read_parents(tmp_path / "nope.csv")
