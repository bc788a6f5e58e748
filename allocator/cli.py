"""Flags and error handling shared by the two scripts, so they stay thin and consistent."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from allocator.errors import EXIT_BAD_INPUT, UserError
from allocator.window import DEFAULT_END, DEFAULT_START, WindowSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = REPO_ROOT / "data" / "l1_day.csv.gz"


def add_data_flags(parser: argparse.ArgumentParser, *, csv_help: str) -> None:
    """--csv, the window, symbol, price format and fee-table flags (the data layer's inputs)."""
    group = parser.add_argument_group("data")
    group.add_argument("--csv", metavar="FILE", help=csv_help)
    group.add_argument(
        "--start",
        default=DEFAULT_START,
        help=f"window start, UTC time of day (on the data's date) or ISO datetime (default {DEFAULT_START}); "
        "'all' = from the first row",
    )
    group.add_argument(
        "--end",
        default=DEFAULT_END,
        help=f"window end, inclusive at its precision: {DEFAULT_END} keeps everything before 13:45:15 "
        f"(default {DEFAULT_END}); 'all' = to the last row",
    )
    group.add_argument("--symbol", help="keep only this symbol (needed when the file holds several)")
    group.add_argument(
        "--price-format",
        choices=("auto", "decimal", "fixed"),
        default="auto",
        help="prices as decimals or Databento fixed-point integers (1e-9); auto detects (default)",
    )
    fees = parser.add_argument_group("venues and fees")
    fees.add_argument("--venues", metavar="FILE", help="venue TOML (default allocator/venues.toml)")
    fees.add_argument("--fee", type=float, help="force this taker fee ($/share) on every venue")
    fees.add_argument("--rebate", type=float, help="force this maker rebate ($/share) on every venue")


def window_from(args: argparse.Namespace) -> WindowSpec:
    return WindowSpec(start=args.start, end=args.end)


def csv_path(args: argparse.Namespace) -> Path:
    return Path(args.csv) if args.csv else DEFAULT_CSV


def print_json(obj: Any) -> None:
    """JSON on stdout, nothing else goes there."""
    sys.stdout.write(json.dumps(obj, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s: %(message)s" if verbose else "%(message)s",
    )
    # librdkafka's python wrapper logs through these; keep them quiet unless asked.
    logging.getLogger("confluent_kafka").setLevel(logging.WARNING)


def run_main(
    prog: str, main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None
) -> int:
    """Run a CLI main: user errors become one line on stderr and their exit code, never a traceback."""
    try:
        return main(argv)
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return EXIT_BAD_INPUT
