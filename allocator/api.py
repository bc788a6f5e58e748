"""The Python entry points for notebooks and scripts: `allocator.load`, `allocator.run`, `allocator.run_study`.

Each is the command line's work without the command line: the same loader, the same pipeline and the same
report (`run(...).report` is the dict `order_allocator.py --csv` prints, key for key), with settings
given as keyword arguments named like the flags. Bad settings raise `allocator.errors.UserError` with
the same one-line message the command prints.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from allocator.config import PenaltyGrid, RunConfig, SimSettings
from allocator.data.loader import MarketData
from allocator.data.loader import load as load_file
from allocator.data.venues import FeeTable, load_fee_table
from allocator.data.window import WindowSpec
from allocator.pipeline import RunResult
from allocator.pipeline import run as run_pipeline
from allocator.report.build import with_run_sections
from allocator.report.ledger import fills_frame
from allocator.study.plan import (
    DEFAULT_ARRIVALS,
    DEFAULT_ORDER_HORIZON_SECONDS,
    STUDY_HORIZON_SECONDS,
    STUDY_LAMBDA_OVER,
    STUDY_LAMBDA_UNDER,
    STUDY_THETA_QUEUE,
)

if TYPE_CHECKING:
    from allocator.study.run import StudyResult


def load(
    path: str | Path,
    start: str | None = None,
    end: str | None = None,
    *,
    mode: str = "faithful",
    symbol: str | None = None,
    calibration_seconds: float | None = None,
) -> MarketData:
    """Read a Databento MBP CSV/DBN (or L1 CSV) for a run in `mode`: the window [start, end] (UTC
    HH:MM:SS, or "all"; default the trial window on the data's date), the depth and the history that mode
    needs. `MarketData.frame` is the window's rows as a DataFrame."""
    config = RunConfig(mode=mode, sim=_sim(calibration_seconds=calibration_seconds))
    spec = WindowSpec() if start is None and end is None else WindowSpec(start, end)
    return load_file(
        path, spec, levels=config.book_levels, symbol=symbol, calibration_ns=config.calibration_ns
    )


@dataclass(frozen=True)
class Run:
    """One run's report (the JSON as a dict) and what it was computed from."""

    result: RunResult
    # What order_allocator.py prints for the same data and settings; like any two runs, they differ only
    # in `run` (timings, and "source": "python:…" here).
    report: dict[str, Any]

    def fills(self) -> pd.DataFrame:
        """Every child fill of the router (its best grid point) and of each baseline: the `--fills` ledger."""
        return fills_frame(
            self.result.executions().values(), self.result.market.snapshots, self.result.venue_names
        )


def run(
    data: MarketData | str | Path,
    *,
    mode: str = "faithful",
    side: str = "buy",
    order_size: int = 5000,
    step: int = 100,
    lambda_over: Sequence[float] | None = None,
    lambda_under: Sequence[float] | None = None,
    theta_queue: Sequence[float] | None = None,
    venues: str | Path | None = None,
    fee: float | None = None,
    rebate: float | None = None,
    jobs: int | None = None,
    **model: Any,
) -> Run:
    """Route `order_size` shares over `data` (a `load` result, or a path read with `load`'s defaults) at
    every grid point and run the baselines. `model` takes the realistic mode's settings by their
    `SimSettings.from_units` names (horizon_seconds, latency_ms, queue, solver, …)."""
    sim = _sim(**model)
    if not isinstance(data, MarketData):
        data = load(data, mode=mode, calibration_seconds=sim.calibration_ns / 1e9)
    config = RunConfig(
        order_size=order_size,
        step=step,
        grid=_grid(lambda_over, lambda_under, theta_queue),
        mode=mode,
        jobs=jobs,
        side=side,  # type: ignore[arg-type]  # RunConfig checks it is a side
        sim=sim,
    )
    fees = _fees(venues, fee, rebate)
    started = time.perf_counter()
    result = run_pipeline(data, fees, config)
    report = with_run_sections(
        result.report,
        complete=True,
        source={"source": f"python:{data.source}", "rows_in_file": data.rows_total},
        fee_table=fees,
        grid_workers=result.search.workers,
        elapsed_seconds=time.perf_counter() - started,
    )
    return Run(result, report)


def run_study(
    files: Iterable[str | Path] = (),
    *,
    synthetic: int = 0,
    path_seed: int = 1,
    path_minutes: float = 10,
    arrivals: int = DEFAULT_ARRIVALS,
    sides: Sequence[str] = ("buy", "sell"),
    order_size: int = 5000,
    order_horizon_seconds: float = DEFAULT_ORDER_HORIZON_SECONDS,
    lambda_over: Sequence[float] | None = None,
    lambda_under: Sequence[float] | None = None,
    theta_queue: Sequence[float] | None = None,
    scheduler: str = "synchronous",
    workers: int | None = None,
    out: str | Path | None = None,
    cache_dir: str | Path = ".sor_cache/paths",
    seed: int = 0,
    **model: Any,
) -> StudyResult:
    """`python -m allocator.study` from Python: many orders over many paths (data files and/or
    `synthetic` generated ones), parameters chosen out of sample. `scheduler` is "synchronous" (this
    process, the default here), "local" (a Dask LocalCluster) or a tcp:// address. A script that uses
    "local" needs an `if __name__ == "__main__":` guard (Dask re-imports it in each worker)."""
    from allocator.data.window import NS_PER_SECOND
    from allocator.study.engine import engine_for
    from allocator.study.paths import PathSource, file_sources, synthetic_sources
    from allocator.study.plan import OrderPlan
    from allocator.study.run import run_study as run_study_tasks
    from allocator.study.summary import SelectionSettings

    model.setdefault("horizon_seconds", STUDY_HORIZON_SECONDS)  # as on the study's command line
    config = RunConfig(
        order_size=order_size,
        grid=PenaltyGrid(
            tuple(lambda_over or STUDY_LAMBDA_OVER),
            tuple(lambda_under or STUDY_LAMBDA_UNDER),
            tuple(theta_queue or STUDY_THETA_QUEUE),
        ),
        mode="cont-kukanov",
        jobs=1,
        sim=_sim(**model),
    )
    sources: list[PathSource] = list(file_sources([str(f) for f in files], None, "auto"))
    sources += synthetic_sources(synthetic, path_seed, path_minutes, str(cache_dir))
    orders = OrderPlan(
        arrivals=arrivals,
        sides=tuple(sides),  # type: ignore[arg-type]  # OrderPlan checks each is a side
        order_horizon_ns=round(order_horizon_seconds * NS_PER_SECOND),
        seed=seed,
    )
    return run_study_tasks(
        sources,
        orders,
        config,
        _fees(None, None, None),
        selection=SelectionSettings(seed=seed),
        engine=engine_for(scheduler, workers),
        out=None if out is None else str(out),
    )


def _sim(calibration_seconds: float | None = None, **model: Any) -> SimSettings:
    if calibration_seconds is not None:
        model["calibration_seconds"] = calibration_seconds
    return SimSettings.from_units(**model)


def _grid(
    lambda_over: Sequence[float] | None,
    lambda_under: Sequence[float] | None,
    theta_queue: Sequence[float] | None,
) -> PenaltyGrid:
    default = PenaltyGrid()
    return PenaltyGrid(
        tuple(default.lambda_over if lambda_over is None else lambda_over),
        tuple(default.lambda_under if lambda_under is None else lambda_under),
        tuple(default.theta_queue if theta_queue is None else theta_queue),
    )


def _fees(venues: str | Path | None, fee: float | None, rebate: float | None) -> FeeTable:
    return load_fee_table(venues, fee=fee, rebate=rebate)
