"""The simulator's models, passed in as objects with small interfaces (in the manner of hftbacktest).

* A **latency model** says when an order sent at t reaches the venue (`draw`) and the longest that can take
  (`max_ns`, what a strategy waits to be sure a report or cancel has landed).
* A **queue model** says how cancellations at our price level move a resting order forward
  (`after_cancel`), and whether the router's outflow estimate counts those cancellations
  (`cancels_advance`), so the router's ξ and the simulator's fills measure the same thing.
* A **fee model** says what a venue charges to take and pays to rest, per share.

A new model is a new class with the same methods; nothing switches on a name. `QUEUE_MODELS` maps the names
users choose (`--queue-model`) to a constructor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from allocator.errors import SettingError

NS_PER_MS = 1_000_000


class LatencyModel(Protocol):
    @property
    def max_ns(self) -> int: ...

    def draw(self, rng: np.random.Generator) -> int: ...

    def report(self) -> dict[str, Any]: ...


class QueueModel(Protocol):
    name: str

    @property
    def cancels_advance(self) -> bool: ...

    def after_cancel(self, ahead: float, level_before: float, cancelled: float) -> float: ...

    def report(self) -> dict[str, Any]: ...


class FeeModel(Protocol):
    def taker_fee(self, venue: int) -> float: ...

    def maker_rebate(self, venue: int) -> float: ...


@dataclass(frozen=True)
class EntryLatency:
    """Order-entry latency: constant plus optional uniform jitter in [0, jitter], in nanoseconds."""

    entry_ns: int = NS_PER_MS
    jitter_ns: int = 0

    def __post_init__(self) -> None:
        if self.entry_ns < 0:
            raise SettingError(
                f"{{latency}} {self.entry_ns / NS_PER_MS:g}: must be a number ≥ 0 (milliseconds, e.g. {{latency}} 1)",
                latency="latency_ms",
            )
        if self.jitter_ns < 0:
            raise SettingError(
                f"{{jitter}} {self.jitter_ns / NS_PER_MS:g}: must be a number ≥ 0 (milliseconds, e.g. {{jitter}} 0.5)",
                jitter="jitter_ms",
            )

    @property
    def max_ns(self) -> int:
        return self.entry_ns + self.jitter_ns

    def draw(self, rng: np.random.Generator) -> int:
        return self.entry_ns + (int(rng.integers(0, self.jitter_ns + 1)) if self.jitter_ns else 0)

    def report(self) -> dict[str, Any]:
        return {"latency_ms": self.entry_ns / 1e6, "jitter_ms": self.jitter_ns / 1e6}


@dataclass(frozen=True)
class ConservativeQueue:
    """Cancellations never advance us: they are assumed to be behind us (hftbacktest's risk-averse model)."""

    name = "conservative"

    @property
    def cancels_advance(self) -> bool:
        return False

    def after_cancel(self, ahead: float, level_before: float, cancelled: float) -> float:
        return ahead

    def report(self) -> dict[str, Any]:
        return {"queue_model": self.name, "queue_power": None}


@dataclass(frozen=True)
class ProbabilisticQueue:
    """A cancellation of c shares comes from ahead of us with probability f(ahead)/(f(ahead)+f(behind)),
    f(x) = x^power, in expectation; what the back cannot absorb comes from the front (hftbacktest's
    ProbQueueModel with a power function)."""

    power: float = 2.0
    name = "probabilistic"

    def __post_init__(self) -> None:
        if not self.power > 0:
            raise SettingError(f"{{power}} {self.power:g}: must be more than 0", power="queue_power")

    @property
    def cancels_advance(self) -> bool:
        return True

    def after_cancel(self, ahead: float, level_before: float, cancelled: float) -> float:
        """Shares still ahead of us after `cancelled` shares left a level of `level_before` (us excluded)."""
        if cancelled <= 0 or ahead <= 0 or math.isinf(ahead):
            return ahead
        behind = max(level_before - ahead, 0.0)
        fa, fb = ahead**self.power, behind**self.power
        front_share = fa / (fa + fb)
        from_front = cancelled * front_share
        overflow = max(cancelled - from_front - behind, 0.0)  # the back cannot lose more than it holds
        return max(ahead - from_front - overflow, 0.0)

    def report(self) -> dict[str, Any]:
        return {"queue_model": self.name, "queue_power": self.power}


def _conservative(power: float) -> QueueModel:
    return ConservativeQueue()  # has no parameter: the power flag is ignored, as documented


QUEUE_MODELS: dict[str, Callable[[float], QueueModel]] = {
    "conservative": _conservative,
    "probabilistic": ProbabilisticQueue,
}


def queue_model(name: str, power: float = 2.0) -> QueueModel:
    """The queue model users choose by name."""
    if name not in QUEUE_MODELS:
        raise SettingError.not_one_of(name, QUEUE_MODELS, "queue_model")
    return QUEUE_MODELS[name](power)


@dataclass(frozen=True)
class PerShareFees:
    """Each venue's taker fee and maker rebate in $/share, by venue index (a negative rebate: it charges)."""

    taker: npt.NDArray[np.float64]
    rebate: npt.NDArray[np.float64]

    def taker_fee(self, venue: int) -> float:
        return float(self.taker[venue])

    def maker_rebate(self, venue: int) -> float:
        return float(self.rebate[venue])
