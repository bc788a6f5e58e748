"""The flags of the many-symbols mode, apart from its work (allocator.cli.group) so that the scripts
parse them without importing the pipeline: `kafka_producer.py --partitions`, `order_allocator.py
--parents/--reports-dir/--instance-id` (docs/many-symbols.md)."""

from __future__ import annotations

import argparse

from allocator.cli.common import number_flag

MAX_PARTITIONS = 10_000


def add_partitions_flag(parser: argparse.ArgumentParser) -> None:
    """kafka_producer.py --partitions: the multi-symbol replay."""
    parser.add_argument(
        "--partitions",
        type=number_flag(
            "--partitions", "e.g. --partitions 3", integer=True, minimum=1, maximum=MAX_PARTITIONS
        ),
        metavar="P",
        help="replay every symbol of the file (or only --symbol) into a topic of P partitions, one replay per "
        "symbol keyed by it, interleaved on one clock; symbol i (sorted) goes to partition i mod P. The topic "
        "is created with P partitions (an existing topic must have P)",
    )


def add_group_flags(parser: argparse.ArgumentParser) -> None:
    """order_allocator.py --parents / --reports-dir / --instance-id: one member of a consumer group."""
    group = parser.add_argument_group("many symbols (a consumer group routing a parents file)")
    group.add_argument(
        "--parents",
        metavar="FILE.csv",
        help="route every parent order of this CSV (columns symbol, side, size, optional start and id) "
        "instead of one --order-size; needs --reports-dir, and --group when reading Kafka",
    )
    group.add_argument(
        "--reports-dir",
        metavar="DIR",
        help="with --parents: write one report per parent here, as <id>.json (merge them with "
        "python -m allocator.report.merge DIR --parents FILE.csv)",
    )
    group.add_argument(
        "--instance-id",
        help="with --parents: static group membership (group.instance.id), so a restarted process with the "
        "same id takes its partitions back at once; needed on noida-db to recover from a killed process",
    )
