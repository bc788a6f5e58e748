"""`--mode cont-kukanov` end to end on a slice of the recorded dataset: no look-ahead, parameter directions,
the sell mirror, the clean-up, and the report."""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from allocator.allocation.cont_kukanov import Params, expected_cost
from allocator.allocation.exact import solve_exact
from allocator.allocation.penalties import Penalties
from allocator.allocation.policy import solve
from allocator.config import PenaltyGrid, RunConfig, SimSettings
from allocator.data.loader import load
from allocator.data.schema import level_column
from allocator.data.venues import load_fee_table
from allocator.data.window import NS_PER_SECOND, WindowSpec
from allocator.execution.realistic import model_params, run_ck_router
from allocator.execution.sim_market import observe, outflow_increments, outflow_samples
from allocator.pipeline import RunResult, build_sim_market_for, run
from allocator.report.build import decision_log
from allocator.report.ledger import fills_frame

REPO = Path(__file__).resolve().parents[2]
DATASET = REPO / "data" / "l1_day.csv.gz"
SLICE = WindowSpec(start="13:36:32", end="13:37:31")
SETTINGS = SimSettings(horizon_ns=10 * NS_PER_SECOND, warmup_ns=5 * NS_PER_SECOND)
SETTINGS_SA = SimSettings(solver="sa")  # the paper's solver with the router's default budget
CALIBRATION_NS = 120 * NS_PER_SECOND  # the file holds 92 s before the slice
CENTER = 250.0  # mirror prices around this: 222.83 becomes 277.17


@pytest.fixture(scope="module")
def data():
    return load(DATASET, SLICE, calibration_ns=CALIBRATION_NS)


@pytest.fixture(scope="module")
def fees():
    return load_fee_table(None)


def config(**kw) -> RunConfig:
    base = {
        "order_size": 3000,
        "mode": "cont-kukanov",
        "grid": PenaltyGrid((0.2,), (0.6,), (0.1,)),
        "jobs": 1,
        "sim": SETTINGS,
    }
    return RunConfig(**(base | kw))


def ledger(result: RunResult):
    return fills_frame(result.executions().values(), result.market.snapshots, result.venue_names)


def sim_market(data, fees, side="buy", settings=SETTINGS):
    return build_sim_market_for(data, fees, settings, side)[0]


def logged(decisions: list[dict], sm) -> list[dict]:
    """Decisions as the decision log writes them (plain JSON values, comparable with ==)."""
    snaps = sm.market.snapshots
    return json.loads(json.dumps(decision_log(decisions, snaps.publisher_ids, snaps.side, 0)))


# ----------------------------------------------------------------------------------------- no look-ahead


def test_outflow_samples_use_only_rows_seen_before_the_decision(data, fees):
    sm = sim_market(data, fees)
    stream = sm.book.streams[0]
    hits = np.flatnonzero(stream.hit_sz > 0)
    r = int(hits[len(hits) // 2])
    t = int(stream.ts_seen[r])
    at_seen = outflow_increments(sm, [0], t)
    just_before = outflow_increments(sm, [0], t - 1)
    # the trade seen at t counts in the last interval at t and not one nanosecond earlier
    assert at_seen[-1, 0] - just_before[-1, 0] >= stream.hit_sz[r]
    assert (outflow_increments(sm, [0], t - 1) == just_before).all()
    samples = outflow_samples(sm, [0, 1], t)
    assert samples.shape == (200, 2) and (samples >= 0).all()


def test_the_first_decision_is_at_the_arrival_and_blind_to_everything_after_it(data, fees):
    frame = data.frame
    arrival = SLICE.resolve(int(frame["ts_event"].iloc[0])).start_ns  # history exists: no warmup delay
    future = frame["ts_event"].to_numpy() > arrival
    altered = frame.copy()
    altered.loc[future, "size"] = altered.loc[future, "size"] * 7  # a very different future
    for lvl in range(10):
        for field in ("bid_px", "ask_px"):
            name = level_column(field, lvl)
            altered.loc[future, name] = altered.loc[future, name] + 0.05
    sm = sim_market(data, fees)
    changed_sm = sim_market(dataclasses.replace(data, frame=altered), fees)
    original = run_ck_router(sm, 3000, Penalties(0.2, 0.6, 0.1))
    changed = run_ck_router(changed_sm, 3000, Penalties(0.2, 0.6, 0.1))
    assert original.decisions[0].t == arrival == sm.arrival_ns
    assert logged(original.decisions[:1], sm) == logged(changed.decisions[:1], changed_sm)
    assert original.signature() != changed.signature()  # ...while the fills do meet the new data


# ----------------------------------------------------------------------------------------- one arrival


def test_every_strategy_starts_at_the_common_arrival(data, fees):
    result = run(data, fees, config())
    arrival = result.report["execution"]["arrival"]
    assert arrival["delay_seconds"] == 0 and arrival["history_seconds_before_window"] > 90
    start = SLICE.resolve(int(data.frame["ts_event"].iloc[0])).start_ns
    router = result.search.best.execution
    assert router.decisions[0].t == start
    round_trip = 2 * SETTINGS.latency.max_ns
    for name, ex in result.baselines.items():
        assert ex.ts.min() >= start + SETTINGS.latency.entry_ns, name  # nothing fills before the arrival
        assert ex.ts.min() <= start + round_trip, name  # the baselines act at the arrival too
    assert router.ts.min() >= start


def test_without_history_every_arrival_waits_the_same_warmup(fees, caplog):
    bare = load(DATASET, SLICE)  # no calibration rows: as the trial file, which is exactly the window
    result = run(bare, fees, config())
    arrival = result.report["execution"]["arrival"]
    assert arrival["delay_seconds"] == 5.0 and arrival["history_seconds_before_window"] == 0
    assert "every strategy" in arrival["note"]
    start = SLICE.resolve(int(bare.frame["ts_event"].iloc[0])).start_ns
    delayed = start + 5 * NS_PER_SECOND
    assert result.search.best.execution.decisions[0].t == delayed
    for name, ex in result.baselines.items():
        assert ex.ts.min() >= delayed, name
    said = [r.getMessage() for r in caplog.records if "history before the window" in r.getMessage()]
    assert len(said) == 1 and "every strategy arrives 5 s late" in said[0], said


def test_partial_history_delays_everyone_by_what_is_missing(data, fees):
    start = SLICE.resolve(int(data.frame["ts_event"].iloc[0])).start_ns
    history = data.history
    short = history[history["ts_event"].to_numpy() >= start - 2 * NS_PER_SECOND].reset_index(drop=True)
    first = int(short["ts_event"].min())
    sm = sim_market(dataclasses.replace(data, history=short), fees)  # warmup 5 s, 2 s of history
    assert sm.arrival_ns == first + 5 * NS_PER_SECOND
    # the estimator looks back at most --calibration seconds, so a shorter lookback needs no more history
    sm = sim_market(data, fees, settings=dataclasses.replace(SETTINGS, calibration_ns=3 * NS_PER_SECOND))
    assert sm.arrival_ns == start and sm.arrival.delay_ns == 0


def test_the_last_decision_samples_outflow_over_the_time_its_orders_rest(data, fees):
    # 60 s after the arrival with a 25 s horizon: decisions at +0 s, +25 s and +50 s, the last one's
    # orders resting only until the window end (10 s), and its ξ sampled for those 10 s.
    settings = dataclasses.replace(SETTINGS, horizon_ns=25 * NS_PER_SECOND)
    sm = sim_market(data, fees, settings=settings)
    ex = run_ck_router(sm, 40_000, Penalties(0.2, 0.6, 0.1))
    lines = logged(ex.decisions, sm)
    assert [line["horizon_seconds"] for line in lines] == [25.0, 25.0, 10.0]
    last = ex.decisions[-1]
    ten = outflow_samples(sm, last.venues, last.t, 10 * NS_PER_SECOND)
    full = outflow_samples(sm, last.venues, last.t, 25 * NS_PER_SECOND)
    np.testing.assert_array_equal(last.xi, ten)
    assert full.mean() > 2 * ten.mean()


# ----------------------------------------------------------------------------------------- directions
# On a state with shortfall risk (3,000 shares, a 10 s horizon at the slice's arrival), the exact decision
# moves with each penalty in the direction the paper predicts. Measured: market share 0.25 → 0.74 for
# λ_u 0.01 → 5; over-posting 3.7·S → 0 for θ 0 → 0.05 and for λ_o 0 → 0.2.


@pytest.fixture(scope="module")
def risky_state(data, fees):
    sm = sim_market(data, fees)
    obs = observe(sm, sm.simulator(), sm.arrival_ns)
    assert obs is not None and len(obs.limit_venues) >= 2
    return sm, obs


def decide(risky_state, lambda_over, lambda_under, theta) -> np.ndarray:
    sm, obs = risky_state
    params = model_params(obs, sm.market, Penalties(lambda_over, lambda_under, theta))
    solution = solve_exact(3000.0, params, obs.samples)
    assert solution.certified
    return solution.x


def test_higher_lambda_under_sends_more_market_orders(risky_state):
    shares = [decide(risky_state, 0.2, lu, 0.1)[0] / 3000 for lu in (0.01, 0.05, 0.2, 0.6, 1.0, 5.0)]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(shares)), shares
    assert shares[-1] > shares[0] + 0.3, shares


def test_higher_theta_and_lambda_over_post_fewer_extra_shares(risky_state):
    over_theta = [decide(risky_state, 0.0, 0.6, th).sum() / 3000 - 1 for th in (0.0, 0.05, 0.5, 2.0)]
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(over_theta)), over_theta
    assert over_theta[0] > 1.0 and over_theta[-1] < 1e-9, over_theta
    over_lambda = [decide(risky_state, lo, 0.6, 0.0).sum() / 3000 - 1 for lo in (0.0, 0.005, 0.02, 0.2)]
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(over_lambda)), over_lambda
    assert over_lambda[0] > 1.0 and over_lambda[-1] < 1e-9, over_lambda


def test_penalties_cannot_matter_when_every_queue_surely_clears(risky_state):
    # With outflow far beyond the queue and the order at every venue in every sample, posting S is a sure
    # fill: no shortfall to insure against, so λ_u does not move the decision, whatever its value.
    sm, obs = risky_state
    sure = np.full_like(obs.samples, 1e6)
    answers = []
    for lu in (0.01, 0.6, 5.0):
        params = model_params(obs, sm.market, Penalties(0.2, lu, 0.1))
        answers.append(solve_exact(3000.0, params, sure).x)
    for other in answers[1:]:
        np.testing.assert_allclose(other, answers[0], atol=1e-9)
    assert answers[0][0] == 0.0  # and no market order: a limit fill earns the spread and the rebate


def test_a_higher_rebate_tilts_limit_orders_toward_that_venue(risky_state):
    # A rebate 0.4¢ richer at one venue never lowers what is posted there; at the most used venue it moves
    # shares from the market order to that venue (measured: 992 → 1086 of 3,000 at λ_u 0.6).
    sm, obs = risky_state
    params = model_params(obs, sm.market, Penalties(0.2, 0.6, 0.1))
    base = solve_exact(3000.0, params, obs.samples).x
    favourite = int(np.argmax(base[1:]))
    for k in range(params.K):
        richer = params.r.copy()
        richer[k] += 0.004
        tilted = solve_exact(3000.0, dataclasses.replace(params, r=richer), obs.samples).x
        assert tilted[1 + k] >= base[1 + k] - 1e-9, (k, base, tilted)
        if k == favourite:
            assert tilted[1 + k] > base[1 + k] + 0.01 * 3000 and tilted[0] < base[0], (base, tilted)


def test_the_grid_changes_the_outcome_and_reports_the_spread(data, fees):
    report = run(data, fees, config(grid=PenaltyGrid((0.2,), (0.05, 1.0, 5.0), (0.0, 0.5)))).report
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
    ex = run_ck_router(sm, 3000, Penalties(0.2, 0.01, 0.0))
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
        for field in ("sz", "ct"):  # the loader leaves the order counts (ct) out
            b, a = level_column(f"bid_{field}", lvl), level_column(f"ask_{field}", lvl)
            if b in frame.columns:
                out[b], out[a] = frame[a], frame[b]
    out["price"] = 2 * center - frame["price"]
    out["side"] = frame["side"].astype(str).map({"A": "B", "B": "A", "N": "N"})
    return out


@pytest.mark.parametrize("mode", ["faithful", "cont-kukanov"])
def test_a_sell_on_the_mirrored_market_is_the_buy(data, fees, mode):
    mirrored = dataclasses.replace(data, frame=mirror(data.frame), history=mirror(data.history))
    cfg = {"mode": mode, "order_size": 3000, "grid": PenaltyGrid((0.2,), (0.2, 1.0), (0.1,)), "jobs": 1}
    buy = run(data, fees, config(**cfg))
    sell = run(mirrored, fees, config(**cfg, side="sell"))
    fb, fs = ledger(buy), ledger(sell)
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
        # the same dollars per share saved, measured against a different price level; the report rounds bps
        # to 4 decimals, so each side carries up to 0.5e-4 bps × ~280 $ ≈ 0.014 of rounding
        saved_buy = rb["savings_vs_baselines_bps"][name] * rb["baselines"][name]["avg_fill_px"]
        saved_sell = rs["savings_vs_baselines_bps"][name] * rs["baselines"][name]["avg_fill_px"]
        assert saved_sell == pytest.approx(saved_buy, abs=0.03)
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
        (["--sa-iterations", "0"], "--sa-iterations 0: must be ≥ 1 (e.g. --sa-iterations 4000)"),
        (["--outflow-samples", "0"], "--outflow-samples 0: must be ≥ 1 (e.g. --outflow-samples 200)"),
        (["--calibration", "soon"], "--calibration 'soon' is not a number"),
        (
            ["--mode", "faithful", "--decisions", "d.jsonl"],
            "--decisions logs the cont-kukanov router's solves",
        ),
        (["--live-penalties", "0.2,0.5"], "--live-penalties '0.2,0.5': give three values"),
    ],
)
def test_bad_model_flags_are_one_line(flags, message):
    out = allocate(*flags, check=False)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


# ----------------------------------------------------------------------------------------- solver accuracy


def test_sa_never_beats_the_exact_solver_and_the_exact_solver_matches_the_lp(data, fees):
    # On decision states recorded from the data: the exact answer is certified; where λ_o = 0 it equals an
    # independent LP (tests/lp_oracle.py); SA's answer never costs less (it cannot: the exact one is the
    # minimum), and at λ_o = 0 it comes within 0.25 bps of notional of it.
    from tests.lp_oracle import exact_optimum

    sm = sim_market(data, fees)
    sim = sm.simulator()
    start = sm.arrival_ns
    gaps = []
    for seconds in (0, 20, 35, 50):
        obs = observe(sm, sim, start + seconds * NS_PER_SECOND)
        assert obs is not None and obs.limit_venues
        for order, lambda_over, lambda_under, theta, thin in (
            (3000, 0.0, 0.2, 0.1, 1),
            (3000, 0.0, 1.0, 0.5, 1),
            (5000, 0.0, 5.0, 0.0, 1),
            (5000, 0.0, 1.0, 0.2, 0.1),
            (1000, 0.6, 0.6, 0.3, 0.1),
        ):
            params = model_params(obs, sm.market, Penalties(lambda_over, lambda_under, theta))
            params = Params(
                params.h,
                params.f,
                np.maximum(params.r, -params.h),
                params.Q,
                theta,
                lambda_under,
                lambda_over,
            )
            samples = obs.samples * thin
            exact = solve(order, params, samples, SETTINGS, seed=seconds)
            assert exact.certificate["certified"]
            if lambda_over == 0:
                oracle = expected_cost(exact_optimum(order, params, samples), samples, params, order)
                assert exact.objective == pytest.approx(oracle, abs=1e-7 * order)
            sa = solve(order, params, samples, SETTINGS_SA, seed=seconds)
            gap = sa.objective - exact.objective
            assert gap >= -1e-9 * order
            if lambda_over == 0:
                gaps.append(gap / (order * 222.8) * 1e4)
    assert max(gaps) < 0.25, max(gaps)


# ----------------------------------------------------------------------------------------- decision log

LOG_KEYS = {
    "ts", "S", "mid", "h", "f", "r", "Q", "venues", "xi", "lambda_over", "lambda_under", "theta_queue",
    "M", "L", "sent", "objective", "solver", "certificate",
}  # fmt: skip


def test_the_decision_log_re_solves_to_its_own_answers(tmp_path):
    path = tmp_path / "decisions.jsonl"
    out = allocate(
        "--mode", "cont-kukanov", "--horizon", "10", "--lambda-under", "0.05,5", "--theta-queue", "0,0.3",
        "--lambda-over", "0.2", "--decisions", str(path),
    )  # fmt: skip
    report = json.loads(out.stdout)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len({line["grid_point"] for line in lines}) == report["grid"]["points"] == 4
    solved = 0
    for line in lines:
        assert set(line) >= LOG_KEYS
        assert line["solver"] == "exact" and line["certificate"]["certified"]
        xi = np.array(line["xi"])
        assert xi.shape == (200, len(line["venues"]))
        params = Params(
            h=line["h"], f=line["f"], r=line["r"], Q=line["Q"], theta=line["theta_queue"],
            lambda_u=line["lambda_under"], lambda_o=line["lambda_over"],
        )  # fmt: skip
        again = solve_exact(float(line["S"]), params, xi)
        np.testing.assert_allclose([again.x[0], *again.x[1:]], [line["M"], *line["L"]], atol=1e-9 * line["S"])
        assert again.objective == pytest.approx(line["objective"], abs=1e-9)
        assert again.method == line["certificate"]["method"]
        sent = np.array([line["sent"]["M"], *line["sent"]["L"]], dtype=float)
        assert sent.sum() >= line["S"] and (sent >= 0).all()
        # whole shares next to the answer: never further than one share per coordinate from it
        assert np.abs(sent - [line["M"], *line["L"]]).max() <= 1.0 + 1e-9
        solved += 1
    assert solved >= 8
    # the best point's decisions in the report are the log's for that point
    best = report["execution"]["router_decisions"]
    points = [(0.2, lu, th) for lu in (0.05, 5.0) for th in (0.0, 0.3)]  # the grid's order
    index = points.index(
        tuple(report["best_parameters"][k] for k in ("lambda_over", "lambda_under", "theta_queue"))
    )
    mine = [line for line in lines if line["grid_point"] == index]
    assert [d["market_shares"] for d in best] == [line["sent"]["M"] for line in mine]
