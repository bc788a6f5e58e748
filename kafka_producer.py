#!/usr/bin/env python3
"""Replay a Databento-style L1/MBP CSV into Kafka with the original inter-message timing.

`--dry-run` describes what would be streamed (one JSON object on stdout) without touching Kafka.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from allocator.cli import add_data_flags, csv_path, print_json, run_main, setup_logging, window_from
from allocator.data import load
from allocator.describe import describe_replay

log = logging.getLogger("kafka_producer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kafka_producer.py",
        description="Stream the rows of a market-data file inside a time window into a Kafka topic.",
    )
    add_data_flags(parser, csv_help="data file to replay (default data/l1_day.csv.gz)")
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be streamed as JSON and exit"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    data = load(csv_path(args), window_from(args), symbol=args.symbol, price_format=args.price_format)
    if args.dry_run:
        print_json(describe_replay(data))
        return 0
    raise NotImplementedError("streaming to Kafka")


if __name__ == "__main__":
    sys.exit(run_main("kafka_producer.py", main))
