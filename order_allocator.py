#!/usr/bin/env python3
"""Route a parent order across venues tick by tick and compare it with best-ask, TWAP and VWAP.

Offline: `python order_allocator.py --csv FILE`. The JSON report goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from allocator.cli import add_data_flags, csv_path, print_json, run_main, setup_logging, window_from
from allocator.data import load
from allocator.pipeline import MODES, RunConfig, run, write_fills
from allocator.search import DEFAULT_LAMBDA_OVER, DEFAULT_LAMBDA_UNDER, DEFAULT_THETA_QUEUE, parse_grid
from allocator.venues import load_fee_table

log = logging.getLogger("order_allocator")


def _values(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="order_allocator.py",
        description="Allocate a parent buy order across venues per snapshot and report costs vs baselines.",
    )
    add_data_flags(
        parser, csv_help="read this file instead of Kafka (default when --csv is given: offline run)"
    )
    order = parser.add_argument_group("order and model")
    order.add_argument("--order-size", type=int, default=5000, help="shares to buy (default 5000)")
    order.add_argument("--step", type=int, default=100, help="allocation granularity in shares (default 100)")
    order.add_argument("--mode", choices=MODES, default="faithful", help="execution model (default faithful)")
    order.add_argument(
        "--lambda-over",
        help=f"comma-separated grid of overfill penalties (default {_values(DEFAULT_LAMBDA_OVER)})",
    )
    order.add_argument(
        "--lambda-under",
        help=f"comma-separated grid of underfill penalties (default {_values(DEFAULT_LAMBDA_UNDER)})",
    )
    order.add_argument(
        "--theta-queue",
        help=f"comma-separated grid of queue-risk penalties (default {_values(DEFAULT_THETA_QUEUE)})",
    )
    order.add_argument(
        "--jobs", type=int, help="worker processes for the grid (default: all cores when it pays)"
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--fills", metavar="FILE.csv", help="write every child fill (router and baselines) to this CSV"
    )
    out.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr")
    return parser


def config_from(args: argparse.Namespace) -> RunConfig:
    return RunConfig(
        order_size=args.order_size,
        step=args.step,
        lambda_over=parse_grid(args.lambda_over, DEFAULT_LAMBDA_OVER, "--lambda-over"),
        lambda_under=parse_grid(args.lambda_under, DEFAULT_LAMBDA_UNDER, "--lambda-under"),
        theta_queue=parse_grid(args.theta_queue, DEFAULT_THETA_QUEUE, "--theta-queue"),
        mode=args.mode,
        jobs=args.jobs,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    config = config_from(args)
    fees = load_fee_table(args.venues, fee=args.fee, rebate=args.rebate)
    started = time.perf_counter()
    path = csv_path(args)
    data = load(path, window_from(args), levels=1, symbol=args.symbol, price_format=args.price_format)
    log.info("loaded %d rows in %s from %s", data.rows_in_window, data.window.describe(), path)
    result = run(data, fees, config)
    report = result.report
    report["run"] = {
        "source": f"csv:{path}",
        "rows_in_file": data.rows_total,
        "fee_table": fees.path,
        "fee_override": fees.overridden or None,
        "grid_workers": result.search.workers,
        "elapsed_seconds": round(time.perf_counter() - started, 3),
    }
    if args.fills:
        rows = write_fills(result, args.fills)
        log.info("wrote %d fills to %s", rows, args.fills)
    print_json(report)
    return 0


if __name__ == "__main__":
    sys.exit(run_main("order_allocator.py", main))
