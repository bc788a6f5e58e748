"""Queue-outflow samples ξ for one decision: a circular block bootstrap of short-interval increments.

Why a bootstrap. The allocator needs the law of ξ_k, the shares that leave venue k's best posting level
over the next horizon, jointly across venues (one venue's trades and another's tend to come together).
A horizon-long window of history is one draw from that law, and sliding windows shifted by a second
overlap almost entirely, so they are nearly one draw repeated. Increments over short intervals (≤ 1 s)
are many, and summing a horizon's worth of them, drawn in blocks, gives as many draws as wanted.

The estimator, for a decision at t with horizon T:
1. Step δ = T / ceil(T / 1 s) (1 s, or T itself when T < 1 s), p = T / δ increments per horizon.
2. Increments over the history [t − m·δ, t], m = ⌊span / δ⌋, where span is the history seen by t, capped at
   the calibration lookback: d_j,k = outflow of venue k in the j-th interval, from rows seen by t only.
3. Circular block bootstrap (Politis & Romano, 1992): blocks of b = ⌈5 s / δ⌉ consecutive increments
   (capped at m), starting anywhere on the circle of the m increments, are drawn until p increments are
   in hand; their sum is one ξ sample. Whole vectors are drawn, so cross-venue dependence is kept, and
   blocks keep the dependence within 5 s (bursts of trades).

Assumptions, stated so they can be checked: outflow is stationary over the lookback (the estimator
cannot see a regime change that has not happened yet) and its dependence dies out within about a block.
Under these, the circular bootstrap is unbiased for the mean (every increment is equally likely to be
drawn), E ξ = p·mean(d), and its variance approaches p times the long-run variance of d (for independent
increments, p·var(d)). tests/allocation/test_outflow.py checks both moments within sampling error.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

MAX_STEP_NS = 1_000_000_000  # increments over at most 1 s
BLOCK_NS = 5_000_000_000  # bootstrap blocks of 5 s
DEFAULT_SAMPLES = 200

FloatArray = npt.NDArray[np.float64]


def increment_step(horizon_ns: int) -> tuple[int, int]:
    """(δ in ns, p = increments per horizon): δ ≤ 1 s dividing the horizon exactly (to the ns)."""
    if horizon_ns <= 0:
        raise ValueError("the horizon must be positive")
    per_horizon = math.ceil(horizon_ns / MAX_STEP_NS)
    return horizon_ns // per_horizon, per_horizon


def increment_times(t: int, history_start: int, step_ns: int, lookback_ns: int) -> npt.NDArray[np.int64]:
    """Boundaries t − m·δ … t of the increments (oldest first); empty when less than one δ is seen."""
    span = min(t - history_start, lookback_ns)
    m = max(span // step_ns, 0)
    return t - step_ns * np.arange(m, -1, -1, dtype=np.int64)


def block_bootstrap(
    increments: npt.ArrayLike, per_horizon: int, n_samples: int, block: int, rng: np.random.Generator
) -> FloatArray:
    """n_samples sums of `per_horizon` increments drawn as circular blocks of `block` rows (see above)."""
    d = np.asarray(increments, dtype=float)
    if d.ndim != 2 or d.shape[0] == 0:
        raise ValueError(f"increments must have shape (m ≥ 1, K), got {d.shape}")
    if per_horizon < 1 or n_samples < 1 or block < 1:
        raise ValueError("per_horizon, n_samples and block must be ≥ 1")
    m = d.shape[0]
    b = min(block, m)
    blocks = -(-per_horizon // b)
    starts = rng.integers(0, m, size=(n_samples, blocks))
    rows = (starts[:, :, None] + np.arange(b)[None, None, :]) % m
    rows = rows.reshape(n_samples, blocks * b)[:, :per_horizon]
    return d[rows].sum(axis=1)


def block_length(step_ns: int) -> int:
    """Increments per bootstrap block: about 5 s of them."""
    return max(1, math.ceil(BLOCK_NS / step_ns))
