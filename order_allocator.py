#!/usr/bin/env python3
"""Route a parent order across venues tick by tick and compare it with best-ask, TWAP and VWAP.

Kafka mode (default): consume a replay from the topic. Offline: `--csv FILE`. Both run the same
pipeline and print the same JSON report on stdout; progress and logs go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from allocator.cli import allocate
from allocator.cli.common import add_data_flags, add_kafka_flags, add_version_flag, run_main
from allocator.cli.config_file import add_config_flag, parse_with_config
from allocator.cli.group_flags import add_group_flags
from allocator.errors import EXIT_INTERRUPTED_CONSUMER


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="order_allocator.py",
        description="Route a parent order across venues and report its cost against best-ask, TWAP and VWAP.",
    )
    add_data_flags(parser, csv_help="read this file instead of consuming Kafka (offline run)")
    allocate.add_order_flags(parser)
    allocate.add_realistic_flags(parser)
    add_kafka_flags(parser)
    allocate.add_stream_flags(parser)
    add_group_flags(parser)
    allocate.add_output_flags(parser)
    add_version_flag(parser)
    add_config_flag(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_with_config(build_parser(), argv)
    if args.parents:
        # One member of a consumer group (docs/many-symbols.md), imported only when used.
        from allocator.cli.group import allocate_group

        return allocate_group(args)
    return allocate.main(args)


if __name__ == "__main__":
    sys.exit(run_main("order_allocator.py", main, interrupted_code=EXIT_INTERRUPTED_CONSUMER))
