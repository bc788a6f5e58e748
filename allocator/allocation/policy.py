"""The realistic router's decision rule for one observation: solve the Cont–Kukanov problem, round to whole
shares, and record the decision with everything needed to re-solve it.

Pure functions on arrays: what the router could see (the observation) is built by the execution stage
(allocator.execution.sim_market), which reads the simulator; what it then sends is decided here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from allocator.allocation.cont_kukanov import Params, sample_costs, solve_sa
from allocator.allocation.exact import ExactSolution, solve_exact, tie_weights
from allocator.allocation.penalties import Penalties
from allocator.errors import SettingError

SA_STEP: Final = (
    "adaptive"  # the router's SA step rule (cont_kukanov.solve_sa), measured against the exact optimum
)
SA_GAMMA0 = 0.3


class SolverSettings(Protocol):
    """What `solve` reads of the realistic model's settings (allocator.config.SimSettings has it)."""

    @property
    def solver(self) -> str: ...

    @property
    def sa_iterations(self) -> int: ...


@dataclass(frozen=True)
class Decision:
    """One re-solve of the router: what it saw, what the solver answered, what it sent (cost space).

    `market` and `limits` are the whole shares sent (M, and L_k by venue index where > 0). The fields after
    `post_px` are set only when there was a venue to post at; otherwise the whole remainder went to market
    and `certificate` is None (the log calls that "forced")."""

    t: int
    remaining: int
    market_venue: int
    half_spread: float
    mid: float | None
    horizon_ns: int
    penalties: Penalties
    market: int
    limits: dict[int, int]
    post_px: float | None
    solver: str | None = None
    queue_ahead: dict[int, int] = field(default_factory=dict)
    outflow_samples: int = 0
    venues: list[int] = field(default_factory=list)  # the limit venues, in the model's order
    f: float | None = None
    r: list[float] = field(default_factory=list)
    Q: list[float] = field(default_factory=list)
    xi: npt.NDArray[np.float64] | None = None
    x: npt.NDArray[np.float64] | None = None
    objective: float | None = None
    sent_objective: float | None = None
    certificate: dict[str, Any] | None = None


def renumber_venues(decision: Decision, new_index: np.ndarray) -> Decision:
    """The same decision with venue v called new_index[v] (a stream met a new venue, which shifts the
    venue order)."""

    def at(v: int) -> int:
        return int(new_index[v])

    return replace(
        decision,
        market_venue=at(decision.market_venue),
        limits={at(v): q for v, q in decision.limits.items()},
        queue_ahead={at(v): q for v, q in decision.queue_ahead.items()},
        venues=[at(v) for v in decision.venues],
    )


MAX_ROUNDING_VENUES = 8  # up to 2^(K+1) whole-share neighbours are priced; beyond, the simple rule


def round_split(x: np.ndarray, remaining: int) -> tuple[int, np.ndarray]:
    """Whole shares by nearest rounding, keeping the model's constraint M + ΣL ≥ S and 0 ≤ L_k ≤ S − M."""
    market = int(np.clip(np.rint(x[0]), 0, remaining))
    limits = np.clip(np.rint(x[1:]), 0, remaining - market).astype(np.int64)
    short = remaining - market - int(limits.sum())
    if short > 0:
        market += short
        limits = np.minimum(limits, remaining - market)
    return market, limits


def best_whole_shares(
    x: np.ndarray, remaining: int, params: Params, samples: np.ndarray
) -> tuple[int, np.ndarray, float]:
    """The whole-share point among x's floor/ceil neighbours (and the nearest rounding) with the lowest
    sample cost, feasible for C; ties go to fewer shares, then less market, then the lower venue index
    (the solver's tie rule). An integral x is returned as it is. Returns (M, L, its sample cost)."""
    k = x.size - 1
    market, limits = round_split(x, remaining)
    candidates = [np.concatenate(([market], limits)).astype(float)]
    if k <= MAX_ROUNDING_VENUES:
        lo, hi = np.floor(x + 1e-9), np.ceil(x - 1e-9)
        corners = np.array(list(itertools.product((0, 1), repeat=k + 1)), dtype=float)
        grid = lo + corners * (hi - lo)
        grid = np.unique(grid, axis=0)
        ok = (
            (grid >= 0).all(axis=1)
            & (grid[:, 1:] <= remaining - grid[:, :1]).all(axis=1)
            & (grid.sum(axis=1) >= remaining)
            & (grid[:, 0] <= remaining)
        )
        candidates += list(grid[ok])
    pts = np.unique(np.array(candidates), axis=0)
    costs = np.array([sample_costs(p, samples, params, float(remaining)).mean() for p in pts])
    weights = tie_weights(k)
    best = min(range(len(pts)), key=lambda i: (float(np.round(costs[i], 9)), float(pts[i] @ weights)))
    point = pts[best]
    return int(point[0]), point[1:].astype(np.int64), float(costs[best])


@dataclass(frozen=True)
class Solved:
    """A solver's answer for one decision: the point, its sample cost and how it was established."""

    x: np.ndarray
    objective: float
    certificate: dict[str, Any]


def solve(remaining: int, params: Params, samples: np.ndarray, settings: SolverSettings, seed: int) -> Solved:
    """The router's solve: exact and certified (default), or the paper's SA with the measured step rule."""
    if settings.solver == "exact":
        try:
            exact: ExactSolution = solve_exact(float(remaining), params, samples)
        except RuntimeError as exc:  # HiGHS stopped without an optimum (e.g. the integer model's time limit)
            reason = SettingError.literal(str(exc))
            raise SettingError(
                f"the exact solver failed on a decision ({reason}); rerun with {{solver}} sa", solver="solver"
            ) from None
        if not exact.certified:  # never act on it silently: the gap did not close within tolerance
            raise SettingError(
                f"the exact solver could not certify a decision (gap {exact.gap:.3g} $ > {exact.tolerance:.3g} $); "
                "rerun with {solver} sa",
                solver="solver",
            )
        return Solved(exact.x, exact.objective, exact.certificate())
    x, info = solve_sa(
        float(remaining),
        params,
        samples,
        n_iter=settings.sa_iterations,
        step=SA_STEP,
        gamma0=SA_GAMMA0,
        rng=seed,
    )
    value = float(sample_costs(x, samples, params, float(remaining)).mean())
    return Solved(
        x,
        value,
        {"method": "sa", "n_iter": info["n_iter"], "batch_size": info["batch_size"], "step": SA_STEP},
    )
