"""The study's picture: for each baseline, the distribution of router − baseline over the test orders, with
its mean, its 95 % path-bootstrap CI, and each path's own mean (the units the CI resamples)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from allocator.errors import UserError
from allocator.study.summary import ORDER_KEY, ROUTER

SIDE_COLORS = {"buy": "#4c72b0", "sell": "#8172b3"}


def plot_paired(
    table: pd.DataFrame, paired: dict[str, Any], baselines: Sequence[str], path: str | Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test = table[table["is_test"]]
    router = test[test["strategy"] == ROUTER].set_index(ORDER_KEY)["shortfall_bps"]
    fig, axes = plt.subplots(len(baselines), 1, figsize=(9, 2.6 * len(baselines) + 0.8), squeeze=False)
    for ax, name in zip(axes[:, 0], baselines, strict=True):
        baseline = test[test["strategy"] == name].set_index(ORDER_KEY)["shortfall_bps"].reindex(router.index)
        diff = (router - baseline).to_numpy()
        stats = paired[name]
        lo, hi = stats["ci95"]
        span = max(float(np.abs(diff).max()), abs(lo), abs(hi), 1e-6)
        bins = np.linspace(-span * 1.05, span * 1.05, 41)
        sides = router.index.get_level_values("side")
        by_side = [diff[sides == side] for side in SIDE_COLORS]
        ax.hist(
            by_side,
            bins=bins,
            stacked=True,
            color=list(SIDE_COLORS.values()),
            alpha=0.8,
            label=[f"{side} orders" for side in SIDE_COLORS],
        )
        ax.axvspan(lo, hi, color="#dd8452", alpha=0.3, label="95 % CI of the mean (paths resampled)")
        ax.axvline(stats["mean_bps"], color="#c44e52", linewidth=2, label="mean")
        ax.axvline(0, color="black", linewidth=0.8, linestyle=":")
        per_path = pd.Series(diff, index=router.index.get_level_values("path")).groupby(level=0).mean()
        top = ax.get_ylim()[1]
        ax.plot(
            per_path.to_numpy(),
            np.full(len(per_path), -0.04 * top),
            "|",
            color="#55a868",
            markersize=12,
            label="path means",
        )
        ax.set_ylim(-0.09 * top, top)
        ax.set_title(
            f"router − {name}: mean {stats['mean_bps']:+.2f} bps, 95 % CI [{lo:+.2f}, {hi:+.2f}], "
            f"router cheaper on {stats['win_rate']:.0%} of {stats['n']} orders, {stats['paths']} paths",
            fontsize=10,
        )
        ax.set_ylabel("orders")
    axes[-1, 0].set_xlabel("shortfall difference, bps of the arrival mid (negative = the router was cheaper)")
    axes[0, 0].legend(fontsize=8, loc="upper right")
    fig.suptitle(
        "Router with parameters chosen out of sample, against each baseline, order by order", fontsize=11
    )
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise UserError(f"{path}: cannot write the plot ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)
