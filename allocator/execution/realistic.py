"""`--mode cont-kukanov`: the paper's market/limit split, re-solved every horizon, executed by the simulator.

Every `horizon` seconds from the common arrival (allocator.execution.sim_market.common_arrival) the router:
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
exactly as for the baselines, so all strategies compare at equal shares. What the router observes (steps
1–3) is built in allocator.execution.sim_market; what it decides (step 4) in allocator.allocation.policy.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from allocator.allocation.cont_kukanov import Params
from allocator.allocation.penalties import Penalties
from allocator.allocation.policy import Decision, best_whole_shares, solve
from allocator.execution.faithful import Execution, Market
from allocator.execution.sim_market import Observation, SimMarket, cleanup, to_execution
from allocator.execution.simulator import Ledger, Simulator


@dataclass
class RouterStep:
    """One horizon of the router's session: its index, time, the decision taken there (None when there was
    nothing to trade against), the simulator (a caller may look at the state before it executes), when the
    horizon ends and the shares still to buy."""

    index: int
    t: int
    decision: Decision | None
    sim: Simulator
    t_next: int
    remaining: int


@dataclass
class ChildSegment:
    """The ledger rows a decision's child orders produced: [start, end), and the order ids of its market
    sweep (sweep_oids[0] < oid ≤ sweep_oids[1]); everything else in the segment came from its limit orders."""

    index: int
    start: int
    end: int
    sweep_oids: tuple[int, int]


@dataclass
class RouterSession:
    """The Cont–Kukanov router as a resumable loop: `decide()` takes the next horizon's decision and
    `execute()` sends it, so a streaming caller can decide as soon as the rows seen by t are in and execute
    once the horizon's rows are (allocator.stream.ck); `steps()` runs both in turn. `known` replays
    decisions already taken instead of solving them again (they are causal: a decision at t reads only rows
    seen by t, so the same data prefix gives the same decision)."""

    sim_market: SimMarket
    order_size: int
    penalties: Penalties
    known: Sequence[Decision | None] = ()
    until: int | None = None  # stop before deciding horizon `until` (None: run to the end)
    decisions: list[Decision] = field(default_factory=list)
    segments: list[ChildSegment] = field(default_factory=list)
    sim: Simulator = field(init=False)
    stopped: str = ""  # why the session stopped deciding: filled, end (of the window) or until
    index: int = field(init=False, default=0)  # the next horizon's index
    t: int = field(init=False)  # the next horizon's time

    def __post_init__(self) -> None:
        self.sim = self.sim_market.simulator()
        self.t = self.sim_market.arrival_ns

    def decide(self, end_ns: int | None = None) -> RouterStep | None:
        """The decision at the next horizon, before it executes; None once the session stops (the fills
        reported cover the order, the window (ending at `end_ns`, default the market's) is over, or `until`
        is reached)."""
        settings = self.sim_market.settings
        end = self.sim_market.market.window_end_ns if end_ns is None else end_ns
        t, index = self.t, self.index
        if t >= end:
            self.stopped = "end"
            return None
        t_next = min(t + settings.horizon_ns, end)
        remaining = self.order_size - _reported(self.sim.ledger, t, settings.latency.max_ns)
        if remaining <= 0:
            self.stopped = "filled"
            return None
        if self.until is not None and index >= self.until:
            self.stopped = "until"
            return None
        if index < len(self.known):
            decision = self.known[index]
        else:
            seed = settings.seed + index
            decision = _decide(self.sim_market, self.sim, t, t_next - t, remaining, self.penalties, seed)
        return RouterStep(index, t, decision, self.sim, t_next, remaining)

    def execute(self, step: RouterStep) -> None:
        """Send the step's decision (its market sweep and limit orders, until the next horizon) and move on
        to the next horizon. It reads rows up to `step.t_next` plus one latency (when the last cancel lands)."""
        decision = step.decision
        if decision is not None:
            sim = self.sim
            self.decisions.append(decision)
            start, oid = len(sim.ledger), sim.orders_sent
            swept = _execute(sim, decision, step.t, step.t_next, step.remaining)
            self.segments.append(ChildSegment(step.index, start, len(sim.ledger), (oid, swept)))
        self.index, self.t = step.index + 1, step.t_next

    def steps(self) -> Iterator[RouterStep]:
        while (step := self.decide()) is not None:
            yield step
            self.execute(step)

    def fork(self) -> RouterSession:
        """A copy to run ahead on (its own simulator state, decisions and segments; the same market)."""
        twin = copy.copy(self)
        twin.sim = self.sim.fork()
        twin.decisions, twin.segments = list(self.decisions), list(self.segments)
        return twin

    def finish(self, name: str = "optimized") -> Execution:
        """The clean-up at the close and the Execution (call once the session stopped deciding)."""
        cleanup(self.sim_market, self.sim, self.order_size)
        return to_execution(self.sim.ledger, name, self.order_size, self.sim_market, self.decisions)


def run_ck_router(
    sim_market: SimMarket,
    order_size: int,
    penalties: Penalties,
    name: str = "optimized",
) -> Execution:
    """The Cont–Kukanov router over the window (see the module docstring)."""
    session = RouterSession(sim_market, order_size, penalties)
    for _step in session.steps():
        pass
    return session.finish(name)


def _reported(ledger: Ledger, t: int, delay_ns: int) -> int:
    """Shares whose fill reports surely reached us by time t (a report takes at most one latency)."""
    return sum(q for ts, q in zip(ledger.ts, ledger.shares, strict=True) if ts + delay_ns <= t)


def model_params(obs: Observation, market: Market, penalties: Penalties) -> Params:
    """Params of the Cont–Kukanov problem for an observation and one grid point."""
    return Params(
        h=obs.half_spread,
        f=float(market.taker_fee[obs.market_venue]),
        r=market.maker_rebate[obs.limit_venues],
        Q=obs.book.post_sz[obs.limit_venues].astype(float),
        theta=penalties.theta_queue,
        lambda_u=penalties.lambda_under,
        lambda_o=penalties.lambda_over,
    )


def _decide(
    sim_market: SimMarket,
    sim: Simulator,
    t: int,
    horizon_ns: int,
    remaining: int,
    penalties: Penalties,
    seed: int,
) -> Decision | None:
    """Observe at t, solve, round: the decision to send, or None when there is nothing to trade against yet
    (the next horizon tries again)."""
    obs = sim_market.observe(sim, t, horizon_ns)
    if obs is None:
        return None
    seen = functools.partial(
        Decision,
        t=t,
        remaining=remaining,
        market_venue=obs.market_venue,
        half_spread=obs.half_spread,
        mid=obs.mid,
        horizon_ns=horizon_ns,
        penalties=penalties,
    )
    if not obs.limit_venues:
        return seen(market=remaining, limits={}, post_px=None)
    params = model_params(obs, sim_market.market, penalties)
    solved = solve(remaining, params, obs.samples, sim_market.settings, seed)
    mkt, limits, sent_cost = best_whole_shares(solved.x, remaining, params, obs.samples)
    venues = obs.limit_venues
    return seen(
        market=mkt,
        limits={v: int(q) for v, q in zip(venues, limits, strict=True) if q > 0},
        post_px=obs.post_px,
        solver=sim_market.settings.solver,
        queue_ahead={v: int(q) for v, q in zip(venues, obs.book.post_sz[venues], strict=True)},
        outflow_samples=len(obs.samples),
        venues=list(venues),
        f=params.f,
        r=[float(v) for v in params.r],
        Q=[float(v) for v in params.Q],
        xi=obs.samples,
        x=solved.x,
        objective=solved.objective,
        sent_objective=sent_cost,
        certificate=solved.certificate,
    )


def _execute(sim: Simulator, decision: Decision, t: int, t_next: int, remaining: int) -> int:
    """Send M as a sweep and rest each L_k until the next horizon, then drop what the parent-complete cancel
    would have prevented. Returns the last order id of the sweep (the limit orders' ids follow it)."""
    first = len(sim.ledger)
    sim.sweep(t, decision.market)
    swept = sim.orders_sent
    resting_from = len(sim.ledger)
    for v, q in decision.limits.items():
        assert decision.post_px is not None  # set whenever there are limit venues
        sim.rest(v, decision.post_px, q, t, t_next)
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
    return swept
