"""What a study is asked to do, and its cut into tasks: one path and a block of its arrivals each.

A task's key is a hash of everything its rows depend on: the path (a file's size and mtime, a synthetic
path's seed and generator version), the block, the order settings, the run configuration and the version
of the package's code. A resumed study reuses a finished task only when its key is unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from allocator.config import RunConfig
from allocator.data.venues import FeeTable
from allocator.data.window import NS_PER_SECOND
from allocator.errors import SettingError
from allocator.snapshots.side import SIDES, Side
from allocator.study.orders import ARRIVAL_SPACINGS, ArrivalSpacing, arrival_times
from allocator.study.paths import PathSource, SyntheticSource
from allocator.synth.clock import midnight_ns, parse_clock

DEFAULT_ARRIVALS = 8
DEFAULT_ORDER_HORIZON_SECONDS = 120.0
# The study's model defaults differ from order_allocator.py's on purpose: a 10 s horizon and a grid
# whose points move decisions (README, "Studies").
STUDY_HORIZON_SECONDS = 10.0
STUDY_LAMBDA_OVER = (0.0, 0.2)
STUDY_LAMBDA_UNDER = (0.01, 0.2, 5.0)
STUDY_THETA_QUEUE = (0.0, 0.5)
DEFAULT_BLOCK = 4
_PACKAGE = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class OrderPlan:
    """The parent orders placed on every path."""

    arrivals: int = DEFAULT_ARRIVALS
    spacing: ArrivalSpacing = "even"
    sides: tuple[Side, ...] = ("buy", "sell")
    order_horizon_ns: int = round(DEFAULT_ORDER_HORIZON_SECONDS * NS_PER_SECOND)
    seed: int = 0  # the Poisson arrivals' draws (each path gets its own stream from it)

    def __post_init__(self) -> None:
        if self.arrivals < 1:
            raise SettingError(f"{{s}} {self.arrivals}: give at least one arrival per path", s="arrivals")
        if self.spacing not in ARRIVAL_SPACINGS:
            raise SettingError.not_one_of(self.spacing, ARRIVAL_SPACINGS, "spacing")
        if not self.sides:
            raise SettingError("{s} is empty: give buy, sell or buy,sell", s="sides")
        for side in self.sides:
            if side not in SIDES:
                raise SettingError.not_one_of(side, SIDES, "sides")
        if len(set(self.sides)) != len(self.sides):
            raise SettingError(f"{{s}} {','.join(self.sides)}: each side once", s="sides")
        if self.order_horizon_ns <= 0:
            raise SettingError(
                f"{{s}} {self.order_horizon_ns / NS_PER_SECOND:g}: an order needs more than 0 seconds",
                s="order_horizon",
            )

    def arrival_seed(self, label: str) -> int:
        """The Poisson stream of one path: from `seed` and the path's name, the same on every machine."""
        return self.seed * 1_000_003 + zlib.crc32(label.encode())

    def arrivals_on(self, label: str, first_row_ns: int, last_row_ns: int, calibration_ns: int) -> list[int]:
        try:
            return arrival_times(
                first_row_ns,
                last_row_ns,
                self.arrivals,
                calibration_ns=calibration_ns,
                order_horizon_ns=self.order_horizon_ns,
                spacing=self.spacing,
                seed=self.arrival_seed(label),
            )
        except SettingError as exc:
            raise exc.prefixed(label + ": ") from None

    def report(self) -> dict[str, object]:
        return {
            "arrivals_per_path": self.arrivals,
            "spacing": self.spacing,
            "sides": list(self.sides),
            "order_horizon_seconds": self.order_horizon_ns / NS_PER_SECOND,
            "arrival_seed": self.seed,
        }


@dataclass(frozen=True)
class StudyTask:
    """Arrivals [first, stop) of one path, every side of each; `key` names its result on disk."""

    source: PathSource
    first: int
    stop: int
    orders: OrderPlan
    config: RunConfig
    fees: FeeTable
    key: str


def check_study_config(config: RunConfig) -> None:
    """A study compares strategies from one arrival: the realistic mode, with the router's warmup inside the
    calibration history (otherwise every arrival would be delayed by the difference)."""
    if not config.realistic:
        raise SettingError("a study evaluates the realistic mode: use {mode} cont-kukanov", mode="mode")
    if config.sim.warmup_ns > config.sim.calibration_ns:
        raise SettingError(
            f"{{warmup}} {config.sim.warmup_ns / NS_PER_SECOND:g} is longer than {{calibration}} "
            f"{config.sim.calibration_ns / NS_PER_SECOND:g}: every arrival would wait; give a warmup ≤ the "
            "calibration",
            warmup="warmup",
            calibration="calibration",
        )


def plan_tasks(
    sources: Sequence[PathSource],
    orders: OrderPlan,
    config: RunConfig,
    fees: FeeTable,
    block: int = DEFAULT_BLOCK,
) -> list[StudyTask]:
    """Every path's arrivals cut into blocks of `block`, path by path. A synthetic path too short for one
    order is refused here, before any work; a file's span is checked by the worker that reads it."""
    if block < 1:
        raise SettingError(f"{{s}} {block}: give at least one arrival per task", s="block")
    check_study_config(config)
    labels = [s.label for s in sources]
    if len(set(labels)) != len(labels):
        twice = sorted({x for x in labels if labels.count(x) > 1})
        raise SettingError(SettingError.literal(f"the path {twice[0]!r} is given twice; give each path once"))
    config = dataclasses.replace(config, jobs=1)  # a task runs its grid in its own worker, serially
    settings = settings_fingerprint(orders, config, fees)
    tasks = []
    for source in sources:
        if isinstance(source, SyntheticSource):
            start = midnight_ns(source.date) + round(parse_clock(source.start, "start") * NS_PER_SECOND)
            end = start + round(source.minutes * 60 * NS_PER_SECOND)
            orders.arrivals_on(source.label, start, end, config.sim.calibration_ns)
        identity = source.identity()
        for first in range(0, orders.arrivals, block):
            stop = min(first + block, orders.arrivals)
            key = _task_key(identity, first, stop, settings)
            tasks.append(StudyTask(source, first, stop, orders, config, fees, key))
    return tasks


def settings_fingerprint(orders: OrderPlan, config: RunConfig, fees: FeeTable) -> str:
    """Every setting a result depends on, as text (the fee table by its rows, not where it was read from);
    the grid's worker count changes no number, so it is left out."""
    return repr((orders, dataclasses.replace(config, jobs=1), fees.venues, fees.default))


def _task_key(identity: dict[str, object], first: int, stop: int, settings: str) -> str:
    text = json.dumps(
        {"path": identity, "arrivals": [first, stop], "settings": settings, "code": code_version()},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


# Sources that cannot change a task's rows: the edges, and the study's own steps after the rows are made.
# Leaving them out lets a rerun after, say, a plot change reuse every finished task.
_NOT_IN_ROWS_DIRS = {"cli", "kafka", "broker"}
_NOT_IN_ROWS_FILES = {
    "progress.py",
    "report/plot.py",
    "report/ledger.py",
    "study/engine.py",
    "study/plot.py",
    "study/run.py",
    "study/stats.py",
    "study/store.py",
    "study/summary.py",
}


@functools.cache
def code_version() -> str:
    """A hash of the sources a task's rows depend on: rows cached by other code are not reused."""
    digest = hashlib.sha256()
    files = sorted([*_PACKAGE.rglob("*.py"), *_PACKAGE.rglob("*.toml")])
    for file in files:
        relative = file.relative_to(_PACKAGE)
        if relative.parts[0] in _NOT_IN_ROWS_DIRS or relative.as_posix() in _NOT_IN_ROWS_FILES:
            continue
        digest.update(relative.as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()
