"""Many symbols: `kafka_producer.py --partitions P` and `order_allocator.py --parents FILE --reports-dir DIR`.

The producer replays every symbol of a multi-symbol file into a P-partition topic, one replay per
symbol keyed by it (allocator.kafka.multi). Each order_allocator.py process joins one consumer group
(`--group`, optionally `--instance-id` for static membership), routes every parent order of the
parents file (allocator.data.parents) whose symbol is in the partitions it holds, once that symbol's
replay is complete, and writes one report per parent into the reports directory
(allocator.report.merge.write_report). The report is the offline pipeline's on the collected rows:
the same as `order_allocator.py --csv FILE --symbol S --start START --side SIDE --order-size SIZE`
but for its `run` section. With `--csv` instead of Kafka, the same parents are routed offline into
the directory, which is the reference a group run is compared with.

A member stops once every parent of the file has a report in the directory (written by any member),
or after --idle-timeout seconds in which neither a message arrived nor a report appeared.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from allocator.cli.allocate import config_from
from allocator.cli.common import (
    DEFAULT_CSV,
    explicit_window,
    flag_for,
    kafka_settings_from,
    print_json,
    setup_logging,
    window_from,
)
from allocator.cli.input_file import seekable_path
from allocator.cli.produce import dry_run_description
from allocator.config import RunConfig
from allocator.data.loader import MarketData, calibration_to_ns, load, parse_timestamps
from allocator.data.parents import Parent, read_parents
from allocator.data.venues import FeeTable, load_fee_table
from allocator.data.window import DEFAULT_END, WindowSpec
from allocator.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED_CONSUMER, SettingError, UserError
from allocator.kafka.admin import check_reachable, ensure_topic
from allocator.kafka.consumer import stream_market_data
from allocator.kafka.group import GroupMember, GroupSettings
from allocator.kafka.multi import replay_symbols
from allocator.kafka.replay_state import StreamResult
from allocator.pipeline import run
from allocator.report.build import with_run_sections
from allocator.report.merge import read_report, reported, write_report

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------- producer


def produce_symbols(args: argparse.Namespace) -> int:
    """kafka_producer.py --partitions P: every symbol's replay into one P-partition topic."""
    setup_logging(args.verbose)
    settings = kafka_settings_from(args)
    calibration_ns = calibration_to_ns(args.calibration)
    if not args.dry_run:  # before the file, as the single replay does
        check_reachable(settings, args.connect_timeout)
    path = seekable_path(args.csv or "", DEFAULT_CSV, "--partitions")
    window = window_from(args)
    symbols = [args.symbol] if args.symbol else symbols_in_window(path, window)
    datasets: dict[str, MarketData] = {
        symbol: load(
            path, window, symbol=symbol, price_format=args.price_format, calibration_ns=calibration_ns
        )
        for symbol in symbols
    }
    if args.dry_run:
        print_json(
            {
                "partitions": args.partitions,
                "symbols": {symbol: dry_run_description(data) for symbol, data in datasets.items()},
            }
        )
        return 0
    if ensure_topic(settings, args.topic, partitions=args.partitions, exact_partitions=True):
        log.info("created topic %s with %d partitions (retention.ms=-1)", args.topic, args.partitions)
    log.info(
        "replaying %s (%d rows) of %s at speed %g to %s (%s)",
        ", ".join(symbols),
        sum(d.rows_in_window for d in datasets.values()),
        path,
        args.speed,
        args.topic,
        args.wire,
    )
    stats = replay_symbols(
        datasets,
        settings,
        args.topic,
        partitions=args.partitions,
        speed=args.speed,
        flush_timeout=args.flush_timeout,
        calibration_ns=calibration_ns,
        wire=args.wire,
    )
    print_json(stats.summary(args.topic, args.partitions, args.speed))
    return 0


def symbols_in_window(path: Path, window: WindowSpec) -> list[str]:
    """The symbols with a row in the window, reading only the symbol and ts_event columns."""
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            table = pacsv.read_csv(
                stream,
                convert_options=pacsv.ConvertOptions(
                    include_columns=["symbol", "ts_event"],
                    column_types={"symbol": pa.string(), "ts_event": pa.string()},
                ),
            )
    except FileNotFoundError:
        raise UserError(f"data file not found: {path} (pass --csv PATH)") from None
    except (pa.ArrowException, OSError) as exc:
        raise UserError(
            f"{path}: cannot read its symbol and ts_event columns for --partitions ({str(exc).splitlines()[0]}); "
            "it needs a CSV with a symbol column, or give --symbol"
        ) from None
    ts = parse_timestamps(table.column("ts_event"), path, "ts_event")
    if not len(ts):
        raise UserError(f"{path} has a header but no data rows")
    inside = window.resolve(int(ts[0])).contains(ts)
    symbols = table.column("symbol").filter(pa.array(inside)).unique().to_pylist()
    found = sorted(str(s) for s in symbols if s)
    if not found:
        raise UserError(
            f"{path}: no rows with a symbol in the window; pass --start/--end inside the file's range"
        )
    return found


# ---------------------------------------------------------------------------------- consumers


@dataclasses.dataclass
class ParentRouter:
    """Routes the parents of one symbol on its rows and writes their reports (one file per parent)."""

    args: argparse.Namespace
    parents: list[Parent]
    base: RunConfig
    fees: FeeTable
    reports_dir: Path
    source: dict[str, Any]  # the `run` fields every report of this process shares
    written: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    failed: list[dict[str, str]] = dataclasses.field(default_factory=list)

    def of(self, symbol: str) -> list[Parent]:
        return [p for p in self.parents if p.symbol == symbol]

    def config(self, parent: Parent) -> RunConfig:
        return dataclasses.replace(self.base, order_size=parent.size, side=parent.side)  # type: ignore[arg-type]

    def window(self, parent: Parent) -> WindowSpec | None:
        """The parent's window: its start (else --start) to --end, as an offline --start/--end run has it."""
        if parent.start:
            return WindowSpec(start=parent.start, end=self.args.end or DEFAULT_END)
        return explicit_window(self.args)

    def on_replay(self, symbol: str, partition: int, result: StreamResult) -> dict[str, Any]:
        """A symbol's replay is complete: route each of its parents (skipped when this replay's reports are
        already there: a re-delivered replay would rewrite the same content)."""
        run_id = result.start.get("run_id")
        mine = self.of(symbol)
        done = [
            p
            for p in mine
            if (read_report(self.reports_dir / p.report_name) or {}).get("run", {}).get("run_id") == run_id
        ]
        if mine and len(done) == len(mine):
            log.info("%s: every report of replay %s is already written; skipping it", symbol, run_id)
            self.skipped += [p.id for p in mine]
            return {"skipped": [p.id for p in mine]}
        source = self.source | {
            "run_id": run_id,
            "replayed_file": result.start.get("source"),
            "partition": partition,
            "stream": result.stats.report(),
        }
        ids = []
        for parent in mine:
            started = time.perf_counter()
            try:
                data = stream_market_data(
                    result, self.args.topic, self.window(parent), calibration_ns=self.base.calibration_ns
                )
            except UserError as exc:  # its window does not fit the replay's, say
                self._failed(parent, exc)
                continue
            self._route(parent, data, source, started, complete=result.stats.complete)
            ids.append(parent.id)
        return {"reports": ids}

    def route_offline(self) -> None:
        """--csv with --parents: every parent from the file, the reference for a group run."""
        path = seekable_path(self.args.csv or "", DEFAULT_CSV, "--parents")
        for parent in self.parents:
            started = time.perf_counter()
            window = self.window(parent) or window_from(self.args)
            try:
                data = load(
                    path,
                    window,
                    levels=self.config(parent).book_levels,
                    symbol=parent.symbol,
                    price_format=self.args.price_format,
                    calibration_ns=self.base.calibration_ns,
                )
            except UserError as exc:
                self._failed(parent, exc)
                continue
            source = {"source": f"csv:{path}", "rows_in_file": data.rows_total}
            self._route(parent, data, source, started, complete=True)

    def _route(
        self, parent: Parent, data: MarketData, source: dict[str, Any], started: float, *, complete: bool
    ) -> None:
        parent_doc = {
            "id": parent.id,
            "symbol": parent.symbol,
            "side": parent.side,
            "size": parent.size,
            "start": parent.start,
        }
        try:
            result = run(data, self.fees, self.config(parent))
        except UserError as exc:
            self._failed(parent, exc)
            return
        report = with_run_sections(
            result.report,
            complete=complete,
            source=source | {"parent": parent_doc},
            fee_table=self.fees,
            grid_workers=result.search.workers,
            elapsed_seconds=time.perf_counter() - started,
        )
        write_report(self.reports_dir, parent.report_name, report)
        self.written.append(parent.id)
        log.info(
            "wrote %s (%s %s %d)",
            self.reports_dir / parent.report_name,
            parent.side,
            parent.symbol,
            parent.size,
        )

    def _failed(self, parent: Parent, exc: UserError) -> None:
        """A parent that cannot be routed (no rows in its window, say) gets a report file saying why, so
        the group does not wait for it and the merge names it."""
        message = exc.render(flag_for) if isinstance(exc, SettingError) else str(exc)
        log.error("parent %s (line %d): %s", parent.id, parent.line, message)
        self.failed.append({"id": parent.id, "error": message})
        doc = {
            "status": "failed",
            "error": message,
            "run": {"parent": {"id": parent.id, "symbol": parent.symbol}},
        }
        write_report(self.reports_dir, parent.report_name, doc)


def allocate_group(args: argparse.Namespace) -> int:
    """order_allocator.py --parents: route a parents file, from Kafka as a group member or from --csv."""
    setup_logging(args.verbose)
    _check_group_flags(args)
    parents = read_parents(args.parents)
    # --order-size is not used: each parent has its size (a valid stand-in, so --step alone is checked).
    base = config_from(argparse.Namespace(**(vars(args) | {"order_size": args.step})))
    for parent in parents:
        try:
            dataclasses.replace(base, order_size=parent.size, side=parent.side)  # type: ignore[arg-type]
        except SettingError as exc:
            shown = exc.render(lambda name: "size" if name == "order_size" else flag_for(name))
            raise UserError(f"{args.parents} line {parent.line}, column size: {shown}") from None
    fees = load_fee_table(args.venues, fee=args.fee, rebate=args.rebate)
    reports_dir = Path(args.reports_dir)
    router = ParentRouter(args, parents, base, fees, reports_dir, {})
    if args.csv:
        router.route_offline()
        print_json({"reports_dir": str(reports_dir), "reports": router.written, "failed": router.failed})
        return EXIT_INCOMPLETE if router.failed else 0
    settings = kafka_settings_from(args)
    check_reachable(settings, args.connect_timeout)
    already = reported(reports_dir, parents)
    if already:
        log.info("%d of %d parents already have a report in %s", len(already), len(parents), reports_dir)
    router.source = {"source": f"kafka:{args.topic}", "group": args.group, "member": args.instance_id}
    seen = [len(already)]

    def is_done() -> bool:
        count = len(reported(reports_dir, parents))
        if count != seen[0]:
            seen[0] = count
            member.touch()  # another member's progress: the group is not idle
        return count == len(parents)

    member = GroupMember(
        settings,
        GroupSettings(
            topic=args.topic,
            group=args.group,
            instance_id=args.instance_id,
            symbols=frozenset(p.symbol for p in parents),
            levels=base.book_levels,
            idle_timeout=args.idle_timeout,
        ),
        router.on_replay,
        is_done,
    )
    log.info(
        "routing %d parents of %s as group %s%s on %s",
        len(parents),
        args.parents,
        args.group,
        f" (instance {args.instance_id})" if args.instance_id else "",
        args.topic,
    )
    stats = member.run()
    missing = [p.id for p in parents if p not in reported(reports_dir, parents)]
    print_json(
        {
            "group": args.group,
            "instance_id": args.instance_id,
            "topic": args.topic,
            "reports_dir": str(reports_dir),
            "stop_reason": stats.stop_reason,
            "assignments": stats.assignments,
            "revocations": stats.revocations,
            "partitions_lost": stats.lost,
            "replays": stats.replays_done,
            "reports_written": router.written,
            "failed": router.failed,
            "messages": stats.messages,
            "duplicates_dropped": stats.duplicates,
            "undecodable_skipped": stats.undecodable,
            "pending_at_stop": stats.pending_at_stop,
            "parents": len(parents),
            "missing": missing,
        }
    )
    if stats.stop_reason == "interrupted":
        return EXIT_INTERRUPTED_CONSUMER
    if router.failed:
        log.warning("%d parent(s) could not be routed (their report files say why)", len(router.failed))
        return EXIT_INCOMPLETE
    if missing:
        log.warning(
            "stopped (%s) with %d of %d parents unreported: %s",
            stats.stop_reason.replace("_", " "),
            len(missing),
            len(parents),
            ", ".join(missing[:20]),
        )
        return EXIT_INCOMPLETE
    return 0


def _check_group_flags(args: argparse.Namespace) -> None:
    if not args.reports_dir:
        raise UserError("--parents writes one report per parent: give --reports-dir DIR")
    if not args.csv and not args.group:
        raise UserError(
            "--parents reads Kafka as one member of a consumer group: give --group NAME (the same for every process)"
        )
    for flag, value in (
        ("--fills", args.fills),
        ("--plot", args.plot),
        ("--decisions", args.decisions),
        ("--live", args.live),
    ):
        if value:
            raise UserError(f"{flag} is not available with --parents (it writes one report per parent)")
    if args.symbol:
        raise UserError("--symbol is not used with --parents: the parents file names each order's symbol")
    if args.instance_id and args.csv:
        raise UserError("--instance-id is for Kafka group members; drop it with --csv")
