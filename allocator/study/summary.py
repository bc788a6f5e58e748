"""From the rows of every task to the study's answer: the out-of-sample router, per-strategy statistics,
paired differences with path-bootstrap CIs, and the orders table anyone can recompute them from.

Selection. `kfold`: the paths are dealt into k folds (seeded shuffle, round-robin); for each fold the grid
point with the lowest mean shortfall over the other folds' orders (both sides pooled) is that fold's
router, and its rows on the fold's own paths become the `router` rows. Every path is then a test path
exactly once, so every row is a test row. `holdout`: one seeded split; the point is chosen on the training
paths and the `router` rows (and the statistics) cover the test paths only. Either way no `router` row
was chosen with its own path in view. The in-sample best (chosen on all the orders that are scored) is
reported beside it: the gap between the two is the selection's optimism.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from allocator.allocation.penalties import Penalties
from allocator.errors import SettingError
from allocator.study.evaluate import router_label
from allocator.study.stats import (
    DEFAULT_RESAMPLES,
    paired,
    path_folds,
    select_out_of_sample,
    strategy_stats,
)

SelectionMethod = Literal["kfold", "holdout"]
SELECTION_METHODS: tuple[SelectionMethod, ...] = ("kfold", "holdout")
ROUTER = "router"
DEFAULT_FOLDS = 4
ORDER_KEY = ["path", "arrival_ts", "side"]
ROW_COLUMNS = [
    "path",
    "arrival_ts",
    "side",
    "strategy",
    "shortfall_bps",
    "fees",
    "rebates",
    "maker_share",
    "completion_seconds",
    "market_move_bps",
]


@dataclass(frozen=True)
class SelectionSettings:
    """How the grid point is chosen out of sample."""

    method: SelectionMethod = "kfold"
    folds: int | None = None  # kfold: k (default min(4, paths)); holdout: unused
    test_share: float = 0.5  # holdout: the share of paths held out for testing
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in SELECTION_METHODS:
            raise SettingError.not_one_of(self.method, SELECTION_METHODS, "selection")
        if self.folds is not None and self.folds < 2:
            raise SettingError(f"{{s}} {self.folds}: k-fold needs at least 2 folds", s="folds")
        if not 0 < self.test_share < 1:
            raise SettingError(f"{{s}} {self.test_share:g}: give a share between 0 and 1", s="test_share")

    def fold_of(self, paths: Sequence[str]) -> tuple[dict[str, int], list[int]]:
        """Each path's fold and the folds that are scored (kfold: all of them; holdout: fold 0, the test
        paths; fold 1 trains)."""
        count = len(paths)
        if count < 2:
            raise SettingError(
                f"out-of-sample selection needs at least 2 paths, the study has {count}; give more data files "
                "or {synthetic} N",
                synthetic="synthetic",
            )
        if self.method == "kfold":
            k = self.folds if self.folds is not None else min(DEFAULT_FOLDS, count)
            if k > count:
                raise SettingError(f"{{s}} {k}: more folds than the study's {count} paths", s="folds")
            folds = path_folds(paths, k, self.seed)
            return {str(p): f for p, f in folds.items()}, list(range(k))
        test = max(1, min(count - 1, round(self.test_share * count)))
        order = np.random.default_rng(self.seed).permutation(count)
        return {paths[i]: (0 if rank < test else 1) for rank, i in enumerate(order)}, [0]

    def describe(self, folds: int) -> str:
        if self.method == "kfold":
            return (
                f"k-fold by path: the {folds} folds are the paths shuffled with seed {self.seed} and dealt "
                "round-robin; each fold's router is the grid point with the lowest mean shortfall_bps over the "
                "other folds' orders, both sides pooled, ties to the earlier grid point"
            )
        return (
            f"holdout by path: {self.test_share:g} of the paths (shuffled with seed {self.seed}) are held out "
            "for testing; the router is the grid point with the lowest mean shortfall_bps over the other "
            "paths' orders, both sides pooled, ties to the earlier grid point"
        )


def summarize(
    rows: pd.DataFrame,
    points: Sequence[Penalties],
    baselines: Sequence[str],
    path_order: Sequence[str],
    selection: SelectionSettings,
    resamples: int = DEFAULT_RESAMPLES,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The study's JSON answer and its orders table (rows sorted by path, arrival, side, strategy)."""
    labels = [router_label(p) for p in points]
    table = _sorted_rows(rows, path_order, labels + list(baselines))
    orders = table.drop_duplicates(ORDER_KEY)[ORDER_KEY].reset_index(drop=True)
    order_paths = orders["path"].tolist()
    fold_of, scored = selection.fold_of(list(path_order))
    cost = _matrix(table, orders, labels)  # [point, order]
    fold = np.array([fold_of[p] for p in order_paths])
    is_test = np.isin(fold, scored)
    choice = select_out_of_sample(cost, order_paths, fold_of)
    router = _router_rows(table, orders, labels, fold, is_test, choice.chosen)
    table["fold"] = [fold_of[p] for p in table["path"]]
    table["is_test"] = table["fold"].isin(scored)
    table = pd.concat([router, table], ignore_index=True)
    table = _sorted_rows(table, path_order, [ROUTER, *labels, *baselines])
    test = table[table["is_test"]]
    in_sample = int(np.argmin(cost[:, is_test].mean(axis=1)))
    answer: dict[str, Any] = {
        "orders": int(is_test.sum()),
        "paths": len(set(np.array(order_paths)[is_test])),
        "orders_evaluated": len(orders),
        "paths_evaluated": len(path_order),
        "selection": _selection_report(
            selection, points, cost, fold, scored, choice.chosen, in_sample, is_test, fold_of
        ),
        "strategies": {name: _strategy(test, name) for name in [ROUTER, *baselines]},
        "paired": _paired_all(test, baselines, resamples, selection.seed),
        "paired_by_side": {
            side: _paired_all(test[test["side"] == side], baselines, resamples, selection.seed)
            for side in test["side"].drop_duplicates()
        },
        "strategies_by_side": {
            side: {name: _strategy(test[test["side"] == side], name) for name in [ROUTER, *baselines]}
            for side in test["side"].drop_duplicates()
        },
        "paired_by_market_move": _paired_by_move(test, baselines, resamples, selection.seed),
        "grid_points": {label: _strategy(test, label) for label in labels},
        "grid_points_distinct": len({tuple(np.round(c[is_test], 9)) for c in cost}),
    }
    answer["notes"] = _notes(answer["paths"], len(orders))
    return answer, table.reset_index(drop=True)


MOVE_TERCILES = ("favourable", "middle", "adverse")


def _paired_by_move(
    rows: pd.DataFrame, baselines: Sequence[str], resamples: int, seed: int
) -> dict[str, Any]:
    """The paired differences within terciles of the mid's move over the order's life (against the order =
    adverse): a passive router's saving should shrink, or turn, when the price runs away from it."""
    move = rows[rows["strategy"] == ROUTER].set_index(ORDER_KEY)["market_move_bps"].dropna()
    if len(move) < 3:
        return {}
    ranks = move.rank(method="first")
    tercile = pd.Series(np.minimum((ranks - 1) * 3 // len(move), 2).astype(int), index=move.index)
    keyed = rows.set_index(ORDER_KEY)
    out: dict[str, Any] = {}
    for number, name in enumerate(MOVE_TERCILES):
        orders = tercile.index[tercile == number]
        part = keyed[keyed.index.isin(orders)].reset_index()
        out[name] = {
            "market_move_bps": [float(move[orders].min()), float(move[orders].max())],
            "paired": _paired_all(part, baselines, resamples, seed),
        }
    return out


def _notes(paths: int, orders: int) -> list[str]:
    """What the numbers do not show, said next to them."""
    notes = [
        "shortfall_bps is against the arrival mid, positive = a cost; router − baseline < 0 means the router "
        "was cheaper; ci95 resamples whole paths, because orders on one path share its price moves",
    ]
    if paths < 10:
        notes.append(
            f"only {paths} scored paths: a path bootstrap with so few clusters understates the uncertainty; "
            "use more paths before reading the CI as evidence"
        )
    if orders < 30:
        notes.append(f"only {orders} orders: the percentiles (p5, p95) rest on very few values")
    return notes


def _sorted_rows(rows: pd.DataFrame, path_order: Sequence[str], strategies: Sequence[str]) -> pd.DataFrame:
    table = rows.copy()
    table["_path"] = pd.Categorical(table["path"], categories=list(path_order), ordered=True)
    table["_strategy"] = pd.Categorical(table["strategy"], categories=list(strategies), ordered=True)
    if table["_path"].isna().any() or table["_strategy"].isna().any():
        raise ValueError("rows name a path or strategy the study does not have")
    table = table.sort_values(["_path", "arrival_ts", "side", "_strategy"], kind="stable")
    return table.drop(columns=["_path", "_strategy"]).reset_index(drop=True)


def _matrix(table: pd.DataFrame, orders: pd.DataFrame, labels: Sequence[str]) -> np.ndarray:
    """shortfall_bps as [grid point, order], every cell present exactly once."""
    wide = table[table["strategy"].isin(labels)].pivot(
        index=ORDER_KEY, columns="strategy", values="shortfall_bps"
    )
    wide = wide.reindex(pd.MultiIndex.from_frame(orders))[list(labels)]
    if wide.isna().any().any():
        raise ValueError("some order lacks a grid point's result")
    return wide.to_numpy(dtype=np.float64).T


def _router_rows(
    table: pd.DataFrame,
    orders: pd.DataFrame,
    labels: Sequence[str],
    fold: np.ndarray,
    is_test: np.ndarray,
    chosen: Sequence[int],
) -> pd.DataFrame:
    """For every scored order, a copy of its fold's chosen grid point's row, named `router`."""
    wanted = orders[is_test].assign(strategy=[labels[chosen[f]] for f in fold[is_test]])
    router = wanted.merge(table, on=[*ORDER_KEY, "strategy"], how="left", validate="one_to_one")
    router["strategy"] = ROUTER
    router["fold"] = fold[is_test]
    router["is_test"] = True
    return router


def _point(points: Sequence[Penalties], index: int) -> dict[str, float]:
    return asdict(points[index])


def _selection_report(
    selection: SelectionSettings,
    points: Sequence[Penalties],
    cost: np.ndarray,
    fold: np.ndarray,
    scored: Sequence[int],
    chosen: Sequence[int],
    in_sample: int,
    is_test: np.ndarray,
    fold_of: dict[str, int],
) -> dict[str, Any]:
    folds_total = max(fold_of.values()) + 1
    per_fold = []
    for f in scored:
        train, test = fold != f, fold == f
        per_fold.append(
            {"fold": f}
            | _point(points, chosen[f])
            | {
                "train_paths": sorted(p for p, q in fold_of.items() if q != f),
                "test_paths": sorted(p for p, q in fold_of.items() if q == f),
                "train_mean_bps": float(cost[chosen[f], train].mean()),
                "test_mean_bps": float(cost[chosen[f], test].mean()),
            }
        )
    router_cost = np.concatenate([cost[chosen[f], fold == f] for f in scored])
    # exactly rounded sums, so equal choices give equal means whatever order the orders are summed in
    router_mean = math.fsum(router_cost) / router_cost.size
    best_mean = math.fsum(cost[in_sample, is_test]) / int(is_test.sum())
    return {
        "method": selection.describe(folds_total),
        "folds": folds_total if selection.method == "kfold" else 1,
        "chosen": per_fold,
        "in_sample_best": _point(points, in_sample) | {"mean_bps": best_mean},
        "out_of_sample_mean_bps": router_mean,
        "optimism_bps": router_mean - best_mean,
    }


def _strategy(rows: pd.DataFrame, name: str) -> dict[str, Any]:
    own = rows[rows["strategy"] == name]
    stats = asdict(strategy_stats(own["shortfall_bps"].to_numpy()))
    move = own["market_move_bps"].to_numpy(dtype=np.float64)
    return stats | {
        "fees_mean": float(own["fees"].mean()),
        "rebates_mean": float(own["rebates"].mean()),
        "maker_share_mean": float(own["maker_share"].mean()),
        "completion_seconds_mean": float(own["completion_seconds"].mean()),
        "market_move_bps_mean": float(np.nanmean(move)) if np.isfinite(move).any() else None,
    }


def _paired_all(rows: pd.DataFrame, baselines: Sequence[str], resamples: int, seed: int) -> dict[str, Any]:
    """router − each baseline over the same orders, matched by (path, arrival, side)."""
    router = rows[rows["strategy"] == ROUTER].set_index(ORDER_KEY)["shortfall_bps"]
    out: dict[str, Any] = {}
    for name in baselines:
        baseline = rows[rows["strategy"] == name].set_index(ORDER_KEY)["shortfall_bps"].reindex(router.index)
        if baseline.isna().any():
            raise ValueError(f"{name} lacks some of the router's orders")
        stats = paired(
            router.to_numpy(),
            baseline.to_numpy(),
            router.index.get_level_values("path").tolist(),
            resamples,
            seed,
        )
        out[name] = {
            "mean_bps": stats.mean_bps,
            "ci95": list(stats.ci95),
            "win_rate": stats.win_rate,
            "n": stats.n,
            "paths": stats.paths,
        }
    return out
