"""The grid search: lowest cost wins, ties by grid order, serial and parallel alike."""

from __future__ import annotations

import math
from pathlib import Path

from allocator.config import PenaltyGrid
from allocator.execution.faithful import run_faithful_router
from allocator.search import search
from tests.helpers import make_market

REPO = Path(__file__).resolve().parents[2]
nan = math.nan


def test_search_picks_the_lowest_cost_and_breaks_ties_by_grid_order():
    market = make_market([[10.0]], [[1000]], [0.0])
    points = PenaltyGrid((0.1, 0.2), (0.3, 0.1), (0.5,)).points()
    result = search(lambda p: run_faithful_router(market, 250, p), points, jobs=1)
    # 250 is never filled: cost = (θ + λ_under)·250, lowest at λ_under = 0.1; first such point wins.
    assert (result.best.penalties.lambda_over, result.best.penalties.lambda_under) == (0.1, 0.1)
    assert result.distinct_outcomes == 1
    parallel = search(lambda p: run_faithful_router(market, 250, p), points, jobs=2)
    assert [p.total_cost for p in parallel.points] == [p.total_cost for p in result.points]
