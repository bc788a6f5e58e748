"""A whole study, for the CLI and for notebooks: plan the tasks, reuse the finished ones, run the rest on the
engine, and summarise every order into the answer."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from allocator.baselines.simulated import SIMULATED_BASELINES
from allocator.config import RunConfig
from allocator.data.venues import FeeTable
from allocator.progress import Progress
from allocator.study.engine import Engine, InProcessEngine
from allocator.study.paths import PathSource
from allocator.study.plan import DEFAULT_BLOCK, OrderPlan, plan_tasks, settings_fingerprint
from allocator.study.plot import plot_paired
from allocator.study.stats import DEFAULT_RESAMPLES
from allocator.study.store import StudyStore
from allocator.study.summary import ROW_COLUMNS, SelectionSettings, summarize
from allocator.study.tasks import OrderRow

BASELINES = tuple(SIMULATED_BASELINES)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyResult:
    """The JSON answer and the orders table it was computed from (one row per order and strategy)."""

    answer: dict[str, Any]
    orders: pd.DataFrame
    tasks_run: int
    tasks_reused: int


def study_settings(
    sources: Sequence[PathSource],
    orders: OrderPlan,
    config: RunConfig,
    fees: FeeTable,
    selection: SelectionSettings,
    resamples: int,
) -> dict[str, Any]:
    """What the answer depends on, readable: echoed in the answer and kept in --out to refuse mixing studies."""
    return {
        "paths": [s.describe() for s in sources],
        "orders": orders.report(),
        "order_size": config.order_size,
        "step": config.step,
        "grid": {axis: list(values) for axis, values in config.grid.axes().items()},
        "model": config.sim.report(),
        "selection": asdict(selection),
        "bootstrap_resamples": resamples,
        "fingerprint": settings_fingerprint(orders, config, fees),
    }


def run_study(
    sources: Sequence[PathSource],
    orders: OrderPlan,
    config: RunConfig,
    fees: FeeTable,
    *,
    selection: SelectionSettings | None = None,
    engine: Engine | None = None,
    out: str | None = None,
    block: int = DEFAULT_BLOCK,
    resamples: int = DEFAULT_RESAMPLES,
    quiet: bool = True,
) -> StudyResult:
    """Every order of every path through the router's grid and the baselines, then the statistics."""
    selection = selection or SelectionSettings(seed=config.sim.seed)
    engine = engine or InProcessEngine()
    selection.fold_of([s.label for s in sources])  # too few paths for it: refused before any work
    tasks = plan_tasks(sources, orders, config, fees, block)
    settings = study_settings(sources, orders, config, fees, selection, resamples)
    store = StudyStore(out, settings)
    rows: list[OrderRow] = []
    pending = []
    for task in tasks:
        done = store.finished(task)
        if done is None:
            pending.append(task)
        else:
            rows.extend(done)
    reused = len(tasks) - len(pending)
    if reused:
        log.info("study: %d of %d tasks already finished in %s, reusing them", reused, len(tasks), out)
    if pending:
        log.info(
            "study: %d tasks (%d orders each at most) on %s",
            len(pending),
            block * len(orders.sides),
            engine.describe(),
        )
        started = time.monotonic()
        progress = Progress(len(pending), "study", quiet=quiet)
        try:
            for task, task_rows in engine.run(pending):
                store.save(task, task_rows)
                rows.extend(task_rows)
                orders_done = len({(r.path, r.arrival_ts, r.side) for r in rows})
                progress.advance(1, f"{orders_done} orders")
        finally:
            progress.close()
        log.info("study: ran %d tasks in %.1f s", len(pending), time.monotonic() - started)
    frame = pd.DataFrame([asdict(r) for r in rows], columns=ROW_COLUMNS)
    answer, table = summarize(
        frame, config.grid.points(), BASELINES, [s.label for s in sources], selection, resamples
    )
    answer = {"study": {k: v for k, v in settings.items() if k != "fingerprint"}} | answer
    store.write_result(json.dumps(answer, indent=2, allow_nan=False) + "\n")
    store.write_orders(table)
    plot = store.plot_path()
    if plot is not None:
        plot_paired(table, answer["paired"], BASELINES, plot)
    return StudyResult(answer, table, tasks_run=len(pending), tasks_reused=reused)
