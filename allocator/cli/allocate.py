"""`order_allocator.py`: its flags, turning them into a RunConfig, and the run (offline or from Kafka).

The script itself only builds the parser and calls `main`; every rule about values lives in
allocator.config (validated once there) and the errors it raises name settings, which `run_main` renders as
these flags.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from typing import Any

from allocator.allocation.outflow import DEFAULT_SAMPLES
from allocator.cli.common import (
    DEFAULT_CSV,
    add_verbose_flag,
    explicit_window,
    kafka_settings_from,
    number_flag,
    parse_grid,
    parse_number,
    print_json,
    setup_logging,
    window_from,
)
from allocator.cli.input_file import load_input
from allocator.cli.live_run import LiveRun, add_routing_flags, check_flags
from allocator.config import (
    DEFAULT_HORIZON_SECONDS,
    DEFAULT_LAMBDA_OVER,
    DEFAULT_LAMBDA_UNDER,
    DEFAULT_SA_ITERATIONS,
    DEFAULT_THETA_QUEUE,
    DEFAULT_WARMUP_SECONDS,
    MODES,
    SOLVERS,
    PenaltyGrid,
    RunConfig,
    SimSettings,
)
from allocator.data.loader import DEFAULT_CALIBRATION_SECONDS, MarketData
from allocator.data.venues import FeeTable, load_fee_table
from allocator.errors import UserError
from allocator.execution.models import QUEUE_MODELS
from allocator.kafka.admin import check_reachable
from allocator.kafka.checkpoint import state_directory
from allocator.kafka.consumer import consume_replay, default_group, stream_market_data
from allocator.kafka.replay_state import StreamStats
from allocator.kafka.stream_progress import ReplayProgress
from allocator.pipeline import RunResult, run
from allocator.progress import Progress
from allocator.report.build import with_run_sections
from allocator.report.ledger import fills_frame, write_decisions, write_fills
from allocator.report.plot import plot_executions
from allocator.snapshots.side import SIDES

log = logging.getLogger(__name__)


def _values(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


def add_size_flags(group: argparse._ArgumentGroup, order_help: str) -> None:
    """--order-size and --step, shared by order_allocator.py and the study."""
    group.add_argument(
        "--order-size",
        type=number_flag("--order-size", "shares, e.g. --order-size 5000", integer=True, minimum=1),
        default=5000,
        help=f"{order_help} (default 5000)",
    )
    group.add_argument(
        "--step",
        type=number_flag("--step", "shares, e.g. --step 100", integer=True, minimum=1),
        default=100,
        help="allocation granularity in shares (default 100)",
    )


def add_order_flags(parser: argparse.ArgumentParser) -> None:
    """The parent order, the mode and the penalty grid."""
    order = parser.add_argument_group("order and model")
    add_size_flags(order, "shares to buy, or to sell with --side sell")
    order.add_argument(
        "--mode",
        choices=MODES,
        default="faithful",
        help="faithful = the specification's router on snapshots; cont-kukanov = market + limit orders in the "
        "execution simulator (queues, depletion, depth, latency); default faithful",
    )
    order.add_argument(
        "--side",
        choices=SIDES,
        default="buy",
        help="buy (take asks, post bids) or sell (hit bids, post asks); default buy. The report keeps its key "
        "names on a sell: best_ask is then the best-bid baseline (it hits the highest bid)",
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
        "--jobs",
        type=number_flag("--jobs", "worker processes, e.g. --jobs 2", integer=True, minimum=1, maximum=1024),
        help="worker processes for the grid (default: all cores when it pays)",
    )


def add_realistic_flags(
    parser: argparse.ArgumentParser,
    title: str = "realistic model (--mode cont-kukanov)",
    horizon_seconds: float = DEFAULT_HORIZON_SECONDS,
) -> None:
    """The realistic model's settings (allocator.config.SimSettings), in seconds and milliseconds.

    One argument per setting, so it runs past 60 lines: splitting it would only scatter the flag list."""
    realistic = parser.add_argument_group(title)
    realistic.add_argument(
        "--horizon",
        default=f"{horizon_seconds:g}",
        help=f"seconds between re-solves of the market/limit split (default {horizon_seconds:g})",
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
        type=number_flag(
            "--outflow-samples", "e.g. --outflow-samples 200", integer=True, minimum=1, maximum=1e6
        ),
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
        type=number_flag(
            "--sa-iterations", "e.g. --sa-iterations 4000", integer=True, minimum=1, maximum=1e8
        ),
        default=DEFAULT_SA_ITERATIONS,
        help=f"stochastic-approximation steps per decision with --solver sa (default {DEFAULT_SA_ITERATIONS})",
    )
    realistic.add_argument(
        "--seed",
        type=number_flag(
            "--seed", "a whole number ≥ 0, e.g. --seed 0", integer=True, minimum=0, maximum=2**63 - 1
        ),
        default=0,
        help="seed for outflow bootstrap, SA sampling and latency jitter (default 0)",
    )


def add_stream_flags(parser: argparse.ArgumentParser) -> None:
    """How the Kafka consumer reads a replay."""
    stream = parser.add_argument_group("stream (Kafka mode, when --csv is not given)")
    stream.add_argument(
        "--group", help="consumer group id (default: a fresh id per run, reading from the start)"
    )
    stream.add_argument(
        "--idle-timeout",
        type=number_flag("--idle-timeout", "seconds, e.g. --idle-timeout 30", above=0, maximum=86400 * 7),
        default=30.0,
        help="stop after this many seconds without messages (default 30); the report then says so",
    )
    stream.add_argument(
        "--state-dir",
        default=".sor_state",
        help="where a named --group keeps its checkpoint so a restarted consumer resumes (default .sor_state)",
    )
    stream.add_argument("--strict", action="store_true", help="exit non-zero when the stream was incomplete")
    stream.add_argument(
        "--live",
        action="store_true",
        help="print every decision of the live router to stderr as the ticks arrive (waits summarised, at most "
        "one line a second); with --csv the file's rows are fed to it as a replay would stream them",
    )
    add_routing_flags(stream)


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    """Files written besides the JSON report, and verbosity."""
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
        help="draw every child fill (venue, taker/maker/clean-up), cumulative shares and the shortfall against "
        "the arrival mid over time, for the router and each baseline (matplotlib)",
    )
    add_verbose_flag(out)
    out.add_argument(
        "-q", "--quiet", action="store_true", help="no progress on stderr (warnings and errors still show)"
    )


def config_from(args: argparse.Namespace) -> RunConfig:
    return RunConfig(
        order_size=args.order_size,
        step=args.step,
        grid=PenaltyGrid(
            lambda_over=parse_grid(args.lambda_over, DEFAULT_LAMBDA_OVER, "--lambda-over"),
            lambda_under=parse_grid(args.lambda_under, DEFAULT_LAMBDA_UNDER, "--lambda-under"),
            theta_queue=parse_grid(args.theta_queue, DEFAULT_THETA_QUEUE, "--theta-queue"),
        ),
        mode=args.mode,
        jobs=args.jobs,
        side=args.side,
        sim=sim_settings_from(args),
    )


def sim_settings_from(args: argparse.Namespace) -> SimSettings:
    """The realistic model's flags as numbers; SimSettings checks their ranges."""
    return SimSettings.from_units(
        horizon_seconds=parse_number(args.horizon, "--horizon", "seconds, e.g. --horizon 30"),
        warmup_seconds=parse_number(args.warmup, "--warmup", "seconds, e.g. --warmup 10"),
        latency_ms=parse_number(args.latency_ms, "--latency-ms", "milliseconds, e.g. --latency-ms 1"),
        jitter_ms=parse_number(args.jitter_ms, "--jitter-ms", "milliseconds, e.g. --jitter-ms 0.5"),
        queue=args.queue_model,
        queue_power=parse_number(args.queue_power, "--queue-power", "e.g. --queue-power 2"),
        sa_iterations=args.sa_iterations,
        seed=args.seed,
        solver=args.solver,
        outflow_samples=args.outflow_samples,
        calibration_seconds=parse_number(
            args.calibration, "--calibration", "seconds, e.g. --calibration 120"
        ),
    )


def main(args: argparse.Namespace) -> int:
    """One run: load the file or consume the replay, route and compare, write the files asked for, print
    the JSON report on stdout; the exit code says whether the stream was complete."""
    setup_logging(args.verbose)
    config = config_from(args)
    _check_combinations(args, config)
    fees = load_fee_table(args.venues, fee=args.fee, rebate=args.rebate)
    started = time.perf_counter()
    stream: StreamStats | None = None
    live: LiveRun | None = None
    if args.csv:
        data, source = _load_offline(args, config)
        if args.live:
            live = LiveRun(args, config, fees)
            live.route_file(data)
    else:
        data, stream, source, live = _consume(args, config, fees)
    grid = Progress(len(config.grid.points()), "grid", quiet=args.quiet, unit="point", silent_if_fast=True)
    try:
        result = run(data, fees, config, on_point=grid.advance)
    finally:
        grid.close()
    report = with_run_sections(
        result.report,
        complete=stream is None or stream.complete,
        source=source,
        fee_table=fees,
        grid_workers=result.search.workers,
        elapsed_seconds=time.perf_counter() - started,
    )
    live_code = live.add_to_report(report, result) if live is not None else 0
    _write_files(args, result)
    print_json(report)
    return _exit_code(args, stream) or live_code


def _check_combinations(args: argparse.Namespace, config: RunConfig) -> None:
    """Flags that only make sense together."""
    check_flags(args)
    if args.decisions and not config.realistic:
        raise UserError("--decisions logs the cont-kukanov router's solves; use it with --mode cont-kukanov")


def _load_offline(args: argparse.Namespace, config: RunConfig) -> tuple[MarketData, dict[str, Any]]:
    data = load_input(
        args.csv,
        DEFAULT_CSV,
        window_from(args),
        levels=config.book_levels,
        symbol=args.symbol,
        price_format=args.price_format,
        calibration_ns=config.calibration_ns,
        depth_side=config.depth_side,
    )
    log.info("loaded %d rows in %s from %s", data.rows_in_window, data.window.in_words(), data.source)
    return data, {"source": f"csv:{data.source}", "rows_in_file": data.rows_total}


def _write_files(args: argparse.Namespace, result: RunResult) -> None:
    snaps = result.market.snapshots
    if args.fills:
        rows = write_fills(fills_frame(result.executions().values(), snaps, result.venue_names), args.fills)
        log.info("wrote %d fills to %s", rows, args.fills)
    if args.decisions:
        lines = write_decisions(result.search.points, snaps, args.decisions)
        log.info("wrote %d router decisions to %s", lines, args.decisions)
    if args.plot:
        plot_executions(
            result.executions(),
            result.market,
            result.config.mode,
            args.plot,
            venue_names=result.venue_names,
            sim_market=result.sim_market,
        )
        log.info("wrote the plot to %s", args.plot)


def _exit_code(args: argparse.Namespace, stream: StreamStats | None) -> int:
    """0, or why the stream's report is partial (StreamStats.exit_code); an incomplete stream is explained."""
    if stream is None:
        return 0
    if not stream.interrupted and not stream.complete:
        log.warning("the stream was incomplete (%s): the report covers only what arrived", stream.why())
        for gap in stream.venue_gaps[:10]:
            log.warning(
                "  gap at publisher_id %s: sequence after %s, before %s",
                gap["publisher_id"],
                gap["after_sequence"],
                gap["before_sequence"],
            )
    return stream.exit_code(strict=args.strict)


def _consume(
    args: argparse.Namespace, config: RunConfig, fees: FeeTable
) -> tuple[MarketData, StreamStats, dict[str, Any], LiveRun]:
    """Kafka mode: read one replay from the topic and turn it into the loader's MarketData."""
    settings = kafka_settings_from(args)
    check_reachable(settings, args.connect_timeout)
    group = args.group or default_group()
    state = state_directory(args.state_dir, group, args.topic) if args.group else None
    live = LiveRun(args, config, fees, settings)
    publisher = live.publisher
    log.info("consuming %s from %s as group %s", args.topic, settings["bootstrap.servers"], group)
    result = consume_replay(
        settings,
        args.topic,
        group=group,
        idle_timeout=args.idle_timeout,
        state_dir=state,
        levels=config.book_levels,
        progress=ReplayProgress(quiet=args.quiet),
        listener=live.feed(explicit_window(args)),
        commit=publisher.commit_offsets if publisher is not None and publisher.transactional else None,
    )
    live.end_of_stream()
    stats = result.stats
    if not result.start:
        raise UserError(
            f"no replay arrived on topic {args.topic!r} within {args.idle_timeout:g} s "
            "(start kafka_producer.py, or raise --idle-timeout)",
            exit_code=stats.failure_exit_code,
        )
    log.info(
        "stream ended (%s): %d rows, %d duplicates dropped, %d undecodable",
        stats.why(),
        stats.rows_received,
        stats.duplicates,
        stats.undecodable,
    )
    data = stream_market_data(
        result, args.topic, explicit_window(args), calibration_ns=config.calibration_ns, symbol=args.symbol
    )
    meta = {
        "source": f"kafka:{args.topic}",
        "run_id": result.start.get("run_id"),
        "replayed_file": result.start.get("source"),
        "group": group,
        "stream": stats.report(),
    }
    if len(data.frame) == 0:
        raise UserError(
            f"the replay on {args.topic!r} delivered no rows in the window ({stats.why()})",
            exit_code=stats.failure_exit_code,
        )
    return data, stats, meta, live
