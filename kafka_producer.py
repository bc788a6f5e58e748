#!/usr/bin/env python3
"""Replay a Databento-style L1/MBP CSV into Kafka with the original inter-message timing.

`--dry-run` describes what would be streamed (one JSON object on stdout) without touching Kafka;
otherwise a JSON summary of the replay goes to stdout and progress to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from allocator.cli.common import (
    add_data_flags,
    add_kafka_flags,
    add_verbose_flag,
    add_version_flag,
    number_flag,
    run_main,
    speed_value,
)
from allocator.cli.config_file import add_config_flag, parse_with_config
from allocator.cli.group_flags import add_partitions_flag
from allocator.cli.produce import add_wire_flag, calibration_value, produce
from allocator.data.loader import DEFAULT_CALIBRATION_SECONDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kafka_producer.py",
        description="Stream the rows of a market-data file inside a time window into a Kafka topic.",
    )
    add_data_flags(parser, csv_help="data file to replay (default data/l1_day.csv.gz)")
    add_kafka_flags(parser)
    parser.add_argument(
        "--speed",
        type=speed_value,
        default=1.0,
        help="replay speed: 1 = real time (default), 20 = twenty times faster, 0 = as fast as possible",
    )
    parser.add_argument(
        "--calibration",
        type=calibration_value,
        default=DEFAULT_CALIBRATION_SECONDS,
        metavar="SECONDS",
        help="seconds of rows before the window also sent, first and unpaced, as calibration history "
        f"for --mode cont-kukanov; 0 sends none (default {DEFAULT_CALIBRATION_SECONDS:g})",
    )
    add_wire_flag(parser)
    add_partitions_flag(parser)
    parser.add_argument(
        "--flush-timeout",
        type=number_flag("--flush-timeout", "seconds, e.g. --flush-timeout 30", minimum=0, maximum=86400),
        default=30.0,
        help="seconds to wait for the last deliveries (default 30)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be streamed as JSON and exit"
    )
    add_verbose_flag(parser)
    add_version_flag(parser)
    add_config_flag(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_with_config(build_parser(), argv)
    if args.partitions is not None:
        from allocator.cli.group import produce_symbols  # the many-symbols replay (docs/many-symbols.md)

        return produce_symbols(args)
    return produce(args)


if __name__ == "__main__":
    sys.exit(run_main("kafka_producer.py", main))
