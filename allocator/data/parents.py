"""The parent-orders file of a multi-symbol run: which orders to route, one per line.

A CSV with a header. Columns (any order; names are case-insensitive):

* `symbol` (required): the instrument, as the data's `symbol` column spells it;
* `side` (required): `buy` or `sell`;
* `size` (required): shares, a whole number ≥ 1;
* `start` (optional, may be empty): the order's arrival, a UTC time of day (HH:MM:SS[.f]) or an ISO
  datetime, like `--start`; empty = the replay's window start;
* `id` (optional, may be empty): the parent's name in report file names; default
  `SYMBOL-SIDE-SIZE` (plus `-HHMMSS…` of the start when one is given).

Blank lines and lines starting with `#` are skipped. Every problem is one line naming the file, the
line and the column, because a consumer group that starts on a bad file would route the wrong orders.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from allocator.data.window import WindowSpec
from allocator.errors import SettingError, UserError

PARENT_SIDES = ("buy", "sell")
REQUIRED = ("symbol", "side", "size")
OPTIONAL = ("start", "id")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_SIZE = 10**9


@dataclass(frozen=True)
class Parent:
    """One parent order: `id` names its report (`<id>.json`); `line` is where the file gave it."""

    id: str
    symbol: str
    side: str
    size: int
    start: str | None
    line: int

    @property
    def report_name(self) -> str:
        return f"{self.id}.json"


def read_parents(path: str | Path) -> list[Parent]:
    """The parents in file order; a UserError naming file, line and column for anything wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"parents file not found: {path} (pass --parents FILE.csv)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the parents file ({exc})") from None
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1)]
    content = [(n, line) for n, line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not content:
        raise UserError(f"{path}: empty parents file; give a header line `symbol,side,size[,start][,id]`")
    header_line, header_text = content[0]
    header = [name.strip().lower() for name in next(csv.reader([header_text]))]
    _check_header(path, header_line, header)
    parents: list[Parent] = []
    seen: dict[str, int] = {}
    for number, line in content[1:]:
        fields = next(csv.reader([line]))
        if len(fields) != len(header):
            raise UserError(
                f"{path} line {number}: {len(fields)} fields, the header has {len(header)} ({', '.join(header)})"
            )
        row = {name: value.strip() for name, value in zip(header, fields, strict=True)}
        parent = _parent(path, number, row)
        if parent.id in seen:
            raise UserError(
                f"{path} line {number}, column id: parent {parent.id!r} already given on line {seen[parent.id]}; "
                "give each parent a distinct id (an `id` column) or drop the duplicate"
            )
        seen[parent.id] = number
        parents.append(parent)
    if not parents:
        raise UserError(f"{path}: no parent orders after the header (line {header_line})")
    return parents


def _check_header(path: Path, line: int, header: list[str]) -> None:
    missing = [name for name in REQUIRED if name not in header]
    unknown = [name for name in header if name not in REQUIRED + OPTIONAL]
    doubled = sorted({name for name in header if header.count(name) > 1})
    if missing or unknown or doubled:
        problem = (
            f"missing column(s) {', '.join(missing)}"
            if missing
            else f"unknown column(s) {', '.join(unknown)}"
            if unknown
            else f"column(s) {', '.join(doubled)} given twice"
        )
        raise UserError(
            f"{path} line {line}: {problem}; the header must name symbol, side, size and optionally start, id"
        )


def _parent(path: Path, line: int, row: dict[str, str]) -> Parent:
    """One line's parent, checked column by column."""
    where = f"{path} line {line}"
    symbol = row["symbol"]
    if not symbol:
        raise UserError(f"{where}, column symbol: empty; give the instrument, e.g. AAPL")
    side = row["side"].lower()
    if side not in PARENT_SIDES:
        raise UserError(f"{where}, column side: {row['side']!r} is not buy or sell")
    try:
        size = int(row["size"])
    except ValueError:
        raise UserError(f"{where}, column size: {row['size']!r} is not a whole number of shares") from None
    if not 1 <= size <= MAX_SIZE:
        raise UserError(f"{where}, column size: {size} is not between 1 and {MAX_SIZE:,} shares")
    start = row.get("start") or None
    if start is not None:
        try:
            WindowSpec(start=start, end=None).resolve(0)
        except SettingError:
            raise UserError(
                f"{where}, column start: {start!r} is not a time; use HH:MM:SS[.fffffffff] (UTC) or an ISO "
                "datetime like 2024-08-01T13:36:32.5Z, or leave it empty"
            ) from None
    parent_id = row.get("id") or _default_id(symbol, side, size, start)
    if not _ID.match(parent_id):
        raise UserError(
            f"{where}, column id: {parent_id!r} cannot name a report file; use letters, digits, '.', '_' "
            "and '-' (at most 100, starting with a letter or digit)"
        )
    return Parent(parent_id, symbol, side, size, start, line)


def _default_id(symbol: str, side: str, size: int, start: str | None) -> str:
    """SYMBOL-SIDE-SIZE[-START]: stable across runs, so reruns rewrite the same report files."""
    parts = [symbol, side, str(size)] + ([re.sub(r"[^0-9A-Za-z.]", "", start)] if start else [])
    return "-".join(re.sub(r"[^A-Za-z0-9._-]", "_", part) for part in parts)
