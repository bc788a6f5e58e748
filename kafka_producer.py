#!/usr/bin/env python3
"""Replay a Databento-style L1/MBP CSV into Kafka with the original inter-message timing.

`--dry-run` describes what would be streamed (one JSON object on stdout) without touching Kafka;
otherwise a JSON summary of the replay goes to stdout and progress to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from allocator.cli.common import (
    add_data_flags,
    add_kafka_flags,
    csv_path,
    kafka_settings_from,
    print_json,
    run_main,
    setup_logging,
    speed_value,
    window_from,
)
from allocator.data.loader import DEFAULT_CALIBRATION_SECONDS, calibration_to_ns, load
from allocator.data.summary import describe_replay
from allocator.kafka.producer import calibration_value, check_reachable, ensure_topic, replay

log = logging.getLogger("kafka_producer")


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
    parser.add_argument(
        "--flush-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the last deliveries (default 30)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be streamed as JSON and exit"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    settings = kafka_settings_from(args)
    calibration_ns = calibration_to_ns(args.calibration)
    data = load(
        csv_path(args),
        window_from(args),
        symbol=args.symbol,
        price_format=args.price_format,
        calibration_ns=calibration_ns,
    )
    if args.dry_run:
        described = describe_replay(data)
        if data.history is not None:  # with --calibration 0 the description is exactly as before
            described["history_rows"] = data.history_rows
        print_json(described)
        return 0
    check_reachable(settings, args.connect_timeout)
    if ensure_topic(settings, args.topic):
        log.info("created topic %s (retention.ms=-1)", args.topic)
    if data.history_rows:
        log.info(
            "sending %d calibration rows (%g s before the window) first", data.history_rows, args.calibration
        )
    log.info(
        "replaying %d rows of %s at speed %g to %s", data.rows_in_window, data.source, args.speed, args.topic
    )
    stats = replay(
        data,
        settings,
        args.topic,
        speed=args.speed,
        flush_timeout=args.flush_timeout,
        calibration_ns=calibration_ns,
    )
    print_json(
        {
            "run_id": stats.run_id,
            "topic": args.topic,
            "rows": stats.rows,
            "history_rows": stats.history_rows,
            "rows_sent": stats.sent,
            "rows_delivered": stats.delivered,
            "elapsed_seconds": round(stats.elapsed_s, 3),
            "rate_msgs_per_second": round(stats.sent / stats.elapsed_s, 1) if stats.elapsed_s else None,
            "speed": args.speed,
            "max_lateness_ms": round(stats.max_lateness_s * 1000, 3),
            "p99_lateness_ms": round(stats.lateness_p99() * 1000, 3),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_main("kafka_producer.py", main))
