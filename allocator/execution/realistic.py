"""`--mode cont-kukanov`: the paper's market/limit split, re-solved every horizon, executed by the simulator.

Every `horizon` seconds from the common arrival (see `arrival`) the router:
1. reads only what it could have seen (rows with ts_seen ≤ now, and the fills reported to it);
2. takes as limit venues those whose best posting price equals the best across venues (the bid for a buy;
   a venue quoting a worse bid is not in the model) and as its market venue the cheapest ask + fee;
3. sets h = half the consolidated spread, f = that venue's taker fee, r_k = each venue's maker rebate,
   Q_k = its displayed size at the best posting price, and draws `outflow_samples` samples of the queue
   outflow ξ over one horizon by a block bootstrap of the history seen before now (allocator.allocation.outflow; the
   rows before the window, back to the calibration lookback, count as history; no look-ahead);
4. minimises the sample-average cost for the remaining S exactly (allocator.allocation.exact, certified), or with
   Robbins–Monro SA when asked (`--solver sa`, allocator.allocation.cont_kukanov.solve_sa), picks the whole-share point
   next to that answer with the lowest sample cost (keeping M + ΣL ≥ S), sweeps M across venues' depth
   and rests L_k at venue k;
5. cancels everything still resting when the horizon ends, or as soon as a fill report shows the parent
   complete (fills that happen while that cancel travels are real over-fills, charged λ_over).
At the end of the window whatever is missing is bought by a marketable clean-up sweep (`cleanup` fills),
exactly as for the baselines, so all strategies compare at equal shares.

ξ is measured consistently with the queue model: under the conservative model only trades against our side
advance a queue, so ξ counts traded volume; under the probabilistic model ξ also counts cancellations at the
best posting level.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from allocator.allocation.cont_kukanov import Params, sample_costs, solve_sa
from allocator.allocation.exact import ExactSolution, solve_exact, tie_weights
from allocator.allocation.outflow import (
    DEFAULT_SAMPLES,
    block_bootstrap,
    block_length,
    increment_step,
    increment_times,
)
from allocator.data.loader import DEFAULT_CALIBRATION_SECONDS
from allocator.data.window import NS_PER_SECOND, format_ns
from allocator.errors import UserError
from allocator.execution.book import Book, VenueStream
from allocator.execution.faithful import Execution, Market
from allocator.execution.simulator import Latency, Ledger, QueueModel, Simulator, split_decrease
from allocator.snapshots.rule import Snapshots

DEFAULT_HORIZON_SECONDS = 30.0
DEFAULT_WARMUP_SECONDS = 10.0
DEFAULT_SA_ITERATIONS = 4000
SA_STEP = "adaptive"  # see allocator.allocation.cont_kukanov.solve_sa: measured against the exact optimum
SA_GAMMA0 = 0.3
SOLVERS = ("exact", "sa")
PRICE_DECIMALS = 9
MAX_ROUNDING_VENUES = 8  # up to 2^(K+1) whole-share neighbours are priced; beyond, the simple rule


@dataclass(frozen=True)
class SimSettings:
    """Everything about the realistic model that is not a grid parameter."""

    horizon_ns: int = int(DEFAULT_HORIZON_SECONDS * NS_PER_SECOND)
    warmup_ns: int = int(DEFAULT_WARMUP_SECONDS * NS_PER_SECOND)
    latency: Latency = field(default_factory=Latency)
    queue_model: QueueModel = field(default_factory=QueueModel)
    sa_iterations: int = DEFAULT_SA_ITERATIONS
    seed: int = 0
    solver: str = "exact"
    outflow_samples: int = DEFAULT_SAMPLES
    calibration_ns: int = int(DEFAULT_CALIBRATION_SECONDS * NS_PER_SECOND)

    def __post_init__(self) -> None:
        if self.horizon_ns <= 0:
            raise ValueError("the horizon must be positive")
        if self.warmup_ns < 0 or self.sa_iterations < 1:
            raise ValueError("warmup must be ≥ 0 and SA iterations ≥ 1")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {self.solver!r}")
        if self.outflow_samples < 1 or self.calibration_ns < 0:
            raise ValueError("outflow samples must be ≥ 1 and the calibration lookback ≥ 0")

    def report(self) -> dict:
        return {
            "horizon_seconds": self.horizon_ns / NS_PER_SECOND,
            "warmup_seconds": self.warmup_ns / NS_PER_SECOND,
            "latency_ms": self.latency.entry_ns / 1e6,
            "jitter_ms": self.latency.jitter_ns / 1e6,
            "queue_model": self.queue_model.kind,
            "queue_power": self.queue_model.power if self.queue_model.kind == "probabilistic" else None,
            "solver": self.solver,
            "sa_iterations": self.sa_iterations if self.solver == "sa" else None,
            "sa_step": f"{SA_STEP} (gamma0 {SA_GAMMA0:g})" if self.solver == "sa" else None,
            "outflow_samples": self.outflow_samples,
            "outflow_estimator": "circular block bootstrap of ≤1 s increments, 5 s blocks",
            "calibration_seconds": self.calibration_ns / NS_PER_SECOND,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Arrival:
    """When every strategy starts: the window start, or later by the same delay for all when the data holds
    less than `warmup` of history before it (the router needs some outflow history to decide)."""

    ts_ns: int
    window_start_ns: int
    history_start_ns: int  # the earliest row the outflow estimator may use (window start − lookback at most)

    @property
    def delay_ns(self) -> int:
        return self.ts_ns - self.window_start_ns

    @property
    def history_seconds(self) -> float:
        """History seen before the window (what the file held, up to the lookback)."""
        return max(self.window_start_ns - self.history_start_ns, 0) / NS_PER_SECOND

    def report(self) -> dict[str, Any]:
        return {
            "ts": format_ns(self.ts_ns),
            "window_start": format_ns(self.window_start_ns),
            "delay_seconds": self.delay_ns / NS_PER_SECOND,
            "history_seconds_before_window": self.history_seconds,
            "note": (
                None
                if self.delay_ns == 0
                else "the data holds too little history before the window, so every strategy (router and "
                "baselines) arrives this much later, after observing the delay's rows"
            ),
        }


def common_arrival(window_start_ns: int, first_row_ns: int | None, settings: SimSettings) -> Arrival:
    """The one arrival of every strategy: at the window start when `warmup` of history precedes it."""
    history_start = window_start_ns if first_row_ns is None else min(int(first_row_ns), window_start_ns)
    history_start = max(history_start, window_start_ns - settings.calibration_ns)
    have = window_start_ns - history_start
    # The estimator never looks back further than the calibration lookback, so waiting for more than
    # that buys nothing: the need is the warmup, capped at the lookback.
    need = min(settings.warmup_ns, settings.calibration_ns)
    delay = max(need - have, 0)
    return Arrival(window_start_ns + delay, window_start_ns, history_start)


@dataclass(frozen=True)
class SimMarket:
    """The faithful Market (snapshots and fees) plus the full message streams and the model settings."""

    market: Market
    book: Book
    settings: SimSettings
    tick_seen: np.ndarray  # int64 [T]: when each snapshot tick could be known (its rows' latest ts_seen)
    outflow: list[np.ndarray]  # per venue, cumulative queue outflow at the best posting level, per row
    arrival_mid: float | None  # cost-space consolidated mid seen at the arrival: the benchmark price
    arrival: Arrival
    # Observations by (time, our depletion state): grid points that reach the same state at the same time
    # (all of them at the arrival) share the quote and the outflow samples instead of recomputing them.
    observations: dict = field(default_factory=dict, compare=False, repr=False)

    def observe(self, sim: Simulator, t: int, horizon_ns: int | None = None) -> Observation | None:
        key = (t, horizon_ns, sim.depletion.state())
        if key not in self.observations:
            self.observations[key] = observe(self, sim, t, horizon_ns)
        return self.observations[key]

    def simulator(self, seed_offset: int = 0) -> Simulator:
        return Simulator(
            self.book,
            self.market.taker_fee,
            self.market.maker_rebate,
            self.settings.latency,
            self.settings.queue_model,
            seed=self.settings.seed + seed_offset,
        )

    @property
    def arrival_ns(self) -> int:
        return self.arrival.ts_ns

    @property
    def cleanup_time(self) -> int:
        """When strategies send their clean-up: one round trip after the window closes, so every fill of
        an order cancelled at the close has been reported."""
        return self.market.window_end_ns + 2 * self.settings.latency.max_ns


def cumulative_outflow(stream: VenueStream, queue_model: QueueModel) -> np.ndarray:
    """Cumulative shares that left the best posting level by row: traded volume, plus (probabilistic model)
    the level's decreases that the printed trades do not explain, matched exactly as the simulator matches
    them (`split_decrease`), so the router's ξ and its fills measure the same thing."""
    out = stream.hit_sz.astype(np.float64)
    if queue_model.kind == "probabilistic" and stream.rows > 1:
        pending = 0.0
        previous = -1
        for r in stream.interesting.tolist():  # rows where the best level or a trade changed
            traded = float(stream.hit_sz[r]) if stream.hit_px[r] == stream.post_px[r] else 0.0
            if previous >= 0 and stream.post_px[r] == stream.post_px[previous]:
                drop = float(stream.post_sz[previous] - stream.post_sz[r])
                cancelled, pending = split_decrease(drop, pending, traded)
                out[r] += cancelled
            else:
                pending = traded
            previous = r
    return np.cumsum(out)


def outflow_increments(
    sim_market: SimMarket, venues: list[int], t: int, horizon_ns: int | None = None
) -> np.ndarray:
    """Per-interval outflow (m, K) at each venue over the history before t, from rows seen by t only;
    the intervals divide `horizon_ns` (default: the settings' horizon)."""
    settings = sim_market.settings
    step, _ = increment_step(horizon_ns or settings.horizon_ns)
    edges = increment_times(t, sim_market.arrival.history_start_ns, step, settings.calibration_ns)
    out = np.empty((max(len(edges) - 1, 0), len(venues)))
    for k, v in enumerate(venues):
        cum = _cum_at(sim_market.book.streams[v], sim_market.outflow[v], edges)
        out[:, k] = np.diff(cum)
    return out


def outflow_samples(
    sim_market: SimMarket, venues: list[int], t: int, horizon_ns: int | None = None
) -> np.ndarray:
    """ξ samples (n, K) for a decision at t: the block bootstrap of allocator.allocation.outflow over the history seen
    by t. Seeded by (seed, t), so every grid point deciding at t sees the same samples (common random
    numbers: grid differences are the parameters', not the sampler's). `horizon_ns` is how long the
    orders will rest (the last decision's is cut by the window end). No history yet: ξ = 0."""
    settings = sim_market.settings
    horizon_ns = horizon_ns or settings.horizon_ns
    increments = outflow_increments(sim_market, venues, t, horizon_ns)
    if increments.shape[0] == 0:
        return np.zeros((1, len(venues)))
    step, per_horizon = increment_step(horizon_ns)
    rng = np.random.default_rng([settings.seed, t])
    return block_bootstrap(increments, per_horizon, settings.outflow_samples, block_length(step), rng)


def _cum_at(stream: VenueStream, cum: np.ndarray, times: np.ndarray) -> np.ndarray:
    rows = np.searchsorted(stream.ts_seen, times, side="right") - 1
    return np.where(rows >= 0, cum[np.clip(rows, 0, None)], 0.0)


@dataclass(frozen=True)
class Quote:
    """What the router sees at a decision: per venue best take / post prices and sizes (cost space)."""

    take_px: np.ndarray
    take_sz: np.ndarray
    post_px: np.ndarray
    post_sz: np.ndarray


def seen_quote(sim: Simulator, t: int) -> Quote:
    n = len(sim.book.streams)
    take_px, post_px = np.full(n, np.nan), np.full(n, np.nan)
    take_sz, post_sz = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for v, stream in enumerate(sim.book.streams):
        row = stream.row_seen(t)
        if row < 0:
            continue
        prices, sizes = sim.seen_take_levels(v, t)
        live = np.flatnonzero((sizes > 0) & np.isfinite(prices))
        if live.size:
            take_px[v], take_sz[v] = prices[live[0]], sizes[live[0]]
        post_px[v], post_sz[v] = stream.post_px[row], stream.post_sz[row]
    return Quote(take_px, take_sz, post_px, post_sz)


def round_split(x: np.ndarray, remaining: int) -> tuple[int, np.ndarray]:
    """Whole shares by nearest rounding, keeping the model's constraint M + ΣL ≥ S and 0 ≤ L_k ≤ S − M."""
    market = int(np.clip(np.rint(x[0]), 0, remaining))
    limits = np.clip(np.rint(x[1:]), 0, remaining - market).astype(np.int64)
    short = remaining - market - int(limits.sum())
    if short > 0:
        market += short
        limits = np.minimum(limits, remaining - market)
    return market, limits


def best_whole_shares(
    x: np.ndarray, remaining: int, params: Params, samples: np.ndarray
) -> tuple[int, np.ndarray, float]:
    """The whole-share point among x's floor/ceil neighbours (and the nearest rounding) with the lowest
    sample cost, feasible for C; ties go to fewer shares, then less market, then the lower venue index
    (the solver's tie rule). An integral x is returned as it is. Returns (M, L, its sample cost)."""
    k = x.size - 1
    market, limits = round_split(x, remaining)
    candidates = [np.concatenate(([market], limits)).astype(float)]
    if k <= MAX_ROUNDING_VENUES:
        lo, hi = np.floor(x + 1e-9), np.ceil(x - 1e-9)
        corners = np.array(list(itertools.product((0, 1), repeat=k + 1)), dtype=float)
        grid = lo + corners * (hi - lo)
        grid = np.unique(grid, axis=0)
        ok = (
            (grid >= 0).all(axis=1)
            & (grid[:, 1:] <= remaining - grid[:, :1]).all(axis=1)
            & (grid.sum(axis=1) >= remaining)
            & (grid[:, 0] <= remaining)
        )
        candidates += list(grid[ok])
    pts = np.unique(np.array(candidates), axis=0)
    costs = np.array([sample_costs(p, samples, params, float(remaining)).mean() for p in pts])
    weights = tie_weights(k)
    best = min(range(len(pts)), key=lambda i: (round(costs[i], 9), float(pts[i] @ weights)))
    point = pts[best]
    return int(point[0]), point[1:].astype(np.int64), float(costs[best])


def run_ck_router(
    sim_market: SimMarket,
    order_size: int,
    lambda_over: float,
    lambda_under: float,
    theta_queue: float,
    name: str = "optimized",
) -> Execution:
    """The Cont–Kukanov router over the window (see the module docstring)."""
    market, settings = sim_market.market, sim_market.settings
    sim = sim_market.simulator()
    report_delay = settings.latency.max_ns
    end = market.window_end_ns
    decisions: list[dict] = []
    t = sim_market.arrival_ns
    step_seed = settings.seed
    while t < end:
        t_next = min(t + settings.horizon_ns, end)
        known = _reported(sim.ledger, t, report_delay)
        remaining = order_size - known
        if remaining <= 0:
            break
        decision = _decide(
            sim_market, sim, t, t_next - t, remaining, lambda_over, lambda_under, theta_queue, step_seed
        )
        step_seed += 1
        if decision is not None:
            decisions.append(decision)
            _execute(sim, decision, t, t_next, remaining)
        t = t_next
    cleanup(sim_market, sim, order_size)
    return to_execution(sim.ledger, name, order_size, sim_market, decisions)


def _reported(ledger: Ledger, t: int, delay_ns: int) -> int:
    """Shares whose fill reports surely reached us by time t (a report takes at most one latency)."""
    return sum(q for ts, q in zip(ledger.ts, ledger.shares, strict=True) if ts + delay_ns <= t)


@dataclass(frozen=True)
class Observation:
    """What the router knows at a decision: the quote it sees and, for the venues it may post at, the
    model's market inputs (everything in Params except the grid's penalties) and the outflow samples."""

    t: int
    quote: Quote
    market_venue: int  # cheapest ask + fee: where M goes first, and whose fee is f
    limit_venues: list[int]  # venues quoting the best posting price (below the best ask)
    post_px: float | None
    half_spread: float
    samples: np.ndarray  # (n, K) outflow samples, all seen before t

    @property
    def mid(self) -> float | None:
        """The consolidated cost-space mid seen at t (best take and best posting price)."""
        if self.post_px is None:
            return None
        return round((float(np.nanmin(self.quote.take_px)) + self.post_px) / 2, PRICE_DECIMALS)


def observe(
    sim_market: SimMarket, sim: Simulator, t: int, horizon_ns: int | None = None
) -> Observation | None:
    """The decision inputs at time t for orders resting `horizon_ns` (default: the settings' horizon),
    from rows seen by t only; None when no venue offers anything."""
    market = sim_market.market
    quote = seen_quote(sim, t)
    if not np.isfinite(quote.take_px).any():
        return None
    all_in = np.where(np.isfinite(quote.take_px), quote.take_px + market.taker_fee, np.inf)
    best_take = float(np.nanmin(quote.take_px))
    postable = np.isfinite(quote.post_px) & (quote.post_sz > 0) & (quote.post_px < best_take)
    limit_venues: list[int] = []
    h, best_post = 0.0, None
    if postable.any():
        best_post = float(np.max(quote.post_px[postable]))
        limit_venues = [int(v) for v in np.flatnonzero(postable & (quote.post_px == best_post))]
        # Prices live on Databento's 1e-9 grid, so the half-spread does too; rounding removes the float noise
        # of the subtraction (which differs between a market and its mirror image).
        h = round((best_take - best_post) / 2, PRICE_DECIMALS)
    samples = outflow_samples(sim_market, limit_venues, t, horizon_ns) if limit_venues else np.zeros((1, 0))
    return Observation(t, quote, int(np.argmin(all_in)), limit_venues, best_post, h, samples)


def model_params(
    obs: Observation, market: Market, lambda_over: float, lambda_under: float, theta_queue: float
) -> Params:
    """Params of the Cont–Kukanov problem for an observation and one grid point."""
    return Params(
        h=obs.half_spread,
        f=float(market.taker_fee[obs.market_venue]),
        r=market.maker_rebate[obs.limit_venues],
        Q=obs.quote.post_sz[obs.limit_venues].astype(float),
        theta=theta_queue,
        lambda_u=lambda_under,
        lambda_o=lambda_over,
    )


@dataclass(frozen=True)
class Solved:
    """A solver's answer for one decision: the point, its sample cost and how it was established."""

    x: np.ndarray
    objective: float
    certificate: dict[str, Any]


def solve(remaining: int, params: Params, samples: np.ndarray, settings: SimSettings, seed: int) -> Solved:
    """The router's solve: exact and certified (default), or the paper's SA with the measured step rule."""
    if settings.solver == "exact":
        try:
            exact: ExactSolution = solve_exact(float(remaining), params, samples)
        except RuntimeError as exc:  # HiGHS stopped without an optimum (e.g. the integer model's time limit)
            raise UserError(
                f"the exact solver failed on a decision ({exc}); rerun with --solver sa"
            ) from None
        if not exact.certified:  # never act on it silently: the gap did not close within tolerance
            raise UserError(
                f"the exact solver could not certify a decision (gap {exact.gap:.3g} $ > {exact.tolerance:.3g} $); "
                "rerun with --solver sa"
            )
        return Solved(exact.x, exact.objective, exact.certificate())
    x, info = solve_sa(
        float(remaining),
        params,
        samples,
        n_iter=settings.sa_iterations,
        step=SA_STEP,
        gamma0=SA_GAMMA0,
        rng=seed,
    )
    value = float(sample_costs(x, samples, params, float(remaining)).mean())
    return Solved(
        x,
        value,
        {"method": "sa", "n_iter": info["n_iter"], "batch_size": info["batch_size"], "step": SA_STEP},
    )


def _decide(
    sim_market: SimMarket,
    sim: Simulator,
    t: int,
    horizon_ns: int,
    remaining: int,
    lambda_over: float,
    lambda_under: float,
    theta_queue: float,
    seed: int,
) -> dict | None:
    obs = sim_market.observe(sim, t, horizon_ns)
    if obs is None:
        return None  # nothing to trade against yet; the next horizon tries again
    record: dict = {
        "t": t,
        "remaining": remaining,
        "market_venue": obs.market_venue,
        "half_spread": obs.half_spread,
        "mid": obs.mid,
        "horizon_ns": horizon_ns,
        "lambda_over": lambda_over,
        "lambda_under": lambda_under,
        "theta_queue": theta_queue,
    }
    if not obs.limit_venues:
        record.update(market=remaining, limits={}, post_px=None, solver=None)
        return record
    params = model_params(obs, sim_market.market, lambda_over, lambda_under, theta_queue)
    solved = solve(remaining, params, obs.samples, sim_market.settings, seed)
    mkt, limits, sent_cost = best_whole_shares(solved.x, remaining, params, obs.samples)
    venues = obs.limit_venues
    record.update(
        market=mkt,
        limits={v: int(q) for v, q in zip(venues, limits, strict=True) if q > 0},
        queue_ahead={v: int(q) for v, q in zip(venues, obs.quote.post_sz[venues], strict=True)},
        post_px=obs.post_px,
        outflow_median={v: float(np.median(obs.samples[:, k])) for k, v in enumerate(venues)},
        outflow_samples=len(obs.samples),
        venues=list(venues),
        f=params.f,
        r=[float(v) for v in params.r],
        Q=[float(v) for v in params.Q],
        xi=obs.samples,
        x=solved.x,
        objective=solved.objective,
        sent_objective=sent_cost,
        solver=sim_market.settings.solver,
        certificate=solved.certificate,
    )
    return record


def _execute(sim: Simulator, decision: dict, t: int, t_next: int, remaining: int) -> None:
    first = len(sim.ledger)
    sim.sweep(t, decision["market"])
    resting_from = len(sim.ledger)
    for v, q in decision["limits"].items():
        sim.rest(v, decision["post_px"], q, t, t_next)
    # Parent complete: once fills reported to us cover `remaining`, we cancel the resting orders; what they
    # fill before the cancel lands (report + cancel = two latencies) still counts, as over-fills.
    order = sorted(range(first, len(sim.ledger)), key=lambda i: (sim.ledger.ts[i], i))
    cancel_lag = 2 * sim.latency.max_ns
    done_at = None
    total = 0
    keep = [True] * len(sim.ledger)
    for i in order:
        if done_at is not None and i >= resting_from and sim.ledger.ts[i] > done_at + cancel_lag:
            keep[i] = False
            continue
        total += sim.ledger.shares[i]
        if done_at is None and total >= remaining:
            done_at = sim.ledger.ts[i]
    if not all(keep):
        sim.ledger.drop(keep)


def cleanup(sim_market: SimMarket, sim: Simulator, order_size: int) -> None:
    """Buy whatever is missing at the close, marketable across venues' depth, priced like any taker order."""
    missing = order_size - sim.ledger.filled()
    if missing > 0:
        sim.sweep(sim_market.cleanup_time, missing, kind="cleanup")


def to_execution(
    ledger: Ledger, name: str, order_size: int, sim_market: SimMarket, decisions: list[dict]
) -> Execution:
    """Ledger → Execution in time order, with `tick` the snapshot in force at each fill (for the ledger CSV)
    and the arrival mid as the price at which extra or missing shares are valued."""
    market = sim_market.market
    ts = np.asarray(ledger.ts, dtype=np.int64)
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    tick = np.clip(np.searchsorted(market.snapshots.ts_event, ts, side="right") - 1, 0, None)
    return Execution(
        name=name,
        order_size=order_size,
        tick=tick.astype(np.int64),
        venue=np.asarray(ledger.venue, dtype=np.int64)[order],
        price=np.asarray(ledger.price, dtype=np.float64)[order],
        shares=np.asarray(ledger.shares, dtype=np.int64)[order],
        fee=np.asarray(ledger.fee, dtype=np.float64)[order],
        rebate=np.asarray(ledger.rebate, dtype=np.float64)[order],
        side=market.snapshots.side,
        ts=ts,
        kind=np.asarray(ledger.kind, dtype="<U7")[order],
        queue_ahead=np.asarray(ledger.queue_ahead, dtype=np.float64)[order],
        order_id=np.asarray(ledger.order_id, dtype=np.int64)[order],
        decisions=decisions,
        mark_px=sim_market.arrival_mid,
    )


def tick_seen_times(frame_ts_event: np.ndarray, frame_ts_seen: np.ndarray, tick_ts: np.ndarray) -> np.ndarray:
    """When each snapshot tick becomes known: the latest ts_seen among rows up to and including it."""
    seen = np.full(len(tick_ts), np.iinfo(np.int64).min, dtype=np.int64)
    tick_of = np.searchsorted(tick_ts, frame_ts_event)
    np.maximum.at(seen, tick_of, frame_ts_seen)
    return np.maximum.accumulate(np.maximum(seen, tick_ts))


def build_sim_market(
    snapshots: Snapshots,
    taker_fee: np.ndarray,
    maker_rebate: np.ndarray,
    window: tuple[int, int],
    book: Book,
    frame_ts_event: np.ndarray,
    frame_ts_recv: np.ndarray,
    settings: SimSettings,
) -> SimMarket:
    """The realistic mode's market from snapshots and streams over history + window rows.

    The snapshots keep the tick in force at the arrival and every later one, so the baselines start from
    the same seen state as the router; earlier ticks (history) are used only through the outflow
    estimator, never traded against."""
    seen = np.maximum(frame_ts_recv, frame_ts_event)
    tick_seen = tick_seen_times(frame_ts_event, seen, snapshots.ts_event)
    first_row = int(frame_ts_event.min()) if len(frame_ts_event) else None
    arrival = common_arrival(window[0], first_row, settings)
    first_tick = max(int(np.searchsorted(tick_seen, arrival.ts_ns, side="right")) - 1, 0)
    market = Market(snapshots.since(first_tick), taker_fee, maker_rebate, window[0], window[1])
    outflow = [cumulative_outflow(s, settings.queue_model) for s in book.streams]
    sim_market = SimMarket(
        market=market,
        book=book,
        settings=settings,
        tick_seen=tick_seen[first_tick:],
        outflow=outflow,
        arrival_mid=None,
        arrival=arrival,
    )
    return dataclasses.replace(sim_market, arrival_mid=arrival_mid(sim_market))


def arrival_mid(sim_market: SimMarket) -> float | None:
    """Cost-space mid of the consolidated best prices seen at the arrival: the arrival price benchmark."""
    quote = seen_quote(sim_market.simulator(), sim_market.arrival_ns)
    if not (np.isfinite(quote.take_px).any() and np.isfinite(quote.post_px).any()):
        return None
    return round(float((np.nanmin(quote.take_px) + np.nanmax(quote.post_px)) / 2), PRICE_DECIMALS)
