"""`python -m allocator.report.merge DIR --parents parents.csv`: one summary of a group run's reports.

JSON on stdout (allocator.report.merge.merge); a parent without a usable report is named on stderr
and the exit code is 4, so a script cannot take a partial summary for the whole.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from allocator.cli.common import add_version_flag, print_json, run_main, setup_logging
from allocator.data.parents import read_parents
from allocator.errors import EXIT_INCOMPLETE
from allocator.report.merge import merge

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m allocator.report.merge",
        description="Merge the per-parent reports that order_allocator.py --parents wrote into one summary.",
    )
    parser.add_argument("reports_dir", metavar="DIR", help="the --reports-dir the consumers wrote into")
    parser.add_argument(
        "--parents",
        metavar="FILE.csv",
        required=True,
        help="the parents file the consumers routed (every parent in it must have a report)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr")
    add_version_flag(parser)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    parents = read_parents(args.parents)
    summary, missing = merge(Path(args.reports_dir), parents)
    print_json(summary)
    for gone in missing:
        log.error("parent %s (%s): %s (%s)", gone["id"], gone["symbol"], gone["problem"], gone["file"])
    if missing:
        log.error(
            "%d of %d parents have no usable report: the summary is partial", len(missing), len(parents)
        )
        return EXIT_INCOMPLETE
    return 0


def main() -> int:
    return run_main("merge", run, sys.argv[1:])
