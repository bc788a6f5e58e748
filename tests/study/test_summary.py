"""The study's answer from its rows, against hand-computed cases: the out-of-sample router rows, the paired
statistic recomputed from the orders table, holdout scoring only the test paths, and the path-count guard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from allocator.allocation.penalties import Penalties
from allocator.errors import SettingError
from allocator.study.stats import paired
from allocator.study.summary import ROW_COLUMNS, SelectionSettings, summarize

POINTS = [Penalties(0.0, 0.1, 0.0), Penalties(0.2, 5.0, 0.5)]
LABELS = ["router@0,0.1,0", "router@0.2,5,0.5"]
# shortfall_bps by path (one buy order each): grid point 0, grid point 1, baseline
COSTS = {"A": (1.0, 3.0, 2.0), "B": (1.0, 3.0, 2.5), "C": (4.0, 2.0, 3.0), "D": (4.0, 2.0, 1.0)}


def _rows(costs: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    records = []
    for path, values in costs.items():
        for strategy, value in zip([*LABELS, "best_ask"], values, strict=True):
            records.append(
                dict.fromkeys(ROW_COLUMNS, 0.0)
                | {"path": path, "arrival_ts": "2024-08-01T13:40:00Z", "side": "buy", "strategy": strategy}
                | {"shortfall_bps": value, "market_move_bps": 1.0}
            )
    return pd.DataFrame(records, columns=ROW_COLUMNS)


def _fold_selection(folds: dict[str, int]) -> SelectionSettings:
    """A k-fold selection whose seed deals the paths into `folds` (found by trying seeds)."""
    for seed in range(200):
        selection = SelectionSettings(folds=2, seed=seed)
        if selection.fold_of(list(COSTS))[0] == folds:
            return selection
    raise AssertionError("no seed gives that split")


def test_kfold_router_rows_are_each_folds_choice_made_on_the_other_paths():
    # Folds {A, B} and {C, D}. Fold 0 trains on C, D where point 1 is cheaper (2 < 4) → A, B get point 1:
    # 3, 3. Fold 1 trains on A, B where point 0 is cheaper → C, D get point 0: 4, 4. The in-sample best over
    # all four paths is a tie (2.5 each) → point 0, whose mean 2.5 is better than the honest 3.5.
    selection = _fold_selection({"A": 0, "B": 0, "C": 1, "D": 1})
    answer, table = summarize(_rows(COSTS), POINTS, ["best_ask"], list(COSTS), selection, resamples=2000)
    router = table[table["strategy"] == "router"].set_index("path")["shortfall_bps"]
    assert router.to_dict() == {"A": 3.0, "B": 3.0, "C": 4.0, "D": 4.0}
    assert table["is_test"].all()
    chosen = answer["selection"]["chosen"]
    assert [(c["lambda_over"], c["lambda_under"], c["theta_queue"]) for c in chosen] == [
        (0.2, 5.0, 0.5),
        (0.0, 0.1, 0.0),
    ]
    assert chosen[0]["test_paths"] == ["A", "B"] and chosen[0]["train_paths"] == ["C", "D"]
    assert answer["selection"]["in_sample_best"] == {
        "lambda_over": 0.0,
        "lambda_under": 0.1,
        "theta_queue": 0.0,
        "mean_bps": 2.5,
    }
    assert answer["selection"]["out_of_sample_mean_bps"] == 3.5
    assert answer["selection"]["optimism_bps"] == 1.0
    # router − best_ask by order: 1, 0.5, 1, 3 → mean 1.375, the router never cheaper
    pair = answer["paired"]["best_ask"]
    assert pair["mean_bps"] == pytest.approx(1.375) and pair["win_rate"] == 0.0 and pair["n"] == 4
    assert answer["strategies"]["router"]["mean_bps"] == 3.5 and answer["strategies"]["best_ask"]["n"] == 4
    assert (answer["orders"], answer["paths"], answer["grid_points_distinct"]) == (4, 4, 2)


def test_paired_is_recomputable_from_the_orders_table():
    selection = SelectionSettings(folds=2, seed=1)
    answer, table = summarize(_rows(COSTS), POINTS, ["best_ask"], list(COSTS), selection, resamples=3000)
    test = table[table["is_test"]]
    router = test[test["strategy"] == "router"].sort_values("path")
    baseline = test[test["strategy"] == "best_ask"].sort_values("path")
    again = paired(router["shortfall_bps"], baseline["shortfall_bps"], router["path"].tolist(), 3000, seed=1)
    assert answer["paired"]["best_ask"] == {
        "mean_bps": again.mean_bps,
        "ci95": list(again.ci95),
        "win_rate": again.win_rate,
        "n": again.n,
        "paths": again.paths,
    }


def test_holdout_scores_only_the_test_paths_with_a_choice_made_on_the_others():
    selection = SelectionSettings(method="holdout", test_share=0.5, seed=4)
    folds, scored = selection.fold_of(list(COSTS))
    answer, table = summarize(_rows(COSTS), POINTS, ["best_ask"], list(COSTS), selection, resamples=1000)
    test_paths = sorted(p for p, f in folds.items() if f == 0)
    assert scored == [0] and len(test_paths) == 2
    assert sorted(table.loc[table["is_test"], "path"].unique()) == test_paths
    assert (
        sorted(table.loc[table["strategy"] == "router", "path"]) == test_paths
    )  # no router row on training paths
    train = [p for p in COSTS if p not in test_paths]
    train_means = [np.mean([COSTS[p][i] for p in train]) for i in range(2)]
    expected = int(np.argmin(train_means))
    router = table[table["strategy"] == "router"].set_index("path")["shortfall_bps"]
    assert router.to_dict() == {p: COSTS[p][expected] for p in test_paths}
    assert answer["orders"] == 2 and answer["paths"] == 2 and answer["paths_evaluated"] == 4


def test_out_of_sample_selection_needs_two_paths_and_no_more_folds_than_paths():
    one = {"A": COSTS["A"]}
    with pytest.raises(SettingError, match="needs at least 2 paths, the study has 1"):
        summarize(_rows(one), POINTS, ["best_ask"], ["A"], SelectionSettings(), resamples=100)
    with pytest.raises(SettingError, match="folds 5: more folds than the study's 4 paths"):
        summarize(_rows(COSTS), POINTS, ["best_ask"], list(COSTS), SelectionSettings(folds=5), resamples=100)


def test_paired_by_market_move_splits_the_orders_into_terciles_of_the_move():
    # Six paths, one order each, moves −3 … +3 bps: two orders per tercile; router − best_ask per path below.
    moves = {"A": -3.0, "B": -2.0, "C": -1.0, "D": 1.0, "E": 2.0, "F": 3.0}
    costs = {"A": (1.0, 1.0, 2.0), "B": (1.0, 1.0, 3.0), "C": (1.0, 1.0, 1.0)}
    costs |= {"D": (1.0, 1.0, 1.5), "E": (2.0, 2.0, 1.0), "F": (4.0, 4.0, 1.0)}
    rows = _rows(costs)
    rows["market_move_bps"] = rows["path"].map(moves)
    answer, _ = summarize(rows, POINTS, ["best_ask"], list(costs), SelectionSettings(folds=3), resamples=500)
    by_move = answer["paired_by_market_move"]
    assert list(by_move) == ["favourable", "middle", "adverse"]
    assert by_move["favourable"]["market_move_bps"] == [-3.0, -2.0]
    assert by_move["favourable"]["paired"]["best_ask"]["mean_bps"] == pytest.approx(-1.5)  # (−1, −2)
    assert by_move["middle"]["paired"]["best_ask"]["mean_bps"] == pytest.approx(-0.25)  # (0, −0.5)
    assert by_move["adverse"]["paired"]["best_ask"]["mean_bps"] == pytest.approx(2.0)  # (1, 3)
    assert by_move["adverse"]["paired"]["best_ask"]["n"] == 2
