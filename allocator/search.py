"""Parameter search: run a strategy at every (λ_over, λ_under, θ_queue) grid point, keep the cheapest.

Best = lowest total_cost, ties broken by grid order (λ_over outermost, θ_queue innermost). The result
also says how many distinct outcomes the grid produced, because in the faithful model the penalties
cannot change any decision and users should see that rather than read meaning into "best" parameters.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from allocator.allocation.penalties import Penalties
from allocator.errors import UserError
from allocator.execution.faithful import Execution

# Fan out to worker processes only when the serial grid would take longer than this.
PARALLEL_THRESHOLD_SECONDS = 1.0

Strategy = Callable[[Penalties], Execution]


@dataclass(frozen=True)
class GridPoint:
    penalties: Penalties
    execution: Execution
    total_cost: float


@dataclass(frozen=True)
class SearchResult:
    points: list[GridPoint]
    best_index: int
    distinct_outcomes: int
    workers: int

    @property
    def best(self) -> GridPoint:
        return self.points[self.best_index]


_WORKER_STRATEGY: Strategy | None = None


def _run_point(penalties: Penalties) -> Execution:
    assert _WORKER_STRATEGY is not None
    return _WORKER_STRATEGY(penalties)


def search(
    strategy: Strategy,
    points: list[Penalties],
    jobs: int | None = None,
    on_point: Callable[[], None] | None = None,
) -> SearchResult:
    """Evaluate `strategy` at each grid point; `jobs` None = all cores when that pays, 1 = serial.
    `on_point` is called as each point finishes (the command line's progress)."""
    if not points:
        raise UserError("the parameter grid is empty: give at least one point")
    done = on_point or (lambda: None)
    started = time.perf_counter()
    executions = [strategy(points[0])]
    done()
    first_seconds = time.perf_counter() - started
    cores = os.cpu_count() or 1
    workers = 1
    if jobs is None:
        if first_seconds * (len(points) - 1) > PARALLEL_THRESHOLD_SECONDS and cores > 1:
            workers = cores
    else:
        workers = max(1, int(jobs))
    rest = points[1:]
    if workers > 1 and rest:
        global _WORKER_STRATEGY
        _WORKER_STRATEGY = strategy  # inherited by forked workers: no pickling of market data
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for execution in pool.map(_run_point, rest, chunksize=max(1, len(rest) // (4 * workers))):
                executions.append(execution)
                done()
        _WORKER_STRATEGY = None
    else:
        for p in rest:
            executions.append(strategy(p))
            done()
    graded = [GridPoint(p, ex, ex.total_cost(p)) for p, ex in zip(points, executions, strict=True)]
    best_index = min(range(len(graded)), key=lambda i: (graded[i].total_cost, i))
    distinct = len({p.execution.signature() for p in graded})
    return SearchResult(points=graded, best_index=best_index, distinct_outcomes=distinct, workers=workers)
