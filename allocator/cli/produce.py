"""kafka_producer.py's work once its flags are parsed: load the window, describe it or replay it.

The script holds only the argparse definition (its --help is the reference); everything it does with
the parsed flags is here, on library calls that name settings, not flags.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import numpy as np

from allocator.cli.common import (
    DEFAULT_CSV,
    kafka_settings_from,
    number_flag,
    print_json,
    setup_logging,
    window_from,
)
from allocator.cli.input_file import load_input
from allocator.data.loader import MarketData, calibration_to_ns, duplicate_rows
from allocator.data.window import format_ns
from allocator.kafka.admin import check_reachable, ensure_topic
from allocator.kafka.codec import DEFAULT_WIRE, WIRE_CHOICES
from allocator.kafka.producer import ReplayStats, replay
from allocator.snapshots.rule import build_snapshots

log = logging.getLogger(__name__)


calibration_value = number_flag(
    "--calibration",
    "seconds of rows before the window sent as calibration history; 0 = none",
    minimum=0,
    maximum=86400 * 365,
)


def add_wire_flag(parser: argparse.ArgumentParser) -> None:
    """--wire: how rows travel (docs/wire.md); the consumer reads either, told by each message's header."""
    parser.add_argument(
        "--wire",
        choices=WIRE_CHOICES,
        default=DEFAULT_WIRE,
        help="row format on the topic: arrow (Arrow IPC record batches, fast), json (one JSON object per "
        "row, readable with kcat) or auto (Arrow for full messages, JSON for the paced window's messages "
        f"of one instant, where JSON is faster; default {DEFAULT_WIRE})",
    )


def produce(args: argparse.Namespace) -> int:
    """Run the producer for parsed flags: a --dry-run description, or a replay and its JSON summary."""
    setup_logging(args.verbose)
    settings = kafka_settings_from(args)
    calibration_ns = calibration_to_ns(args.calibration)
    if not args.dry_run:  # before the file: a long load should not end in "broker unreachable"
        check_reachable(settings, args.connect_timeout)
    data = load_input(
        args.csv,
        DEFAULT_CSV,
        window_from(args),
        symbol=args.symbol,
        price_format=args.price_format,
        calibration_ns=calibration_ns,
    )
    if args.dry_run:
        print_json(dry_run_description(data))
        return 0
    if ensure_topic(settings, args.topic):
        log.info("created topic %s (retention.ms=-1)", args.topic)
    if data.history_rows:
        log.info(
            "sending %d calibration rows (%g s before the window) first", data.history_rows, args.calibration
        )
    log.info(
        "replaying %d rows of %s at speed %g to %s (%s)",
        data.rows_in_window,
        data.source,
        args.speed,
        args.topic,
        args.wire,
    )
    stats = replay(
        data,
        settings,
        args.topic,
        speed=args.speed,
        flush_timeout=args.flush_timeout,
        calibration_ns=calibration_ns,
        wire=args.wire,
    )
    print_json(replay_summary(stats, args.topic, args.speed))
    return 0


def dry_run_description(data: MarketData) -> dict[str, object]:
    """What would be streamed; with --calibration 0 exactly the description of a plain replay."""
    summary = dry_run_summary(data)
    if data.history is not None:
        summary["history_rows"] = data.history_rows
    return summary


def replay_summary(stats: ReplayStats, topic: str, speed: float) -> dict[str, object]:
    """The JSON line on stdout after a replay."""
    return {
        "run_id": stats.run_id,
        "topic": topic,
        "rows": stats.rows,
        "history_rows": stats.history_rows,
        "rows_sent": stats.sent,
        "rows_delivered": stats.delivered,
        "wire": stats.wire,
        "messages_sent": stats.messages,
        "elapsed_seconds": round(stats.elapsed_s, 3),
        "rate_rows_per_second": round(stats.sent / stats.elapsed_s, 1) if stats.elapsed_s else None,
        "rate_msgs_per_second": round(stats.messages / stats.elapsed_s, 1) if stats.elapsed_s else None,
        "speed": speed,
        "max_lateness_ms": round(stats.max_lateness_s * 1000, 3),
        "p99_lateness_ms": round(stats.lateness_p99() * 1000, 3),
    }


def dry_run_summary(data: MarketData) -> dict[str, Any]:
    """Counts a user checks before a replay: rows, window coverage, venues, ticks, untradable quotes."""
    frame = data.frame
    ts = frame["ts_event"].to_numpy(dtype=np.int64)
    snaps = build_snapshots(frame)
    per_venue = frame.groupby("publisher_id", sort=True).size()
    return {
        "source": data.source,
        "rows": data.rows_total,
        "rows_in_window": len(frame),
        "window": data.window.report(),
        "file_first_ts_event": format_ns(data.file_first_ts) if data.file_first_ts is not None else None,
        "file_last_ts_event": format_ns(data.file_last_ts) if data.file_last_ts is not None else None,
        "first_ts_event": format_ns(int(ts.min())),
        "last_ts_event": format_ns(int(ts.max())),
        "ticks": snaps.ticks,
        "venues": [int(p) for p in snaps.publisher_ids],
        "rows_per_venue": {
            str(int(k)): int(v) for k, v in zip(per_venue.index.tolist(), per_venue.tolist(), strict=True)
        },
        "skipped_untradable": snaps.untradable_quotes,
        "crossed_quotes": snaps.crossed_quotes,
        "duplicate_rows": duplicate_rows(frame),
        "levels": data.levels,
        "price_format": data.price_format,
        "symbols": data.symbols,
        "out_of_order_rows": int(np.count_nonzero(np.diff(ts) < 0)),
    }
