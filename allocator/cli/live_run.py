"""order_allocator.py's streaming side: the live router, its --live printer and routing topics, and the
report's `run.live` / `run.latency` sections with the proof that the live router did what the offline one
does (allocator.stream.engine).

In Kafka mode the engine always runs, so every run checks itself; --live only prints. With --csv and
--live the file's rows are fed to the same engine in the order a replay would stream them.
"""

from __future__ import annotations

import argparse
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from allocator.allocation.penalties import Penalties
from allocator.cli.common import parse_number
from allocator.config import RunConfig
from allocator.data.loader import MarketData, frame_with_history
from allocator.data.venues import FeeTable
from allocator.errors import EXIT_LIVE_MISMATCH, UserError
from allocator.kafka.live import StreamFeed
from allocator.kafka.producer import event_frame
from allocator.kafka.routing import RoutingPublisher
from allocator.pipeline import RunResult
from allocator.stream.engine import LivePoint, Sink, StreamEngine, live_point
from allocator.stream.events import parent_id
from allocator.stream.printer import LivePrinter

log = logging.getLogger(__name__)
OFFLINE_BATCH = 2_000  # rows per batch when a file is fed to the live router (--csv --live)


def add_routing_flags(group: argparse._ArgumentGroup) -> None:
    """The live router's penalty point and its output topics."""
    group.add_argument(
        "--live-penalties",
        metavar="LO,LU,TQ",
        help="the penalty point the live router uses (λ_over,λ_under,θ_queue); default: the grid's point when "
        "it has one, else its first point",
    )
    group.add_argument(
        "--orders-topic", help="write every child order to this topic (docs/routing_topics.md)"
    )
    group.add_argument(
        "--fills-topic", help="write every simulated fill to this topic (docs/routing_topics.md)"
    )
    group.add_argument(
        "--transactional-id",
        help="write the routing topics in transactions with the consumer's offsets (exactly-once where the "
        "broker honours them: noida-db yes, Tansu no; docs/brokers.md)",
    )


def check_flags(args: argparse.Namespace) -> None:
    """Routing topics need a broker: they exist in Kafka mode only."""
    if args.csv and (args.orders_topic or args.fills_topic or args.transactional_id):
        raise UserError("--orders-topic, --fills-topic and --transactional-id need Kafka mode; drop --csv")
    if args.transactional_id and not (args.orders_topic or args.fills_topic):
        raise UserError("--transactional-id writes the routing topics; give --orders-topic or --fills-topic")
    if args.live_penalties is not None:
        _penalties(args.live_penalties)


def chosen_point(args: argparse.Namespace, config: RunConfig) -> LivePoint:
    text = getattr(args, "live_penalties", None)
    return live_point(config.grid, None if text is None else _penalties(text))


def _penalties(text: str) -> Penalties:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise UserError(
            f"--live-penalties {text!r}: give three values λ_over,λ_under,θ_queue, e.g. 0.2,0.5,0.1"
        )
    values = [parse_number(p, "--live-penalties", "e.g. --live-penalties 0.2,0.5,0.1") for p in parts]
    if any(v < 0 for v in values):
        raise UserError(f"--live-penalties {text!r}: every value must be ≥ 0")
    return Penalties(*values)


@dataclass
class LiveRun:
    """One run's live router: built per replay (a newer replay starts a new one), reported at the end."""

    args: argparse.Namespace
    config: RunConfig
    fees: FeeTable
    settings: dict[str, str] | None = None  # Kafka mode: the client settings (routing topics)
    point: LivePoint = field(init=False)
    publisher: RoutingPublisher | None = None
    engine: StreamEngine | None = None

    def __post_init__(self) -> None:
        self.point = chosen_point(self.args, self.config)
        args = self.args
        if self.settings is not None and (args.orders_topic or args.fills_topic):
            self.publisher = RoutingPublisher(
                self.settings, args.orders_topic, args.fills_topic, transactional_id=args.transactional_id
            )

    def new_engine(self, start: dict[str, Any]) -> StreamEngine:
        config, args = self.config, self.args
        sinks: list[Sink] = []
        if args.live:
            printer = LivePrinter(config.order_size, config.side)
            pen = self.point.penalties
            printer.header(
                f"{config.mode} {config.side} {config.order_size} shares at λ_over {pen.lambda_over:g}, "
                f"λ_under {pen.lambda_under:g}, θ_queue {pen.theta_queue:g} ({self.point.source})"
            )
            sinks.append(printer)
        if self.publisher is not None:
            sinks.append(self.publisher)
        routing = {
            "mode": config.mode,
            "side": config.side,
            "order_size": config.order_size,
            "step": config.step,
            "penalties": self.point.report(),
            "model": config.sim.report() if config.realistic else None,
            "window": [args.start, args.end],
        }
        run_id = str(start.get("run_id", "offline"))
        self.engine = StreamEngine(
            config,
            self.fees,
            self.point,
            parent=parent_id(run_id, args.symbol, config.side, routing),
            symbol=args.symbol,
            sinks=sinks,
            source=f"kafka:{args.topic}" if self.settings is not None else "csv",
        )
        return self.engine

    def feed(self, window_spec: Any) -> StreamFeed:
        return StreamFeed(self.new_engine, window_spec, self.args.symbol)

    def end_of_stream(self) -> None:
        """The consumer returned: a stream that stopped without its end message ends here."""
        if self.engine is not None:
            self.engine.end()

    def route_file(self, data: MarketData) -> None:
        """--csv --live: the file's rows in replay order, in batches, through the engine."""
        engine = self.new_engine({"run_id": "offline"})
        engine.set_window(data.window)
        frame = event_frame(frame_with_history(data))
        # numpy columns once, sliced per batch (a frame sliced per batch costs ~10 ms a batch in pandas)
        rows = {str(name): frame[name].to_numpy() for name in frame.columns if engine.wants(str(name))}
        rows["n"] = np.arange(len(frame))  # the replay index a replay's rows carry
        rng = random.Random(0)
        at = 0
        while at < len(frame):
            size = rng.randint(1, OFFLINE_BATCH)
            engine.feed({name: values[at : at + size] for name, values in rows.items()})
            at += size
        engine.end()

    def add_to_report(self, report: dict[str, Any], result: RunResult) -> int:
        """run.live and run.latency; a live router that did not do what the offline one does is an error."""
        engine = self.engine
        if engine is None:
            return 0
        live, latency, mismatch = engine.summary(result)
        if self.publisher is not None:
            live |= self.publisher.report()
        report["run"]["live"] = live
        if self.settings is not None:  # from a file there is no arrival to measure from
            report["run"]["latency"] = latency
        if mismatch is not None:
            log.error("live router differs from the offline router at the live point: %s", mismatch)
            return EXIT_LIVE_MISMATCH
        return 0
