"""The study's paired.png: each side's mean is its own, few paths are not called a 95 % CI, and it is written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from allocator.study import plot as study_plot
from allocator.study.stats import paired


def test_few_paths_are_not_presented_as_a_95_percent_ci():
    assert "not a reliable 95 % CI" in study_plot.ci_label(2)
    assert study_plot.ci_label(study_plot.FEW_PATHS) == "95 % CI of the mean (whole paths resampled)"


def test_side_means_are_per_side_and_only_for_the_sides_present():
    diff = np.array([-1.0, -2.0, 0.5, 1.5])
    sides = np.array(["buy", "buy", "sell", "sell"])
    assert study_plot.side_means(diff, sides) == {"buy": (-1.5, 2), "sell": (1.0, 2)}
    assert set(study_plot.side_means(diff[:2], sides[:2])) == {"buy"}


def test_the_paired_plot_is_written(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    rows = []
    for p in range(3):
        for a in range(4):
            for side in ("buy", "sell"):
                base = float(rng.normal(1, 1))
                key = {"path": f"p{p}", "arrival_ts": f"t{a}", "side": side, "is_test": True}
                rows.append(
                    key | {"strategy": "router", "shortfall_bps": base - (1 if side == "buy" else -0.3)}
                )
                rows += [key | {"strategy": b, "shortfall_bps": base} for b in ("best_ask", "twap", "vwap")]
    table = pd.DataFrame(rows)
    router = table[table["strategy"] == "router"]
    stats = {}
    for name in ("best_ask", "twap", "vwap"):
        other = table[table["strategy"] == name]
        s = paired(
            router["shortfall_bps"].to_numpy(), other["shortfall_bps"].to_numpy(), router["path"].tolist()
        )
        stats[name] = {
            "mean_bps": s.mean_bps,
            "ci95": list(s.ci95),
            "win_rate": s.win_rate,
            "n": s.n,
            "paths": 3,
        }
    figures = []
    import matplotlib.figure

    save = matplotlib.figure.Figure.savefig

    def keep(fig: matplotlib.figure.Figure, *args: object, **kwargs: object) -> None:
        figures.append(fig)
        save(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    out = tmp_path / "paired.png"
    study_plot.plot_paired(table, stats, ("best_ask", "twap", "vwap"), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = figures
    labels = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
    assert "buy orders" in labels and "sell orders" in labels and "buy mean" in labels
    assert any("only 3 paths" in t for t in labels)
    axes = fig.axes
    assert all(ax.get_shared_x_axes().joined(axes[0], ax) for ax in axes)  # one x scale for all baselines
    box = [t.get_text() for t in axes[0].texts]
    assert box == ["buy: mean −1.00 bps over 12   sell: mean +0.30 bps over 12"]
    assert "interval [" in axes[0].get_title() and "95 % CI" not in axes[0].get_title()
    assert stats["best_ask"]["mean_bps"] == pytest.approx(-0.35)
