"""The one latent "efficient" price every venue follows: half-tick jumps around a concave trend.

The mid lives on half ticks: an odd value is a 1-tick market, an even value a short-lived 2-tick
transition. It mean-reverts to the trend and is generated forward and backward from the pin time,
where it is pinned, so the main venue's ask at the trial window's start is 222.83 whatever window
is generated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from allocator.synth.randomness import Uniforms

PIN_ASK_TICKS = 22283  # main venue's best ask at the window start: 222.83
TREND_RISE_TICKS = 38.0  # latent rise over the window; concave, so the window average is ~+0.2
_REVERSION_WIDTH = 14.0  # half ticks of deviation at which reversion is strong
_RATE_ONE_TICK = 0.75  # jumps per second out of a 1-tick market (odd half ticks)
_RATE_TWO_TICK = 4.0  # jumps per second out of a 2-tick transition (even half ticks)
_DOUBLE_STEP_PROB = 0.08  # a jump out of a 1-tick market moves two half ticks


def trend_ticks(
    t: np.ndarray | float, t_pin: float, span: float, rise_ticks: float = TREND_RISE_TICKS
) -> np.ndarray | float:
    """Concave rise of `rise_ticks` over the window (fast early, like the trial file), gentler outside it;
    a negative rise is the same shape falling."""
    k = 1.0
    u = (np.asarray(t, dtype=float) - t_pin) / span
    inside = (1.0 - np.exp(-k * np.clip(u, 0.0, 1.0))) / (1.0 - math.exp(-k))
    slope0 = k / (1.0 - math.exp(-k))
    slope1 = k * math.exp(-k) / (1.0 - math.exp(-k))
    before = 0.5 * slope0 * np.minimum(u, 0.0)
    after = slope1 * np.maximum(u - 1.0, 0.0)
    return rise_ticks * (inside + before + after)


@dataclass(frozen=True)
class LatentPath:
    """Jump times (s after midnight), the mid in half ticks after each jump, and the mid before the first."""

    times: np.ndarray
    m2: np.ndarray
    m2_start: int

    def within(self, t_lo: float, t_hi: float) -> LatentPath:
        """The jumps strictly inside (t_lo, t_hi); the start value is the last one at or before t_lo."""
        before = np.searchsorted(self.times, t_lo, side="right")
        m2_lo = int(self.m2[before - 1]) if before > 0 else self.m2_start
        inside = (self.times > t_lo) & (self.times < t_hi)
        return LatentPath(self.times[inside], self.m2[inside], m2_lo)


class _Walk:
    """The jump process's rules, shared by the forward and the backward walk from the pin."""

    def __init__(
        self,
        u: Uniforms,
        t_lo: float,
        t_pin: float,
        span: float,
        act: np.ndarray,
        grid: float,
        rise_ticks: float = TREND_RISE_TICKS,
        pin_ask_ticks: int = PIN_ASK_TICKS,
    ) -> None:
        self.u, self.t_lo, self.t_pin, self.span, self.act, self.grid = u, t_lo, t_pin, span, act, grid
        self.rise_ticks = rise_ticks
        self.m2_pin = 2 * pin_ask_ticks - 1

    def rate(self, t: float, m: int) -> float:
        """Jumps per second out of state m at time t; its duration depends on its parity."""
        i = min(max(int((t - self.t_lo) / self.grid), 0), len(self.act) - 1)
        return (_RATE_ONE_TICK if m % 2 else _RATE_TWO_TICK) * float(self.act[i])

    def trend2(self, t: float) -> float:
        """The trend in half ticks (relative to the pin's mid)."""
        return self.m2_pin + 2.0 * float(trend_ticks(t, self.t_pin, self.span, self.rise_ticks))

    def step(self, m: int) -> int:
        """Half ticks of a jump: one out of a 2-tick transition, mostly one (else two) otherwise."""
        if m % 2 == 0:
            return 1
        return 2 if self.u() < _DOUBLE_STEP_PROB else 1

    def toward(self, pull: float, m: int, last: int) -> bool:
        """Whether the jump goes in the pulled direction; a 2-tick transition tends to keep going."""
        if m % 2 == 0:
            pull += 0.5 * last
        return self.u() < 0.5 + 0.5 * math.tanh(pull)

    def forward(self, t_hi: float) -> tuple[list[float], list[int]]:
        """Jumps after the pin up to t_hi: (times, value after each)."""
        times: list[float] = []
        values: list[int] = []
        t, m, last = self.t_pin, self.m2_pin, 1
        while True:
            t += self.u.expo(1.0 / self.rate(t, m))
            if t >= t_hi:
                return times, values
            up = self.toward((self.trend2(t) - m) / _REVERSION_WIDTH, m, last)
            s = self.step(m)
            last = 1 if up else -1
            m += last * s
            times.append(t)
            values.append(m)

    def backward(self) -> tuple[list[float], list[int], int]:
        """Jumps before the pin down to t_lo, latest first: (times, value AFTER each, value at t_lo)."""
        times: list[float] = []
        values: list[int] = []
        t, m, last = self.t_pin, self.m2_pin, 1
        while True:
            t -= self.u.expo(1.0 / self.rate(t, m))  # the state m held since the previous jump
            if t <= self.t_lo:
                return times, values, m
            down = self.toward((m - self.trend2(t)) / _REVERSION_WIDTH, m, last)  # back toward the trend
            s = self.step(m)
            times.append(t)
            values.append(m)
            last = 1 if down else -1
            m -= last * s


def latent_path(
    u: Uniforms,
    t_lo: float,
    t_hi: float,
    t_pin: float,
    span: float,
    act: np.ndarray,
    grid: float,
    rise_ticks: float = TREND_RISE_TICKS,
    pin_ask_ticks: int = PIN_ASK_TICKS,
) -> LatentPath:
    """The latent mid over [t_lo, t_hi], walked forward from `t_pin` first, then backward.

    `act` is the market activity factor on a `grid`-second grid from t_lo; it scales the jump rates.
    `pin_ask_ticks` is the main venue's best ask at the pin (the instrument's price level).
    """
    walk = _Walk(u, t_lo, t_pin, span, act, grid, rise_ticks, pin_ask_ticks)
    fwd_t, fwd_m = walk.forward(t_hi)
    bwd_t, bwd_m, m_lo = walk.backward()
    times = np.array(bwd_t[::-1] + fwd_t, dtype=float)
    m2 = np.array(bwd_m[::-1] + fwd_m, dtype=np.int64)
    return LatentPath(times, m2, m_lo)
