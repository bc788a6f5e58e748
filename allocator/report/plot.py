"""`--plot FILE.png`: cumulative shares and cumulative cash over time, one line per strategy.

Two panels sharing the time axis (seconds since the window start): shares filled so far, and money paid so
far (received, for a sell). Clean-up fills are marked, because a strategy that waits and then buys at the
close looks cheap until its last step. matplotlib is imported here only, so other runs never pay for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from allocator.data.window import NS_PER_SECOND, format_ns
from allocator.errors import SettingError
from allocator.execution.faithful import Execution, Market
from allocator.report.build import fill_times, market_avg_px
from allocator.snapshots.side import side_sign

STYLES = {
    "optimized": ("tab:red", "-"),
    "best_ask": ("tab:blue", "--"),
    "twap": ("tab:green", "-."),
    "vwap": ("tab:purple", ":"),
}


def cumulative_series(
    execution: Execution, tick_ts: npt.NDArray[np.int64], start_ns: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(seconds since start, cumulative shares, cumulative market cash) at each fill, starting from zero."""
    ts = np.asarray(fill_times(execution, tick_ts), dtype=np.int64)
    order = np.argsort(ts, kind="stable")
    seconds = (ts[order] - start_ns) / NS_PER_SECOND
    shares = execution.shares[order]
    cash = side_sign(execution.side) * (execution.fill_gross[order] - execution.rebate[order])
    return (
        np.concatenate(([0.0], seconds)),
        np.concatenate(([0], np.cumsum(shares))),
        np.concatenate(([0.0], np.cumsum(cash))),
    )


def plot_executions(executions: dict[str, Execution], market: Market, mode: str, path: str | Path) -> None:
    """Write the figure; a one-line error if matplotlib is missing or the file cannot be written."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed, none opened
        import matplotlib.pyplot as plt
    except ImportError:
        raise SettingError("{plot} needs matplotlib: pip install -r requirements.txt", plot="plot") from None
    snaps = market.snapshots
    side = snaps.side
    fig, (ax_shares, ax_cash) = plt.subplots(2, 1, sharex=True, figsize=(10, 7), constrained_layout=True)
    for name, ex in executions.items():
        color, style = STYLES.get(name, (None, "-"))
        seconds, shares, cash = cumulative_series(ex, snaps.ts_event, market.window_start_ns)
        label = "router (optimized)" if name == "optimized" else name
        avg = market_avg_px(ex)
        avg = float("nan") if avg is None else avg
        label += f"  avg {avg:.4f}"
        ax_shares.step(seconds, shares, where="post", color=color, linestyle=style, label=label)
        ax_cash.step(seconds, cash, where="post", color=color, linestyle=style, label=label)
        if ex.simulated and (ex.kind == "cleanup").any():
            cleanup_ts = fill_times(ex, snaps.ts_event)[ex.kind == "cleanup"].min()
            x = (cleanup_ts - market.window_start_ns) / NS_PER_SECOND
            ax_shares.axvline(x, color=color, alpha=0.3, linewidth=1)
    order_size = executions["optimized"].order_size
    ax_shares.axhline(order_size, color="grey", linewidth=0.8, linestyle=":")
    ax_shares.set_ylabel("shares filled (cumulative)")
    ax_cash.set_ylabel(f"cash {'paid' if side == 'buy' else 'received'} ($, cumulative)")
    ax_cash.set_xlabel(f"seconds since {format_ns(market.window_start_ns)}")
    ax_shares.set_title(f"{side} {order_size:,} shares, mode {mode}: fills over time (faint lines: clean-up)")
    ax_shares.legend(loc="lower right", fontsize="small")
    ax_cash.ticklabel_format(axis="y", style="plain", useOffset=False)
    for ax in (ax_shares, ax_cash):
        ax.grid(True, alpha=0.3)
    try:
        fig.savefig(path, dpi=120)
    except (OSError, ValueError) as exc:
        reason = SettingError.literal(f"{path}: cannot write the picture ({exc})")
        raise SettingError("{plot} " + reason, plot="plot") from None
    finally:
        plt.close(fig)
