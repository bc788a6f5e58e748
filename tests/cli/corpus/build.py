"""Write the bad-input corpus: `python -m tests.cli.corpus.build` (the files are committed; tests check them).

Each file is a small Databento MBP-10 export with one defect; `tests/cli/test_bad_input.py` holds the exact
outcome expected for each.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from tests.helpers import at, frame, quote, to_csv_text

HERE = Path(__file__).resolve().parent


def base_rows() -> list[dict]:
    """Three venues quoting every second from 13:36:40 for 24 s (one row each, distinct ts_event)."""
    rows = []
    for i in range(24):
        venue = (2, 5, 43)[i % 3]
        rows.append(
            quote(at("13:36:40") + i * 1_000_000_000 + venue, venue, 222.83 + 0.01 * (i % 4), 150 + 10 * i)
        )
    return rows


def with_cell(text: str, *, line: int, column: str, value: str) -> str:
    """`text` with one cell replaced; `line` is the 1-based file line (the header is line 1)."""
    lines = text.splitlines()
    cells = lines[line - 1].split(",")
    cells[lines[0].split(",").index(column)] = value
    lines[line - 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


def write_all() -> dict[str, bytes]:
    good = to_csv_text(frame(base_rows()))
    header, *lines = good.splitlines()
    files: dict[str, bytes] = {}

    def put(name: str, text: str | bytes) -> None:
        files[name] = text.encode() if isinstance(text, str) else text

    put("base.csv", good)
    put("empty.csv", "")
    put("header_only.csv", header + "\n")
    put("semicolon.csv", good.replace(",", ";"))
    put("tab_separated.csv", good.replace(",", "\t"))
    put(
        "missing_ask_size.csv",
        to_csv_text(frame(base_rows()), columns=["ts_event", "publisher_id", "ask_px_00"]),
    )
    extra = frame(base_rows()).assign(venue_note="n/a", internal_id=7)
    put(
        "extra_columns.csv",
        extra.pipe(lambda f: to_csv_text(f, columns=[*f.columns[:74], "venue_note", "internal_id"])),
    )
    rows = base_rows()
    put("non_numeric_price.csv", with_cell(good, line=3, column="ask_px_00", value="abc"))
    put("non_numeric_size.csv", with_cell(good, line=4, column="ask_sz_00", value="12x"))
    rows = base_rows()
    rows[4]["ask_sz_00"], rows[7]["ask_sz_00"] = 0, -100
    put("zero_and_negative_size.csv", to_csv_text(frame(rows)))
    rows = base_rows()
    rows[5]["ask_px_00"] = np.nan
    put("nan_price.csv", to_csv_text(frame(rows)).replace(",,", ",NaN,", 1))
    rows = base_rows()
    rows[6]["bid_px_00"] = rows[6]["ask_px_00"] + 0.02
    put("crossed_quote.csv", to_csv_text(frame(rows)))
    put("duplicated_rows.csv", "\n".join([header, *lines[:10], *lines[5:10], *lines[10:]]) + "\n")
    order = np.random.default_rng(3).permutation(len(lines))
    put("rows_out_of_order.csv", "\n".join([header, *(lines[i] for i in order)]) + "\n")
    mixed = to_csv_text(frame(base_rows())).splitlines()
    ints = to_csv_text(frame(base_rows()), timestamps="int").splitlines()
    put(
        "mixed_timestamp_formats.csv",
        "\n".join(
            [mixed[0], *(m if i % 2 else n for i, (m, n) in enumerate(zip(mixed[1:], ints[1:], strict=True)))]
        )
        + "\n",
    )
    put("empty_publisher_id.csv", with_cell(good, line=5, column="publisher_id", value=""))
    put("empty_symbol.csv", with_cell(good, line=9, column="symbol", value=""))
    put("bad_timestamp.csv", with_cell(good, line=6, column="ts_event", value="2024-08-01 noonish"))
    put(
        "outside_window.csv", to_csv_text(frame([quote(at("15:00:00") + i, 2, 222.9, 100) for i in range(5)]))
    )
    put("non_utf8.csv", good.encode().replace(b",AAPL\n", b",AAPL\xff\xfe\n", 1))
    blob = gzip.compress(
        to_csv_text(frame([quote(at("13:37:00") + i, 2, 222.8, 100) for i in range(4000)])).encode(), mtime=0
    )
    put("truncated.csv.gz", blob[: len(blob) // 2])
    put("two_rows.csv", "\n".join([header, *lines[:2]]) + "\n")
    put("one_venue.csv", to_csv_text(frame([r for r in base_rows() if r["publisher_id"] == 2])))
    rows = base_rows()
    for r in rows[1::2]:
        r["symbol"] = "MSFT"
    put("several_symbols.csv", to_csv_text(frame(rows)))
    fixed = to_csv_text(frame(base_rows()), prices="fixed").splitlines()
    put("fixed_point_prices.csv", "\n".join(fixed) + "\n")
    put("fixed_point_then_decimal.csv", "\n".join([*fixed[:13], *lines[12:]]) + "\n")  # decimal from line 14
    put("duplicate_column.csv", good.replace(",ask_px_01,", ",ask_px_00,", 1))
    put("case_variant_column.csv", good.replace(",bid_sz_09,", ",ASK_PX_00 ,", 1))
    put("cut_last_line.csv", good[: good.rindex(",222.") + 4])  # cut mid-row, no newline after it
    put(
        "timestamp_out_of_range.csv",
        with_cell(good, line=20, column="ts_event", value="2024-13-01T13:36:59Z"),
    )
    put("size_overflow.csv", with_cell(good, line=17, column="ask_sz_00", value="99999999999999999999"))
    # One 100 MB cell on line 10, gzipped to ~100 KB so the corpus stays small.
    huge = with_cell(good, line=10, column="symbol", value="A" * (100 << 20)).encode()
    put("huge_field.csv.gz", gzip.compress(huge, compresslevel=6, mtime=0))
    put("ragged_row.csv", good.replace(lines[3], ",".join(lines[3].split(",")[:30]), 1))
    put("binary_garbage.csv", bytes(np.random.default_rng(5).integers(0, 256, 3000, dtype=np.uint8)))
    for name, data in files.items():
        (HERE / name).write_bytes(data)
    return files


if __name__ == "__main__":
    print("\n".join(sorted(write_all())))
