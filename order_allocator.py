#!/usr/bin/env python3
"""Route a parent order across venues tick by tick and compare it with best-ask, TWAP and VWAP.

Kafka mode (default): consume a replay from the topic. Offline: `--csv FILE`. Both run the same
pipeline and print the same JSON report on stdout; progress and logs go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from allocator.allocation.outflow import DEFAULT_SAMPLES
from allocator.cli.common import (
    add_data_flags,
    add_kafka_flags,
    csv_path,
    explicit_window,
    kafka_settings_from,
    non_negative_number,
    parse_grid,
    print_json,
    run_main,
    setup_logging,
    window_from,
)
from allocator.data.loader import DEFAULT_CALIBRATION_SECONDS, MarketData, calibration_to_ns, load
from allocator.data.venues import load_fee_table
from allocator.data.window import NS_PER_SECOND
from allocator.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED_CONSUMER, UserError
from allocator.execution.realistic import (
    DEFAULT_HORIZON_SECONDS,
    DEFAULT_SA_ITERATIONS,
    DEFAULT_WARMUP_SECONDS,
    SOLVERS,
    SimSettings,
)
from allocator.execution.simulator import NS_PER_MS, QUEUE_MODELS, Latency, QueueModel
from allocator.kafka.consumer import (
    StreamStats,
    consume_replay,
    default_group,
    state_directory,
    stream_market_data,
)
from allocator.kafka.live import LiveRouter
from allocator.kafka.producer import check_reachable
from allocator.pipeline import MODES, RunConfig, run, write_decisions, write_fills
from allocator.report.plot import plot_executions
from allocator.search import DEFAULT_LAMBDA_OVER, DEFAULT_LAMBDA_UNDER, DEFAULT_THETA_QUEUE
from allocator.snapshots.side import SIDES

log = logging.getLogger("order_allocator")


def _values(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="order_allocator.py",
        description="Route a parent order across venues and report its cost against best-ask, TWAP and VWAP.",
    )
    add_data_flags(parser, csv_help="read this file instead of consuming Kafka (offline run)")
    order = parser.add_argument_group("order and model")
    order.add_argument("--order-size", type=int, default=5000, help="shares to buy (default 5000)")
    order.add_argument("--step", type=int, default=100, help="allocation granularity in shares (default 100)")
    order.add_argument(
        "--mode",
        choices=MODES,
        default="faithful",
        help="faithful = the specification's router on snapshots; cont-kukanov = market + limit orders in the "
        "execution simulator (queues, depletion, depth, latency); default faithful",
    )
    order.add_argument(
        "--side", choices=SIDES, default="buy", help="buy (take asks, post bids) or sell; default buy"
    )
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
    realistic = parser.add_argument_group("realistic model (--mode cont-kukanov)")
    realistic.add_argument(
        "--horizon",
        default=f"{DEFAULT_HORIZON_SECONDS:g}",
        help=f"seconds between re-solves of the market/limit split (default {DEFAULT_HORIZON_SECONDS:g})",
    )
    realistic.add_argument(
        "--warmup",
        default=f"{DEFAULT_WARMUP_SECONDS:g}",
        help="seconds of outflow history the router needs before its first decision; taken from rows before "
        "the window when the file has them (then every strategy starts at the window start), otherwise "
        f"every strategy's arrival waits for the missing part (default {DEFAULT_WARMUP_SECONDS:g})",
    )
    realistic.add_argument(
        "--calibration",
        default=f"{DEFAULT_CALIBRATION_SECONDS:g}",
        help="seconds of history before each decision the outflow estimator may use, including rows before "
        f"the window, which are loaded for it and never traded (default {DEFAULT_CALIBRATION_SECONDS:g})",
    )
    realistic.add_argument(
        "--solver",
        choices=SOLVERS,
        default="exact",
        help="exact: the certified minimum of the sample problem (HiGHS LP, integer model where the problem "
        "is not convex); sa: the paper's stochastic approximation; default exact",
    )
    realistic.add_argument(
        "--outflow-samples",
        type=int,
        default=DEFAULT_SAMPLES,
        help=f"bootstrap samples of queue outflow per decision (default {DEFAULT_SAMPLES})",
    )
    realistic.add_argument(
        "--latency-ms", default="1", help="order-entry latency in milliseconds, every strategy (default 1)"
    )
    realistic.add_argument(
        "--jitter-ms", default="0", help="extra uniform random latency in [0, this] milliseconds (default 0)"
    )
    realistic.add_argument(
        "--queue-model",
        choices=QUEUE_MODELS,
        default="conservative",
        help="conservative: only trades move a resting order forward; probabilistic: cancellations do too, "
        "in proportion (ahead^p : behind^p); default conservative",
    )
    realistic.add_argument(
        "--queue-power", default="2", help="p of the probabilistic queue model (default 2)"
    )
    realistic.add_argument(
        "--sa-iterations",
        type=int,
        default=DEFAULT_SA_ITERATIONS,
        help=f"stochastic-approximation steps per decision with --solver sa (default {DEFAULT_SA_ITERATIONS})",
    )
    realistic.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for outflow bootstrap, SA sampling and latency jitter (default 0)",
    )
    add_kafka_flags(parser)
    stream = parser.add_argument_group("stream (Kafka mode, when --csv is not given)")
    stream.add_argument(
        "--group", help="consumer group id (default: a fresh id per run, reading from the start)"
    )
    stream.add_argument(
        "--idle-timeout",
        type=float,
        default=30.0,
        help="stop after this many seconds without messages (default 30); the report then says so",
    )
    stream.add_argument(
        "--state-dir",
        default=".sor_state",
        help="where a named --group keeps its checkpoint so a restarted consumer resumes (default .sor_state)",
    )
    stream.add_argument("--strict", action="store_true", help="exit non-zero when the stream was incomplete")
    stream.add_argument("--live", action="store_true", help="print each tick's routing decision to stderr")
    out = parser.add_argument_group("output")
    out.add_argument(
        "--fills", metavar="FILE.csv", help="write every child fill (router and baselines) to this CSV"
    )
    out.add_argument(
        "--decisions",
        metavar="FILE.jsonl",
        help="--mode cont-kukanov: write every router decision of every grid point (inputs, answer, "
        "certificate) as one JSON object per line",
    )
    out.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw cumulative shares and cost over time for the router and each baseline (matplotlib)",
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
        side=args.side,
        sim=sim_settings_from(args),
    )


def sim_settings_from(args: argparse.Namespace) -> SimSettings:
    """The realistic model's flags, each checked with a one-line error naming it."""
    horizon = non_negative_number(args.horizon, "--horizon", "seconds, e.g. --horizon 30")
    if horizon <= 0:
        raise UserError(f"--horizon {args.horizon}: must be more than 0 seconds")
    warmup = non_negative_number(args.warmup, "--warmup", "seconds, e.g. --warmup 10")
    latency = non_negative_number(args.latency_ms, "--latency-ms", "milliseconds, e.g. --latency-ms 1")
    jitter = non_negative_number(args.jitter_ms, "--jitter-ms", "milliseconds, e.g. --jitter-ms 0.5")
    power = non_negative_number(args.queue_power, "--queue-power", "e.g. --queue-power 2")
    if power <= 0:
        raise UserError(f"--queue-power {args.queue_power}: must be more than 0")
    if args.sa_iterations < 1:
        raise UserError(f"--sa-iterations {args.sa_iterations}: must be at least 1")
    if args.outflow_samples < 1:
        raise UserError(f"--outflow-samples {args.outflow_samples}: must be at least 1")
    calibration = non_negative_number(args.calibration, "--calibration", "seconds, e.g. --calibration 120")
    if calibration <= 0 and args.mode == "cont-kukanov":
        raise UserError(
            f"--calibration {args.calibration}: the outflow estimator needs history; give seconds > 0"
        )
    return SimSettings(
        horizon_ns=round(horizon * NS_PER_SECOND),
        warmup_ns=round(warmup * NS_PER_SECOND),
        latency=Latency(entry_ns=round(latency * NS_PER_MS), jitter_ns=round(jitter * NS_PER_MS)),
        queue_model=QueueModel(kind=args.queue_model, power=power),
        sa_iterations=args.sa_iterations,
        seed=args.seed,
        solver=args.solver,
        outflow_samples=args.outflow_samples,
        calibration_ns=calibration_to_ns(calibration),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    config = config_from(args)
    if args.live and (config.realistic or config.side != "buy"):
        raise UserError(
            "--live prints the faithful buy router's decisions; use it with --mode faithful --side buy"
        )
    if args.decisions and not config.realistic:
        raise UserError("--decisions logs the cont-kukanov router's solves; use it with --mode cont-kukanov")
    fees = load_fee_table(args.venues, fee=args.fee, rebate=args.rebate)
    levels = None if config.realistic else 1  # the realistic mode walks the depth; faithful needs the top
    # history before the window feeds only the realistic mode's outflow estimator
    calibration_ns = config.sim.calibration_ns if config.realistic else 0
    started = time.perf_counter()
    stream: StreamStats | None = None
    if args.csv:
        path = csv_path(args)
        data = load(
            path,
            window_from(args),
            levels=levels,
            symbol=args.symbol,
            price_format=args.price_format,
            calibration_ns=calibration_ns,
        )
        log.info("loaded %d rows in %s from %s", data.rows_in_window, data.window.describe(), path)
        run_meta: dict = {"source": f"csv:{path}", "rows_in_file": data.rows_total}
    else:
        data, stream, run_meta = _consume(args, config, levels, calibration_ns)
    result = run(data, fees, config)
    report = result.report
    report["status"] = "complete" if stream is None or stream.complete else "incomplete"
    report["run"] = run_meta | {
        "fee_table": fees.path,
        "fee_override": fees.overridden or None,
        "grid_workers": result.search.workers,
        "elapsed_seconds": round(time.perf_counter() - started, 3),
    }
    if args.fills:
        rows = write_fills(result, args.fills)
        log.info("wrote %d fills to %s", rows, args.fills)
    if args.decisions:
        lines = write_decisions(result, args.decisions)
        log.info("wrote %d router decisions to %s", lines, args.decisions)
    if args.plot:
        plot_executions(result, args.plot)
        log.info("wrote the plot to %s", args.plot)
    print_json(report)
    if stream is not None and stream.stop_reason == "interrupted":
        return EXIT_INTERRUPTED_CONSUMER
    if stream is not None and not stream.complete:
        log.warning("the stream was incomplete (%s): the report covers only what arrived", _why(stream))
        for gap in stream.venue_gaps[:10]:
            log.warning(
                "  gap at publisher_id %s: sequence after %s, before %s",
                gap["publisher_id"],
                gap["after_sequence"],
                gap["before_sequence"],
            )
        return EXIT_INCOMPLETE if args.strict else 0
    return 0


def _consume(
    args: argparse.Namespace, config: RunConfig, levels: int | None, calibration_ns: int
) -> tuple[MarketData, StreamStats, dict]:
    """Kafka mode: read one replay from the topic and turn it into the loader's MarketData."""
    settings = kafka_settings_from(args)
    check_reachable(settings, args.connect_timeout)
    group = args.group or default_group()
    state = state_directory(args.state_dir, group, args.topic) if args.group else None
    live = (
        LiveRouter(config, load_fee_table(args.venues, fee=args.fee, rebate=args.rebate))
        if args.live
        else None
    )
    log.info("consuming %s from %s as group %s", args.topic, settings["bootstrap.servers"], group)
    result = consume_replay(
        settings,
        args.topic,
        group=group,
        idle_timeout=args.idle_timeout,
        state_dir=state,
        on_rows=live.on_rows if live else None,
        levels=levels,
    )
    stats = result.stats
    if not result.start:
        raise UserError(
            f"no replay arrived on topic {args.topic!r} within {args.idle_timeout:g} s "
            "(start kafka_producer.py, or raise --idle-timeout)",
            exit_code=EXIT_INTERRUPTED_CONSUMER if stats.stop_reason == "interrupted" else EXIT_INCOMPLETE,
        )
    if live:
        live.finish()
    log.info(
        "stream ended (%s): %d rows, %d duplicates dropped, %d undecodable",
        _why(stats),
        stats.rows_received,
        stats.duplicates,
        stats.undecodable,
    )
    data = stream_market_data(result, args.topic, explicit_window(args), calibration_ns=calibration_ns)
    meta = {
        "source": f"kafka:{args.topic}",
        "run_id": result.start.get("run_id"),
        "replayed_file": result.start.get("source"),
        "group": group,
        "stream": {
            "stop_reason": stats.stop_reason,
            "messages": stats.messages,
            "rows_expected": stats.expected_rows,
            "rows_received": stats.rows_received,
            "duplicates_dropped": stats.duplicates,
            "undecodable_skipped": stats.undecodable,
            "undecodable_examples": stats.undecodable_examples,
            "missing_rows": stats.missing_rows,
            "missing_ranges": stats.missing_ranges,
            "missing_by_venue": stats.missing_by_venue,
            "venue_gaps": stats.venue_gaps,
            "resumed_from_checkpoint": stats.resumed_from_checkpoint,
            "replays_seen": stats.replays_seen,
            "ingest_msgs_per_second": round(stats.ingest_rate, 1),
        },
    }
    if len(data.frame) == 0:
        raise UserError(
            f"the replay on {args.topic!r} delivered no rows in the window ({_why(stats)})",
            exit_code=EXIT_INTERRUPTED_CONSUMER if stats.stop_reason == "interrupted" else EXIT_INCOMPLETE,
        )
    return data, stats, meta


def _why(stats: StreamStats) -> str:
    text = stats.stop_reason.replace("_", " ")
    if stats.missing_rows:
        text += f", {stats.missing_rows} of {stats.expected_rows} rows missing"
    return text


if __name__ == "__main__":
    sys.exit(run_main("order_allocator.py", main, interrupted_code=EXIT_INTERRUPTED_CONSUMER))
