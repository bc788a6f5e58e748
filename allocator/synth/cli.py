"""`python -m allocator.synth`: generate the recorded dataset, or print the statistics of an MBP CSV.

Usage:
    python -m allocator.synth --out data/l1_day.csv.gz [--seed N] [--start HH:MM:SS --end HH:MM:SS]
    python -m allocator.synth --out data/multi_symbol.csv.gz --symbols AAPL,MSFT,NVDA --start … --end …
    python -m allocator.synth --stats data/l1_day.csv.gz     # the table in data/README.md
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from allocator.cli.common import run_main
from allocator.errors import UserError
from allocator.synth.clock import DEFAULT_DATE, DEFAULT_END, DEFAULT_START
from allocator.synth.csv_writer import sha256_file, write_csv
from allocator.synth.generator import DEFAULT_SEED, INSTRUMENTS, generate, generate_symbols
from allocator.synth.stats import file_stats, read_mbp_csv, stats_markdown

PROG = "python -m allocator.synth"


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Generate the synthetic multi-venue MBP-10 dataset, or print statistics of one.",
    )
    p.add_argument("--out", help="output CSV path (.csv.gz for reproducible gzip)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"RNG seed (default {DEFAULT_SEED})")
    p.add_argument("--start", default=DEFAULT_START, help=f"UTC HH:MM:SS (default {DEFAULT_START})")
    p.add_argument("--end", default=DEFAULT_END, help=f"UTC HH:MM:SS (default {DEFAULT_END})")
    p.add_argument("--date", default=DEFAULT_DATE, help=f"trade date (default {DEFAULT_DATE})")
    p.add_argument(
        "--symbols",
        metavar="LIST",
        help="comma-separated symbols for a multi-symbol file, e.g. AAPL,MSFT,NVDA (known: "
        f"{', '.join(INSTRUMENTS)}); the first keeps --seed's market, each later one has its own seed",
    )
    p.add_argument("--stats", metavar="CSV", help="print the README statistics table of an MBP CSV")
    return p


def _generate_to(args: argparse.Namespace) -> None:
    """Generate with the flags' settings, write `--out` and print what was written."""
    t0 = time.perf_counter()
    if args.symbols:
        symbols = [part.strip() for part in args.symbols.split(",") if part.strip()]
        df = generate_symbols(symbols, seed=args.seed, start=args.start, end=args.end, date=args.date)
    else:
        df = generate(seed=args.seed, start=args.start, end=args.end, date=args.date)
    t1 = time.perf_counter()
    write_csv(df, args.out)
    t2 = time.perf_counter()
    print(
        f"{args.out}: {len(df):,} rows, {Path(args.out).stat().st_size / 1e6:.2f} MB, "
        f"sha256 {sha256_file(args.out)} (generate {t1 - t0:.1f} s, write {t2 - t1:.1f} s)"
    )


def run(argv: Sequence[str] | None = None) -> int:
    """Generate the file or print a file's statistics."""
    args = _build_parser().parse_args(argv)
    if args.stats:
        print(stats_markdown(file_stats(read_mbp_csv(args.stats))))
    elif not args.out:
        raise UserError("give --out PATH to generate, or --stats PATH to describe a file")
    else:
        _generate_to(args)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The command under the CLIs' one error wrapper: a user error is one line on stderr and its exit code."""
    return run_main(PROG, run, argv)
