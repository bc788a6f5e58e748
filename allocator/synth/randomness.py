"""The generator's random draws: fast scalar uniforms and the lognormal activity factor.

Every draw order here is part of the dataset's bytes: the shipped file is reproduced only if each
consumer of a generator draws the same numbers in the same sequence.
"""

from __future__ import annotations

import math

import numpy as np


class Uniforms:
    """Pre-drawn numpy uniforms handed out one by one: Generator scalar calls are ~30x slower."""

    def __init__(self, rng: np.random.Generator, batch: int = 1 << 18) -> None:
        self._rng = rng
        self._batch = batch
        self._buf: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        if self._i >= len(self._buf):
            self._buf = self._rng.random(self._batch).tolist()
            self._i = 0
        u = self._buf[self._i]
        self._i += 1
        return u

    def expo(self, mean: float) -> float:
        return -mean * math.log(1.0 - self())

    def randint(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi]."""
        return lo + int(self() * (hi - lo + 1))


def activity_factor(rng: np.random.Generator, n: int, dt: float, tau: float, sigma: float) -> np.ndarray:
    """Mean-one lognormal OU factor on a grid: message rates come in waves, not a flat Poisson."""
    phi = math.exp(-dt / tau)
    eps = rng.standard_normal(n) * sigma * math.sqrt(1.0 - phi * phi)
    x = np.empty(n)
    x[0] = rng.standard_normal() * sigma
    for i in range(1, n):
        x[i] = phi * x[i - 1] + eps[i]
    return np.exp(x - 0.5 * sigma * sigma)
