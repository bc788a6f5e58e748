"""The study's picture: for each baseline, the distribution of router − baseline over the test orders, with
its mean, its path-bootstrap CI, each path's own mean (the units the CI resamples) and each side's mean.

Buys and sells are drawn as separate outlines over the all-orders histogram, not stacked: a stacked bar
reads as the top side's count, and the sides can disagree (the router may beat a baseline on buys and lose
on sells), which the pooled mean hides. The panels share one x axis so baselines compare at a glance.
With few paths the bootstrap "CI" is little more than the spread of a handful of path means; the plot then
says so instead of drawing it as a 95 % interval (the threshold is the study notes' own)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from allocator.errors import UserError
from allocator.study.summary import ORDER_KEY, ROUTER

SIDE_COLORS = {"buy": "#0072B2", "sell": "#E69F00"}
FEW_PATHS = 10  # below this many paths summary.py's notes call the path bootstrap unreliable


def signed(value: float) -> str:
    """+0.54 / −1.23 with a true minus sign (and no −0.00)."""
    text = f"{value:+.2f}"
    return "0.00" if float(text) == 0 else text.replace("-", "−")


def ci_label(paths: int) -> str:
    """What the shaded interval is, honestly: with few paths it is not a trustworthy 95 % CI."""
    if paths < FEW_PATHS:
        return f"path-bootstrap interval: only {paths} paths, not a reliable 95 % CI"
    return "95 % CI of the mean (whole paths resampled)"


def side_means(diff: np.ndarray, sides: np.ndarray) -> dict[str, tuple[float, int]]:
    """Each side's mean difference and order count, for the sides present."""
    return {
        s: (float(diff[sides == s].mean()), int((sides == s).sum()))
        for s in SIDE_COLORS
        if (sides == s).any()
    }


def plot_paired(
    table: pd.DataFrame, paired: dict[str, Any], baselines: Sequence[str], path: str | Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    test = table[table["is_test"]]
    router = test[test["strategy"] == ROUTER].set_index(ORDER_KEY)["shortfall_bps"]
    sides = router.index.get_level_values("side").to_numpy()
    diffs = {}
    for name in baselines:
        baseline = test[test["strategy"] == name].set_index(ORDER_KEY)["shortfall_bps"].reindex(router.index)
        diffs[name] = (router - baseline).to_numpy()
    span = max([float(np.abs(d).max()) for d in diffs.values() if d.size] + [1e-6])
    for name in baselines:
        span = max(span, *(abs(x) for x in paired[name]["ci95"]))
    bins = np.linspace(-span * 1.05, span * 1.05, 41)  # symmetric: 0 is a bin edge, never inside a bin
    fig, axes = plt.subplots(
        len(baselines), 1, figsize=(10, 2.7 * len(baselines) + 1.6), squeeze=False, sharex=True
    )
    for ax, name in zip(axes[:, 0], baselines, strict=True):
        diff = diffs[name]
        stats = paired[name]
        lo, hi = stats["ci95"]
        few = stats["paths"] < FEW_PATHS
        ax.hist(diff, bins=bins, color="0.82", label="all test orders")
        by_side = side_means(diff, sides)
        for side in by_side:
            color = SIDE_COLORS[side]
            ax.hist(
                diff[sides == side],
                bins=bins,
                histtype="step",
                linewidth=1.6,
                color=color,
                label=f"{side} orders",
            )
            ax.axvline(by_side[side][0], color=color, linewidth=1.4, linestyle="--", label=f"{side} mean")
        ax.axvspan(
            lo,
            hi,
            color="#CC79A7",
            alpha=0.2 if few else 0.35,
            hatch="//" if few else None,
            label=ci_label(stats["paths"]),
        )
        ax.axvline(stats["mean_bps"], color="black", linewidth=2, label="mean over all test orders")
        ax.axvline(0, color="black", linewidth=0.8, linestyle=":")
        per_path = pd.Series(diff, index=router.index.get_level_values("path")).groupby(level=0).mean()
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        top = ax.get_ylim()[1] * 1.3  # headroom for the per-side means
        ax.plot(
            per_path.to_numpy(),
            np.full(len(per_path), -0.05 * top),
            "|",
            color="#009E73",
            markersize=12,
            markeredgewidth=1.5,
            label="path means",
        )
        ax.set_ylim(-0.1 * top, top)
        sides_text = "   ".join(
            f"{side}: mean {signed(mean)} bps over {n}" for side, (mean, n) in by_side.items()
        )
        ax.text(
            0.01,
            0.96,
            sides_text,
            transform=ax.transAxes,
            va="top",
            fontsize=8.5,
            bbox={"facecolor": "white", "edgecolor": "0.8", "alpha": 0.9},
        )
        interval = "interval" if few else "95 % CI"
        ax.set_title(
            f"router − {name}: mean {signed(stats['mean_bps'])} bps, {interval} [{signed(lo)}, {signed(hi)}], "
            f"router cheaper on {stats['win_rate']:.0%} of {stats['n']} test orders, {stats['paths']} paths",
            fontsize=10,
        )
        ax.set_ylabel("orders")
    axes[-1, 0].set_xlabel("shortfall difference, bps of the arrival mid (negative = the router was cheaper)")
    axes[-1, 0].tick_params(axis="x", labelbottom=True)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle(
        "Router with parameters chosen out of sample, against each baseline, order by order (test orders)",
        fontsize=11,
    )
    fig.legend(
        handles, labels, loc="upper center", ncol=4, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.965)
    )
    fig.tight_layout(rect=(0, 0, 1, 0.945))
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise UserError(f"{path}: cannot write the plot ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)
