"""Parent orders of a study: when they arrive on a path, and the span each one may use.

An order arriving at t needs `calibration` of history before it (the outflow estimator's lookback) and
`order_horizon` after it (its deadline, after which the clean-up completes it). Arrivals are placed only
where both fit; a path too short for them is an error naming the numbers, never a silent skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from allocator.data.window import NS_PER_SECOND, format_ns
from allocator.errors import SettingError

ArrivalSpacing = Literal["even", "poisson"]
ARRIVAL_SPACINGS: tuple[ArrivalSpacing, ...] = ("even", "poisson")


@dataclass(frozen=True)
class ParentOrder:
    """One order of the study: its path, arrival, deadline and side."""

    path: str
    arrival_ns: int
    deadline_ns: int
    side: str


def arrival_times(
    first_row_ns: int,
    last_row_ns: int,
    count: int,
    *,
    calibration_ns: int,
    order_horizon_ns: int,
    spacing: ArrivalSpacing = "even",
    seed: int = 0,
) -> list[int]:
    """`count` arrivals in [first + calibration, last − order_horizon], in increasing order.

    `even` spaces them at the centres of `count` equal slices of that span (so none sits on an edge);
    `poisson` draws them as a Poisson process conditioned on `count` events, i.e. sorted uniforms, from
    `seed`, so reruns give the same orders."""
    if count < 1:
        raise SettingError(f"{{arrivals}} {count}: give at least one arrival per path", arrivals="arrivals")
    if spacing not in ARRIVAL_SPACINGS:
        raise SettingError.not_one_of(spacing, ARRIVAL_SPACINGS, "spacing")
    earliest = first_row_ns + calibration_ns
    latest = last_row_ns - order_horizon_ns
    if latest < earliest:
        raise SettingError(
            f"the path {format_ns(first_row_ns)} – {format_ns(last_row_ns)} is too short for an order: it needs "
            f"{calibration_ns / NS_PER_SECOND:g} s of {{calibration}} before the arrival and "
            f"{order_horizon_ns / NS_PER_SECOND:g} s of {{horizon}} after it",
            calibration="calibration",
            horizon="order_horizon",
        )
    span = latest - earliest
    if spacing == "even":
        fractions = (np.arange(count) + 0.5) / count
    else:
        fractions = np.sort(np.random.default_rng(seed).random(count))
    return [int(earliest + round(f * span)) for f in fractions]
