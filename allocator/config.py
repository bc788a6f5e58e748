"""What a run is asked to do — penalties, the grid over them, the realistic model's settings, the run itself —
validated once, here, whatever the caller (a CLI, a test, a notebook).

Bad values raise `SettingError` naming the setting (e.g. `horizon`); a CLI renders it as its flag.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from allocator.allocation.outflow import DEFAULT_SAMPLES
from allocator.allocation.penalties import Penalties
from allocator.allocation.policy import SA_GAMMA0, SA_STEP
from allocator.data.loader import DEFAULT_CALIBRATION_SECONDS, calibration_to_ns
from allocator.data.window import NS_PER_SECOND
from allocator.errors import SettingError
from allocator.execution.models import (
    NS_PER_MS,
    ConservativeQueue,
    EntryLatency,
    LatencyModel,
    QueueModel,
    queue_model,
)
from allocator.snapshots.side import SIDES, Side

MODES = ("faithful", "cont-kukanov")
SOLVERS = ("exact", "sa")
DEFAULT_LAMBDA_OVER = (0.2, 0.4, 0.6, 0.8, 1.0)
DEFAULT_LAMBDA_UNDER = (0.2, 0.4, 0.6, 0.8, 1.0)
DEFAULT_THETA_QUEUE = (0.1, 0.2, 0.3, 0.4, 0.5)
DEFAULT_HORIZON_SECONDS = 30.0
DEFAULT_WARMUP_SECONDS = 10.0
DEFAULT_SA_ITERATIONS = 4000


@dataclass(frozen=True)
class PenaltyGrid:
    """The values searched on each axis; every combination is a grid point."""

    lambda_over: tuple[float, ...] = DEFAULT_LAMBDA_OVER
    lambda_under: tuple[float, ...] = DEFAULT_LAMBDA_UNDER
    theta_queue: tuple[float, ...] = DEFAULT_THETA_QUEUE

    def __post_init__(self) -> None:
        for name in ("lambda_over", "lambda_under", "theta_queue"):
            values = getattr(self, name)
            if not values:
                raise SettingError(
                    "the parameter grid is empty; give at least one value for {axis}", axis=name
                )
            for value in values:
                check_non_negative(value, name, "use e.g. {setting} 0.2,0.5,1.0")

    def points(self) -> list[Penalties]:
        """λ_over outermost, θ_queue innermost: the order ties are broken in."""
        return [
            Penalties(*p) for p in itertools.product(self.lambda_over, self.lambda_under, self.theta_queue)
        ]

    def axes(self) -> dict[str, tuple[float, ...]]:
        return {
            "lambda_over": self.lambda_over,
            "lambda_under": self.lambda_under,
            "theta_queue": self.theta_queue,
        }


def check_non_negative(value: float, setting: str, hint: str) -> None:
    """The one range rule for numeric settings: a finite number ≥ 0."""
    if not 0 <= value < math.inf:
        raise SettingError(f"{{setting}} {value:g}: must be a number ≥ 0 ({hint})", setting=setting)


def _check_positive(value: float, setting: str, problem: str, hint: str) -> None:
    check_non_negative(value, setting, hint)
    if value <= 0:
        raise SettingError(f"{{setting}} {value:g}: {problem}", setting=setting)


@dataclass(frozen=True)
class SimSettings:
    """Everything about the realistic model that is not a grid parameter, with its models as objects."""

    horizon_ns: int = int(DEFAULT_HORIZON_SECONDS * NS_PER_SECOND)
    warmup_ns: int = int(DEFAULT_WARMUP_SECONDS * NS_PER_SECOND)
    latency: LatencyModel = field(default_factory=EntryLatency)
    queue: QueueModel = field(default_factory=ConservativeQueue)
    sa_iterations: int = DEFAULT_SA_ITERATIONS
    seed: int = 0
    solver: str = "exact"
    outflow_samples: int = DEFAULT_SAMPLES
    calibration_ns: int = int(DEFAULT_CALIBRATION_SECONDS * NS_PER_SECOND)

    def __post_init__(self) -> None:
        if self.horizon_ns <= 0:
            raise SettingError(
                f"{{s}} {self.horizon_ns / NS_PER_SECOND:g}: must be more than 0 seconds", s="horizon"
            )
        if self.warmup_ns < 0:
            check_non_negative(self.warmup_ns / NS_PER_SECOND, "warmup", "seconds, e.g. {setting} 10")
        if self.calibration_ns < 0:
            check_non_negative(
                self.calibration_ns / NS_PER_SECOND, "calibration", "seconds, e.g. {setting} 120"
            )
        if self.sa_iterations < 1:
            raise SettingError(f"{{s}} {self.sa_iterations}: must be at least 1", s="sa_iterations")
        if self.outflow_samples < 1:
            raise SettingError(f"{{s}} {self.outflow_samples}: must be at least 1", s="outflow_samples")
        if self.solver not in SOLVERS:
            raise SettingError.not_one_of(self.solver, SOLVERS, "solver")

    @classmethod
    def from_units(
        cls,
        *,
        horizon_seconds: float = DEFAULT_HORIZON_SECONDS,
        warmup_seconds: float = DEFAULT_WARMUP_SECONDS,
        latency_ms: float = 1.0,
        jitter_ms: float = 0.0,
        queue: str = "conservative",
        queue_power: float = 2.0,
        sa_iterations: int = DEFAULT_SA_ITERATIONS,
        seed: int = 0,
        solver: str = "exact",
        outflow_samples: int = DEFAULT_SAMPLES,
        calibration_seconds: float = DEFAULT_CALIBRATION_SECONDS,
    ) -> SimSettings:
        """The settings from the units people use (seconds, milliseconds), each checked with its name."""
        _check_positive(
            horizon_seconds, "horizon", "must be more than 0 seconds", "seconds, e.g. {setting} 30"
        )
        check_non_negative(warmup_seconds, "warmup", "seconds, e.g. {setting} 10")
        check_non_negative(latency_ms, "latency_ms", "milliseconds, e.g. {setting} 1")
        check_non_negative(jitter_ms, "jitter_ms", "milliseconds, e.g. {setting} 0.5")
        _check_positive(queue_power, "queue_power", "must be more than 0", "e.g. {setting} 2")
        check_non_negative(calibration_seconds, "calibration", "seconds, e.g. {setting} 120")
        return cls(
            horizon_ns=round(horizon_seconds * NS_PER_SECOND),
            warmup_ns=round(warmup_seconds * NS_PER_SECOND),
            latency=EntryLatency(
                entry_ns=round(latency_ms * NS_PER_MS), jitter_ns=round(jitter_ms * NS_PER_MS)
            ),
            queue=queue_model(queue, queue_power),
            sa_iterations=sa_iterations,
            seed=seed,
            solver=solver,
            outflow_samples=outflow_samples,
            calibration_ns=calibration_to_ns(calibration_seconds),
        )

    def report(self) -> dict[str, Any]:
        sa = self.solver == "sa"
        return (
            {
                "horizon_seconds": self.horizon_ns / NS_PER_SECOND,
                "warmup_seconds": self.warmup_ns / NS_PER_SECOND,
            }
            | self.latency.report()
            | self.queue.report()
            | {
                "solver": self.solver,
                "sa_iterations": self.sa_iterations if sa else None,
                "sa_step": f"{SA_STEP} (gamma0 {SA_GAMMA0:g})" if sa else None,
                "outflow_samples": self.outflow_samples,
                "outflow_estimator": "circular block bootstrap of ≤1 s increments, 5 s blocks",
                "calibration_seconds": self.calibration_ns / NS_PER_SECOND,
                "seed": self.seed,
            }
        )


@dataclass(frozen=True)
class RunConfig:
    """What the user asked for, independent of where the data comes from."""

    order_size: int = 5000
    step: int = 100
    grid: PenaltyGrid = field(default_factory=PenaltyGrid)
    mode: str = "faithful"
    jobs: int | None = None
    side: Side = "buy"
    sim: SimSettings = field(default_factory=SimSettings)  # used by --mode cont-kukanov only

    def __post_init__(self) -> None:
        if self.order_size <= 0:
            raise SettingError(
                f"{{s}} {self.order_size}: must be a positive number of shares", s="order_size"
            )
        if self.step <= 0:
            raise SettingError(f"{{s}} {self.step}: must be a positive number of shares", s="step")
        if self.order_size % self.step:
            # Orders go out in whole steps: the remainder could never be sent, and a run that could not send
            # its order must not be reported complete.
            lower, upper = (
                self.order_size // self.step * self.step,
                -(-self.order_size // self.step) * self.step,
            )
            options = f"{upper}" if lower == 0 else f"{lower} or {upper}"
            raise SettingError(
                f"{{size}} {self.order_size} is not a multiple of {{step}} {self.step}: orders go out in whole "
                f"steps; give {{size}} {options}, or a {{step}} that divides it",
                size="order_size",
                step="step",
            )
        if self.mode not in MODES:
            raise SettingError.not_one_of(self.mode, MODES, "mode")
        if self.side not in SIDES:
            raise SettingError.not_one_of(self.side, SIDES, "side")
        if self.realistic and self.sim.calibration_ns <= 0:
            raise SettingError(
                f"{{s}} {self.sim.calibration_ns / NS_PER_SECOND:g}: the outflow estimator needs history; "
                "give seconds > 0",
                s="calibration",
            )

    @property
    def realistic(self) -> bool:
        return self.mode == "cont-kukanov"

    @property
    def calibration_ns(self) -> int:
        """History before the window to load: only the realistic mode's outflow estimator reads it."""
        return self.sim.calibration_ns if self.realistic else 0

    @property
    def book_levels(self) -> int | None:
        """Depth to load: the realistic mode walks the book (all levels), the faithful one needs the top."""
        return None if self.realistic else 1

    @property
    def depth_side(self) -> str | None:
        """The side of the book to load below the top (None: both): the realistic mode walks only the side
        the order takes from (the asks for a buy) below level 00."""
        if not self.realistic:
            return None
        return "ask" if self.side == "buy" else "bid"
