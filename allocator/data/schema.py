"""Column layout of Databento MBP CSV exports: the one place that knows the field names.

The public trial file is an MBP-10 export (74 columns); MBP-1 exports carry only level 00.
Our recorded dataset is written with exactly this layout so it reads like a real export.
"""

from __future__ import annotations

from collections.abc import Iterable

HEADER_FIELDS: tuple[str, ...] = (
    "ts_recv",
    "ts_event",
    "rtype",
    "publisher_id",
    "instrument_id",
    "action",
    "side",
    "depth",
    "price",
    "size",
    "flags",
    "ts_in_delta",
    "sequence",
)
LEVEL_FIELDS: tuple[str, ...] = ("bid_px", "ask_px", "bid_sz", "ask_sz", "bid_ct", "ask_ct")
# The level fields the loader reads: the order counts (*_ct_NN) are in the export but nothing uses them.
LOADED_LEVEL_FIELDS: tuple[str, ...] = ("bid_px", "ask_px", "bid_sz", "ask_sz")
# The sides of the book (the `depth_side` the loader may keep below the top level).
BOOK_SIDES: tuple[str, ...] = ("bid", "ask")
MAX_LEVELS = 10
RTYPE_MBP1 = 1
RTYPE_MBP10 = 10
# Databento writes an undefined price as INT64_MAX in fixed-point form.
UNDEF_PRICE_FIXED = 9_223_372_036_854_775_807
FIXED_PRICE_SCALE = 1e-9


def level_column(field: str, level: int) -> str:
    """Name of a book column, e.g. level_column("ask_px", 0) -> "ask_px_00"."""
    return f"{field}_{level:02d}"


def is_price_column(name: str) -> bool:
    """Price columns are decimals (or Databento fixed-point); every other numeric column is an integer."""
    return name == "price" or "_px_" in name


def book_levels(columns: Iterable[str], field: str = "ask_px") -> int:
    """How many book levels the columns hold: consecutive `field`_NN (ask_px_NN) from level 0, at most
    MAX_LEVELS."""
    present = set(columns)
    levels = 0
    while levels < MAX_LEVELS and level_column(field, levels) in present:
        levels += 1
    return levels


def mbp_columns(levels: int = MAX_LEVELS) -> list[str]:
    """Exact column order of a Databento MBP-`levels` CSV export (74 columns for 10 levels)."""
    book = [level_column(f, lvl) for lvl in range(levels) for f in LEVEL_FIELDS]
    return [*HEADER_FIELDS, *book, "symbol"]


MBP10_COLUMNS: tuple[str, ...] = tuple(mbp_columns(MAX_LEVELS))
MBP1_COLUMNS: tuple[str, ...] = tuple(mbp_columns(1))
# The minimal L1 file of the original README needs only these.
REQUIRED_COLUMNS: tuple[str, ...] = ("ts_event", "publisher_id", "ask_px_00", "ask_sz_00")
# Identifiers the pipeline keys on — the venue, the venue's message sequence (gap detection), the
# instrument (symbol selection). Wherever the column is present every row must have one: an empty cell
# would otherwise become venue 0, sequence 0 or no instrument, and be routed on as if real.
REQUIRED_IDENTIFIERS: dict[str, str] = {
    "publisher_id": "its venue",
    "sequence": "its venue's message sequence",
    "symbol": "its instrument",
}
