"""`--mode cont-kukanov` end to end on a slice of the recorded dataset: no look-ahead, parameter directions,
the sell mirror, the clean-up, and the report."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from allocator.ck_model import expected_cost
from allocator.ck_router import SimSettings, model_params, observe, outflow_samples, run_ck_router, solve
from allocator.data import load
from allocator.pipeline import RunConfig, build_market, build_sim_market_for, fills_frame, run
from allocator.schema import level_column
from allocator.venues import load_fee_table
from allocator.window import NS_PER_SECOND, WindowSpec

REPO = Path(__file__).resolve().parents[1]
DATASET = REPO / "data" / "l1_day.csv.gz"
SLICE = WindowSpec(start="13:36:32", end="13:37:31")
SETTINGS = SimSettings(horizon_ns=10 * NS_PER_SECOND, warmup_ns=5 * NS_PER_SECOND, sa_iterations=400)
SETTINGS_FULL = SimSettings()  # the router's default solver budget
CENTER = 250.0  # mirror prices around this: 222.83 becomes 277.17


@pytest.fixture(scope="module")
def data():
    return load(DATASET, SLICE)


@pytest.fixture(scope="module")
def fees():
    return load_fee_table(None)


def config(**kw) -> RunConfig:
    base = {
        "order_size": 3000,
        "mode": "cont-kukanov",
        "lambda_over": (0.2,),
        "lambda_under": (0.6,),
        "theta_queue": (0.1,),
        "jobs": 1,
        "sim": SETTINGS,
    }
    return RunConfig(**(base | kw))


def sim_market(data, fees, side="buy", settings=SETTINGS):
    market, _ = build_market(data, fees, side)
    return build_sim_market_for(data, market, settings)


# ----------------------------------------------------------------------------------------- no look-ahead


def test_outflow_samples_use_only_rows_seen_before_the_decision(data, fees):
    sm = sim_market(data, fees)
    stream = sm.book.streams[0]
    hits = np.flatnonzero(stream.hit_sz > 0)
    r = int(hits[len(hits) // 2])
    t = int(stream.ts_seen[r])
    start = sm.market.window_start_ns
    at_seen = outflow_samples(sm, [0], t, SETTINGS.horizon_ns, start)
    just_before = outflow_samples(sm, [0], t - 1, SETTINGS.horizon_ns, start)
    # the trade seen at t counts at t and not one nanosecond earlier
    assert at_seen[0, 0] - just_before[0, 0] >= stream.hit_sz[r]
    assert (outflow_samples(sm, [0], t - 1, SETTINGS.horizon_ns, start) == just_before).all()


def test_the_first_decision_is_blind_to_everything_after_it(data, fees):
    frame = data.frame
    decided_at = SLICE.resolve(int(frame["ts_event"].iloc[0])).start_ns + SETTINGS.warmup_ns
    future = frame["ts_event"].to_numpy() > decided_at
    altered = frame.copy()
    altered.loc[future, "size"] = altered.loc[future, "size"] * 7  # a very different future
    for lvl in range(10):
        for field in ("bid_px", "ask_px"):
            name = level_column(field, lvl)
            altered.loc[future, name] = altered.loc[future, name] + 0.05
    original = run_ck_router(sim_market(data, fees), 3000, 0.2, 0.6, 0.1)
    changed = run_ck_router(sim_market(dataclasses.replace(data, frame=altered), fees), 3000, 0.2, 0.6, 0.1)
    assert original.decisions[0]["t"] == decided_at
    assert original.decisions[0] == changed.decisions[0]
    assert original.signature() != changed.signature()  # ...while the fills do meet the new data


# ----------------------------------------------------------------------------------------- directions


def effects(data, fees, **axes) -> dict:
    report = run(data, fees, config(**axes)).report
    return report["execution"]["parameter_effects"]


def test_higher_lambda_under_moves_the_split_toward_market_orders(data, fees):
    rows = effects(data, fees, lambda_under=(0.05, 0.2, 1.0, 5.0))["lambda_under"]
    shares = [r["market_share"] for r in rows]
    assert shares == sorted(shares) and shares[-1] > shares[0] + 0.05, shares


def test_higher_theta_reduces_over_posting(data, fees):
    rows = effects(data, fees, theta_queue=(0.0, 0.05, 0.5, 2.0), lambda_over=(0.02,))["theta_queue"]
    over = [r["over_posting"] for r in rows]
    assert over == sorted(over, reverse=True) and over[-1] < over[0], over


def test_a_higher_rebate_tilts_limit_orders_toward_that_venue(data, fees):
    sm = sim_market(data, fees)

    def first_decision(rebates: np.ndarray) -> dict:
        market = dataclasses.replace(sm.market, maker_rebate=rebates)
        return run_ck_router(dataclasses.replace(sm, market=market), 3000, 0.2, 0.6, 0.1).decisions[0]

    base = first_decision(sm.market.maker_rebate)
    venue = min(base["limits"], key=base["limits"].get)  # the venue the router liked least
    richer = sm.market.maker_rebate.copy()
    richer[venue] += 0.004
    tilted = first_decision(richer)
    share = {
        name: d["limits"].get(venue, 0) / sum(d["limits"].values())
        for name, d in (("base", base), ("tilted", tilted))
    }
    assert share["tilted"] > share["base"] + 0.01, share


def test_the_grid_changes_the_outcome_and_reports_the_spread(data, fees):
    report = run(data, fees, config(lambda_under=(0.05, 1.0, 5.0), theta_queue=(0.0, 0.5))).report
    grid = report["grid"]
    assert grid["distinct_outcomes"] > 1
    assert grid["worst_minus_best"] == pytest.approx(
        grid["worst_total_cost"] - grid["best_total_cost"], abs=1e-5
    )
    assert grid["worst_minus_best"] > 0


# ----------------------------------------------------------------------------------------- report


def test_report_keeps_the_faithful_keys_and_adds_the_execution_section(data, fees):
    result = run(data, fees, config())
    report = result.report
    for key in (
        "best_parameters",
        "optimized",
        "baselines",
        "savings_vs_baselines_bps",
        "fills",
        "router",
        "grid",
    ):
        assert key in report
    assert set(report["baselines"]) == {"best_ask", "twap", "vwap"}
    execution = report["execution"]
    assert set(execution["strategies"]) == {"optimized", "best_ask", "twap", "vwap"}
    for name, profile in execution["strategies"].items():
        ex = result.search.best.execution if name == "optimized" else result.baselines[name]
        assert (
            profile["taker_shares"] + profile["maker_shares"] + profile["cleanup_shares"] == ex.shares_filled
        )
        assert ex.shares_filled >= 3000  # the clean-up completes every strategy
        mid = execution["arrival_mid"]
        avg = report["optimized" if name == "optimized" else "baselines"]
        avg = avg["avg_fill_px"] if name == "optimized" else avg[name]["avg_fill_px"]
        assert profile["implementation_shortfall_bps"] == pytest.approx((avg - mid) / mid * 1e4, abs=1e-3)
    assert execution["router_decisions"], "the router made no decision"


def test_cleanup_buys_what_resting_orders_missed_at_honest_prices(data, fees):
    # A latency longer than the window means no resting order ever arrives: everything is bought by the
    # clean-up sweep at the close, walking the depth and paying the taker fee.
    settings = dataclasses.replace(SETTINGS, latency=dataclasses.replace(SETTINGS.latency, entry_ns=10**12))
    sm = sim_market(data, fees, settings=settings)
    ex = run_ck_router(sm, 3000, 0.2, 0.01, 0.0)
    assert ex.shares_of("cleanup") == ex.shares_filled == 3000
    assert (ex.fee == sm.market.taker_fee[ex.venue]).all()
    assert (ex.kind == "cleanup").all()
    # every clean-up fill is at a price the venue displayed in its last row
    for v, px in zip(ex.venue, ex.price, strict=True):
        stream = sm.book.streams[v]
        assert px in set(stream.take_px[-1][np.isfinite(stream.take_px[-1])])


# ----------------------------------------------------------------------------------------- sell mirror


def mirror(frame: pd.DataFrame, center: float = CENTER) -> pd.DataFrame:
    """The market seen in a mirror: every price p becomes 2c − p, bids and asks swap, aggressors swap."""
    out = frame.copy()
    for lvl in range(10):
        bid, ask = level_column("bid_px", lvl), level_column("ask_px", lvl)
        if bid not in frame.columns:
            break
        out[bid], out[ask] = 2 * center - frame[ask], 2 * center - frame[bid]
        for field in ("sz", "ct"):
            b, a = level_column(f"bid_{field}", lvl), level_column(f"ask_{field}", lvl)
            out[b], out[a] = frame[a], frame[b]
    out["price"] = 2 * center - frame["price"]
    out["side"] = frame["side"].astype(str).map({"A": "B", "B": "A", "N": "N"})
    return out


@pytest.mark.parametrize("mode", ["faithful", "cont-kukanov"])
def test_a_sell_on_the_mirrored_market_is_the_buy(data, fees, mode):
    mirrored = dataclasses.replace(data, frame=mirror(data.frame))
    cfg = {"mode": mode, "order_size": 3000, "lambda_under": (0.2, 1.0), "jobs": 1}
    buy = run(data, fees, config(**cfg))
    sell = run(mirrored, fees, config(**cfg, side="sell"))
    fb, fs = fills_frame(buy), fills_frame(sell)
    for column in ("strategy", "ts_event", "publisher_id", "liquidity", "shares", "fee_per_share", "rebate"):
        assert fb[column].tolist() == fs[column].tolist(), column
    assert np.allclose(fs["price"], 2 * CENTER - fb["price"], atol=1e-9)
    assert (fs["side"] == "A").all() and (fb["side"] == "B").all()
    rb, rs = buy.report, sell.report
    assert rb["best_parameters"] == rs["best_parameters"]
    assert rs["optimized"]["avg_fill_px"] == pytest.approx(
        2 * CENTER - rb["optimized"]["avg_fill_px"], abs=1e-6
    )
    for name in ("best_ask", "twap", "vwap"):
        # the same dollars per share saved, measured against a different price level
        saved_buy = rb["savings_vs_baselines_bps"][name] * rb["baselines"][name]["avg_fill_px"]
        saved_sell = rs["savings_vs_baselines_bps"][name] * rs["baselines"][name]["avg_fill_px"]
        assert saved_sell == pytest.approx(saved_buy, abs=0.02)
    assert rs["optimized"]["total_cash"] > 0  # a sell reports the money received


# ----------------------------------------------------------------------------------------- the script


def allocate(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "order_allocator.py"),
            "--csv",
            str(DATASET),
            "--start",
            "13:36:32",
            "--end",
            "13:37:31",
            "--order-size",
            "3000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(result.stderr[-2000:])
    return result


def test_script_writes_plot_and_ledger(tmp_path):
    plot, ledger = tmp_path / "fills.png", tmp_path / "fills.csv"
    out = allocate(
        "--mode",
        "cont-kukanov",
        "--horizon",
        "10",
        "--warmup",
        "5",
        "--lambda-under",
        "0.6",
        "--plot",
        str(plot),
        "--fills",
        str(ledger),
    )
    report = json.loads(out.stdout)
    assert report["router"]["mode"] == "cont-kukanov"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 20_000
    fills = pd.read_csv(ledger)
    assert set(fills["strategy"]) == {"optimized", "best_ask", "twap", "vwap"}
    assert {"liquidity", "queue_ahead", "order_id", "fee_per_share", "rebate"} <= set(fills.columns)
    makers = fills[fills["liquidity"] == "maker"]
    assert len(makers) and makers["queue_ahead"].notna().all() and (makers["fee_per_share"] == 0).all()
    optimized = fills[fills["strategy"] == "optimized"]
    assert optimized["shares"].sum() == report["optimized"]["shares_filled"]
    assert optimized["cash"].sum() == pytest.approx(report["optimized"]["total_cash"], abs=1e-3)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--horizon", "0"], "--horizon 0: must be more than 0 seconds"),
        (["--latency-ms", "fast"], "--latency-ms 'fast' is not a number"),
        (["--jitter-ms", "-1"], "--jitter-ms -1: must be a number ≥ 0"),
        (["--queue-power", "0"], "--queue-power 0: must be more than 0"),
        (["--sa-iterations", "0"], "--sa-iterations 0: must be at least 1"),
        (["--live", "--mode", "cont-kukanov"], "--live prints the faithful buy router's decisions"),
    ],
)
def test_bad_model_flags_are_one_line(flags, message):
    out = allocate(*flags, check=False)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


# ----------------------------------------------------------------------------------------- solver accuracy


def test_router_sa_is_within_a_fraction_of_a_bp_of_the_exact_optimum(data, fees):
    # On decision states recorded from the data, with λ_o = 0 (where the problem is an LP), the router's SA
    # solve must come within 0.25 bps of notional of the exact minimum expected cost and put the market order
    # within 5 % of S of the exact one. (The earlier solver, 1,000 steps scaled by the worst-case gradient
    # bound, missed both: 0.39 bps and 13 % of S on the first state.) Thin outflows (×0.1) make M matter.
    from tests.lp_oracle import exact_optimum

    sm = sim_market(data, fees)
    sim = sm.simulator()
    start = sm.market.window_start_ns
    excess, market_error = [], []
    for seconds in (8, 20, 35, 50):
        obs = observe(sm, sim, start + seconds * NS_PER_SECOND)
        assert obs is not None and obs.limit_venues
        cases = (
            (3000, 0.2, 0.1, 1),
            (3000, 1.0, 0.5, 1),
            (5000, 5.0, 0.0, 1),
            (5000, 1.0, 0.2, 0.1),
            (1000, 0.6, 0.3, 0.1),
        )
        for order, lambda_under, theta, thin in cases:
            params = model_params(obs, sm.market, 0.0, lambda_under, theta)
            assert (params.h + params.r >= 0).all()
            samples = obs.samples * thin
            exact = exact_optimum(order, params, samples)
            sa = solve(order, params, samples, SETTINGS_FULL, seed=seconds)
            gap = expected_cost(sa, samples, params, order) - expected_cost(exact, samples, params, order)
            assert gap >= -1e-6 * order  # the LP is the optimum: SA cannot beat it
            excess.append(gap / (order * 222.8) * 1e4)
            market_error.append(abs(sa[0] - exact[0]) / order)
    assert max(excess) < 0.25 and max(market_error) < 0.05, (max(excess), max(market_error))
