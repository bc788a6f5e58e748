"""A tour of the Python API, as one would use it in a notebook: load, route, read the fills, study.

    python -m examples.api_tour     # from the repository root; about a minute on 2 cores

The tests run this file (tests/test_api.py), so every line here works as written.
"""

from __future__ import annotations

import sys
import tempfile

import allocator


def main() -> None:
    # The trial window of the shipped data, as order_allocator.py --csv reads it.
    data = allocator.load("data/l1_day.csv.gz")
    print(f"{data.rows_in_window:,} rows in {data.window.in_words()}")

    # The faithful router: the report is the dict order_allocator.py prints.
    faithful = allocator.run(data, jobs=1)
    print("faithful router vs best_ask (bps):", faithful.report["savings_vs_baselines_bps"]["best_ask"])

    # The realistic mode, selling, on a small grid; its fills show maker and taker liquidity.
    realistic = allocator.run(
        "data/l1_day.csv.gz",
        mode="cont-kukanov",
        side="sell",
        lambda_over=[0.2],
        lambda_under=[0.01, 5.0],
        theta_queue=[0.0],
        horizon_seconds=10,
        jobs=1,
    )
    fills = realistic.fills()
    router = fills[fills["strategy"] == "optimized"]
    print(
        "cont-kukanov sell: router shares by liquidity", router.groupby("liquidity")["shares"].sum().to_dict()
    )

    # A small study: two generated paths, two arrivals each, both sides; parameters chosen out of sample.
    with tempfile.TemporaryDirectory() as cache:
        study = allocator.run_study(synthetic=2, arrivals=2, cache_dir=cache)
    paired = study.answer["paired"]["best_ask"]
    print(f"study: router − best_ask {paired['mean_bps']:+.3f} bps over {paired['n']} orders")


if __name__ == "__main__":
    sys.exit(main())
