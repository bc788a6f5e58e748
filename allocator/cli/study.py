"""`python -m allocator.study`: many parent orders over many market paths, the router's parameters chosen out
of sample, and router − baseline differences with path-bootstrap confidence intervals, on Dask.

The defaults differ from order_allocator.py's in two places, on purpose: a 10 s horizon and a 2 × 3 × 2
grid, where the README shows the penalties move the decisions (at 30 s every grid point of the default
grid makes the same fills, so there would be nothing to choose).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from allocator.cli.allocate import add_realistic_flags, add_size_flags, sim_settings_from
from allocator.cli.common import (
    add_fee_flags,
    add_version_flag,
    number_flag,
    parse_grid,
    parse_number,
    print_json,
    run_main,
    setup_logging,
)
from allocator.cli.config_file import add_config_flag, parse_with_config
from allocator.config import PenaltyGrid, RunConfig
from allocator.data.loader import PRICE_FORMATS
from allocator.data.venues import load_fee_table
from allocator.data.window import NS_PER_SECOND
from allocator.errors import UserError
from allocator.study.engine import IN_PROCESS, LOCAL, engine_for
from allocator.study.orders import ARRIVAL_SPACINGS
from allocator.study.paths import DEFAULT_PATH_MINUTES, PathSource, file_sources, synthetic_sources
from allocator.study.plan import (
    DEFAULT_ARRIVALS,
    DEFAULT_BLOCK,
    DEFAULT_ORDER_HORIZON_SECONDS,
    STUDY_HORIZON_SECONDS,
    STUDY_LAMBDA_OVER,
    STUDY_LAMBDA_UNDER,
    STUDY_THETA_QUEUE,
    OrderPlan,
)
from allocator.study.run import run_study
from allocator.study.stats import DEFAULT_RESAMPLES
from allocator.study.summary import DEFAULT_FOLDS, SELECTION_METHODS, SelectionSettings

PROG = "python -m allocator.study"
DEFAULT_CACHE = ".sor_cache/paths"
log = logging.getLogger(__name__)


def _values(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Route many parent orders over many market paths with the cont-kukanov router at every grid "
        "point and the three baselines, choose the grid point out of sample, and report router − baseline "
        "with 95 %% confidence intervals that resample whole paths. JSON on stdout.",
        epilog="--seed also seeds the Poisson arrivals, the folds and the bootstrap, so a rerun prints the same.",
    )
    paths = parser.add_argument_group("market paths")
    paths.add_argument(
        "files", nargs="*", metavar="FILE", help="Databento MBP CSV or DBN files, globs allowed"
    )
    paths.add_argument(
        "--synthetic",
        type=number_flag(
            "--synthetic", "paths, e.g. --synthetic 8", integer=True, minimum=0, maximum=100_000
        ),
        default=0,
        metavar="N",
        help="also N paths from the recorded-data generator",
    )
    paths.add_argument(
        "--path-minutes",
        default=f"{DEFAULT_PATH_MINUTES:g}",
        help=f"length of each synthetic path from 13:35:00 UTC (default {DEFAULT_PATH_MINUTES:g})",
    )
    paths.add_argument(
        "--path-seed",
        type=number_flag("--path-seed", "a whole number ≥ 0", integer=True, minimum=0, maximum=2**63 - 1),
        default=1,
        help="seed of the first synthetic path; the others follow (default 1)",
    )
    paths.add_argument(
        "--cache-dir",
        default=DEFAULT_CACHE,
        help=f"where generated paths are kept by seed, visible to every worker (default {DEFAULT_CACHE})",
    )
    paths.add_argument(
        "--symbol", help="keep only this symbol of each file (needed when a file holds several)"
    )
    paths.add_argument(
        "--price-format", choices=PRICE_FORMATS, default="auto", help="as in order_allocator.py"
    )
    paths.add_argument("--venues", metavar="FILE", help="venue TOML (default allocator/data/venues.toml)")
    add_fee_flags(paths)

    orders = parser.add_argument_group("parent orders")
    orders.add_argument(
        "--arrivals",
        type=number_flag(
            "--arrivals", "orders per path, e.g. --arrivals 8", integer=True, minimum=1, maximum=1_000_000
        ),
        default=DEFAULT_ARRIVALS,
        help=f"orders per path and side (default {DEFAULT_ARRIVALS})",
    )
    orders.add_argument(
        "--spacing",
        choices=ARRIVAL_SPACINGS,
        default="even",
        help="even: centres of equal slices of the usable span; poisson: a seeded Poisson process (default even)",
    )
    orders.add_argument("--sides", default="buy,sell", help="buy, sell or buy,sell (default buy,sell)")
    add_size_flags(orders, "shares per parent order")
    orders.add_argument(
        "--order-horizon",
        type=number_flag("--order-horizon", "seconds, e.g. --order-horizon 120", above=0, maximum=86400 * 7),
        default=DEFAULT_ORDER_HORIZON_SECONDS,
        help="seconds from an order's arrival to its deadline, when the clean-up completes it "
        f"(default {DEFAULT_ORDER_HORIZON_SECONDS:g})",
    )
    orders.add_argument(
        "--lambda-over", help=f"grid of overfill penalties (default {_values(STUDY_LAMBDA_OVER)})"
    )
    orders.add_argument(
        "--lambda-under", help=f"grid of underfill penalties (default {_values(STUDY_LAMBDA_UNDER)})"
    )
    orders.add_argument(
        "--theta-queue", help=f"grid of queue-risk penalties (default {_values(STUDY_THETA_QUEUE)})"
    )

    add_realistic_flags(parser, "realistic model", horizon_seconds=STUDY_HORIZON_SECONDS)

    stats = parser.add_argument_group("selection and statistics")
    stats.add_argument(
        "--selection",
        choices=SELECTION_METHODS,
        default="kfold",
        help="kfold: k-fold by path, every path tested once; holdout: one train/test split of the paths "
        "(default kfold)",
    )
    stats.add_argument(
        "--folds",
        type=number_flag("--folds", "e.g. --folds 4", integer=True, minimum=2, maximum=100_000),
        help=f"k of the k-fold selection (default {DEFAULT_FOLDS}, or the paths if fewer)",
    )
    stats.add_argument(
        "--test-share", default="0.5", help="--selection holdout: share of paths tested (default 0.5)"
    )
    stats.add_argument(
        "--resamples",
        type=number_flag(
            "--resamples",
            "e.g. --resamples 10000; the CI's tails need at least 100",
            integer=True,
            minimum=100,
            maximum=10_000_000,
        ),
        default=DEFAULT_RESAMPLES,
        help=f"path-bootstrap resamples per confidence interval (default {DEFAULT_RESAMPLES})",
    )

    engine = parser.add_argument_group("engine and output")
    engine.add_argument(
        "--scheduler",
        default=LOCAL,
        metavar="ADDRESS",
        help=f"{LOCAL}: a Dask LocalCluster on this machine (default); tcp://HOST:PORT: an existing Dask "
        f"cluster; {IN_PROCESS}: no Dask, one task after the other in this process",
    )
    engine.add_argument(
        "--workers",
        type=number_flag(
            "--workers", "worker processes, e.g. --workers 2", integer=True, minimum=1, maximum=4096
        ),
        help="LocalCluster worker processes (default: this machine's cores)",
    )
    engine.add_argument(
        "--block",
        type=number_flag(
            "--block", "arrivals per task, e.g. --block 4", integer=True, minimum=1, maximum=1_000_000
        ),
        default=DEFAULT_BLOCK,
        help=f"arrivals per task (default {DEFAULT_BLOCK})",
    )
    engine.add_argument(
        "--out",
        metavar="DIR",
        help="keep finished tasks here (a rerun resumes) and write orders.parquet, result.json and paired.png",
    )
    engine.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    engine.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr")
    add_version_flag(parser)
    add_config_flag(parser)
    return parser


def _quiet_dask() -> None:
    """Dask's scheduler runs in this process and logs every worker's start and stop at INFO, on loggers it
    configures itself when imported: keep them to warnings unless -v."""
    import distributed  # noqa: F401  (importing it sets up its loggers, which are then turned down)

    for name in list(logging.root.manager.loggerDict):
        if name == "distributed" or name.startswith("distributed."):
            logging.getLogger(name).setLevel(logging.WARNING)


def _sides(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _sources(args: argparse.Namespace) -> list[PathSource]:
    minutes = parse_number(args.path_minutes, "--path-minutes", "minutes, e.g. --path-minutes 10")
    sources: list[PathSource] = list(file_sources(args.files, args.symbol, args.price_format))
    sources += synthetic_sources(args.synthetic, args.path_seed, minutes, args.cache_dir)
    if not sources:
        raise UserError("no market paths: give data files (globs allowed), --synthetic N, or both")
    return sources


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_with_config(build_parser(), argv)
    setup_logging(args.verbose)
    if not args.verbose and args.scheduler != IN_PROCESS:
        _quiet_dask()
    horizon = args.order_horizon
    config = RunConfig(
        order_size=args.order_size,
        step=args.step,
        grid=PenaltyGrid(
            lambda_over=parse_grid(args.lambda_over, STUDY_LAMBDA_OVER, "--lambda-over"),
            lambda_under=parse_grid(args.lambda_under, STUDY_LAMBDA_UNDER, "--lambda-under"),
            theta_queue=parse_grid(args.theta_queue, STUDY_THETA_QUEUE, "--theta-queue"),
        ),
        mode="cont-kukanov",
        jobs=1,
        sim=sim_settings_from(args),
    )
    orders = OrderPlan(
        arrivals=args.arrivals,
        spacing=args.spacing,
        sides=_sides(args.sides),  # type: ignore[arg-type]  # OrderPlan checks each is a side
        order_horizon_ns=round(horizon * NS_PER_SECOND),
        seed=args.seed,
    )
    selection = SelectionSettings(
        method=args.selection,
        folds=args.folds,
        test_share=parse_number(args.test_share, "--test-share", "a share, e.g. --test-share 0.5"),
        seed=args.seed,
    )
    engine = engine_for(args.scheduler, args.workers)
    fees = load_fee_table(args.venues, fee=args.fee, rebate=args.rebate)
    result = run_study(
        _sources(args),
        orders,
        config,
        fees,
        selection=selection,
        engine=engine,
        out=args.out,
        block=args.block,
        resamples=args.resamples,
        quiet=args.quiet,
    )
    if args.out:
        log.info("wrote orders.parquet, result.json and paired.png to %s", args.out)
    print_json(result.answer)
    return 0


def run(argv: Sequence[str] | None = None) -> int:
    return run_main(PROG, main, argv)
