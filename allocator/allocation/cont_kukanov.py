"""Cont & Kukanov's static order-placement model: cost, subgradient, exact projection, SA solver, closed form.

Reference: R. Cont and A. Kukanov, "Optimal order placement in limit order markets", Quantitative
Finance 17(1), 21–39 (2017); arXiv:1210.1625 (v4, 23 Nov 2014; "First version: October 2012. Revised:
October 2014").

What was checked against which source. The primary text was reachable only up to its abstract, keywords
and the start of Section 1 (arXiv/ar5iv copies). That confirms that the problem is posed as a *convex*
optimisation problem, that the single-exchange case has an explicit solution for the limit/market split,
and that the multi-exchange case is solved by a stochastic (Robbins–Monro) approximation algorithm fed with
recent order-fill data. The equation, proposition and section numbers below come from secondary sources
and were NOT checked against the primary text: cost (5) and the feasible set of Proposition 1, and the
constant step of Section 4.1 (from a public implementation that cites them); and the single-exchange
solution as Proposition 3, with its two corners (from two independent summaries). Nothing below depends on
those numbers being right: every formula implemented here is derived below and tested in
tests/allocation/test_cont_kukanov.py against independent references.

Objective (the issue's formula, implemented exactly). Buy S shares: X = (M, L_1..L_K), M market shares,
L_k limit shares at venue k's best bid behind Q_k queued shares, ξ_k the venue's queue outflow over the
horizon:

    fill_k = min((ξ_k − Q_k)⁺, L_k),    A = M + Σ_k fill_k,
    v(X, ξ) = (h+f)·M − Σ_k (h+r_k)·fill_k + θ·(M + Σ_k L_k + (S−A)⁺) + λ_u·(S−A)⁺ + λ_o·(A−S)⁺.

θ is charged on every share sent, including the (S−A)⁺ catch-up market order at the end. The public
implementation that cites cost (5) uses the same θ term. The closed form as the summaries quote it,
L* = F⁻¹((2h+f+r)/(λ_u+h+r+θ)) − Q, is the first-order condition of *this* objective and of no variant
without the catch-up term (see `closed_form_single_venue`). So the issue's formula and the paper's
closed form agree, and both are implemented as they are.

Feasible set C = {0 ≤ M ≤ S, 0 ≤ L_k ≤ S − M, M + Σ_k L_k ≥ S}. With K = 1 it is the segment M + L = S.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Sampler = Callable[[np.random.Generator, int], FloatArray]
StepSchedule = Literal["paper", "sqrt", "adaptive"]


@dataclass(frozen=True, init=False)
class Params:
    """Per-share economics of one decision. `f` is one scalar because the caller picks the market venue.

    r and Q accept any 1-D array-like and are stored as read-only float arrays (hence the hand-written
    __init__: the constructor takes what the stored fields are made from).

    h: half-spread; f: taker fee on M; r[k]: maker rebate at venue k (net of adverse selection if the
    caller wants); Q[k]: shares queued ahead at venue k; theta: impact per share sent; lambda_u /
    lambda_o: penalty per share of under- / over-execution.
    """

    h: float
    f: float
    r: FloatArray
    Q: FloatArray
    theta: float
    lambda_u: float
    lambda_o: float

    def __init__(
        self,
        h: float,
        f: float,
        r: npt.ArrayLike,
        Q: npt.ArrayLike,  # noqa: N803 - the paper's symbol
        theta: float,
        lambda_u: float,
        lambda_o: float,
    ) -> None:
        rebates = np.atleast_1d(np.asarray(r, dtype=float)).copy()
        queues = np.atleast_1d(np.asarray(Q, dtype=float)).copy()
        if rebates.ndim != 1 or queues.shape != rebates.shape or rebates.size == 0:
            raise ValueError(
                f"r and Q must be 1-D arrays of one common length ≥ 1, got {rebates.shape} and {queues.shape}"
            )
        scalars = (h, f, theta, lambda_u, lambda_o)
        if not (
            all(math.isfinite(float(s)) for s in scalars)
            and np.isfinite(rebates).all()
            and np.isfinite(queues).all()
        ):
            raise ValueError("every parameter must be finite")
        if min(theta, lambda_u, lambda_o) < 0 or (queues < 0).any():
            raise ValueError("theta, lambda_u, lambda_o and Q must be ≥ 0")
        rebates.flags.writeable = False  # frozen means frozen: no silent edits through the array
        queues.flags.writeable = False
        stored = {
            "h": h,
            "f": f,
            "r": rebates,
            "Q": queues,
            "theta": theta,
            "lambda_u": lambda_u,
            "lambda_o": lambda_o,
        }
        for name, value in stored.items():
            object.__setattr__(self, name, value)

    @property
    def K(self) -> int:  # noqa: N802 - the paper's symbol
        """Number of limit-order venues."""
        return int(self.r.size)


def _decision(x: FloatArray, params: Params) -> FloatArray:
    arr = np.asarray(x, dtype=float)
    if arr.shape != (params.K + 1,):
        raise ValueError(f"x must have shape ({params.K + 1},) = (M, L_1..L_K), got {arr.shape}")
    return arr


def _outflows(xi: FloatArray, params: Params) -> FloatArray:
    arr = np.asarray(xi, dtype=float)
    if arr.ndim not in (1, 2) or arr.shape[-1] != params.K:
        raise ValueError(f"outflows must have shape (K,) or (n, K) with K = {params.K}, got {arr.shape}")
    return arr


def sample_costs(x: FloatArray, samples: FloatArray, params: Params, S: float) -> FloatArray:  # noqa: N803
    """v(X, ξ) for each row ξ of `samples` (shape (n, K)); kept separate so tests can see the whole law."""
    x = _decision(x, params)
    xi = np.atleast_2d(_outflows(samples, params))
    mkt, lim = x[0], x[1:]
    fill = np.minimum(np.maximum(xi - params.Q, 0.0), lim)
    executed = mkt + fill.sum(axis=1)
    short = np.maximum(S - executed, 0.0)
    excess = np.maximum(executed - S, 0.0)
    return (
        (params.h + params.f) * mkt
        - fill @ (params.h + params.r)
        + params.theta * (mkt + lim.sum() + short)
        + params.lambda_u * short
        + params.lambda_o * excess
    )


def expected_cost(x: FloatArray, samples: FloatArray, params: Params, S: float) -> float:  # noqa: N803
    """Monte Carlo estimate of V(X) = E v(X, ξ): the mean over the outflow rows in `samples`.

    S is a required argument (not in the issue's signature) because v depends on the target through
    (S − A)⁺ and (A − S)⁺, and `Params` deliberately describes the market, not the order.
    """
    return float(sample_costs(x, samples, params, S).mean())


def cost_subgradient(x: FloatArray, xi: FloatArray, params: Params, S: float) -> FloatArray:  # noqa: N803
    """A subgradient g(X, ξ) of v(·, ξ), for one ξ of shape (K,) or one row per sample for ξ of shape (n, K).

    Differentiating the objective (∂A/∂M = 1, ∂fill_k/∂L_k = 1{ξ_k − Q_k > L_k}):

        c        = −(θ + λ_u)·1{A < S} + λ_o·1{A > S}
        ∂v/∂M    = h + f + θ + c
        ∂v/∂L_k  = θ + 1{ξ_k − Q_k > L_k}·(−(h + r_k) + c)

    At a kink (A = S, or ξ_k − Q_k = L_k) the indicator is taken as 0, which is in the convex hull of the
    one-sided slopes. A = S has positive probability when X lies on the face M + ΣL = S and every limit order
    fills, so that choice matters. The mean over rows is an unbiased estimate of ∇V where V is differentiable.
    """
    x = _decision(x, params)
    arr = _outflows(xi, params)
    single = arr.ndim == 1
    arr = np.atleast_2d(arr)
    mkt, lim = x[0], x[1:]
    avail = np.maximum(arr - params.Q, 0.0)
    executed = mkt + np.minimum(avail, lim).sum(axis=1)
    c = -(params.theta + params.lambda_u) * (executed < S) + params.lambda_o * (executed > S)
    grad = np.empty((arr.shape[0], params.K + 1))
    grad[:, 0] = params.h + params.f + params.theta + c
    grad[:, 1:] = params.theta + (avail > lim) * (c[:, None] - (params.h + params.r))
    return grad[0] if single else grad


def project(x: FloatArray, S: float) -> FloatArray:  # noqa: N803
    """Exact Euclidean projection of x = (M, L_1..L_K) onto C = {0≤M≤S, 0≤L_k≤S−M, M+ΣL_k≥S}.

    Why not clip: clipping M to [0, S] and then L to [0, S − M] ignores the coupling. It sends
    (M, L) = (S, S) to the all-market corner (S, 0) instead of (S/2, S/2), so the SA iterates stick to
    corners.

    Algorithm (exact, O(K log K), no iterations). Let B = {0 ≤ M ≤ S, 0 ≤ L_k ≤ S − M} (C without the sum
    constraint) and Δ = {x ≥ 0, Σx = S}.
    1. p = P_B(y). If M + ΣL ≥ S at p, return p.
    2. Otherwise return P_Δ(y), the projection onto the simplex (sort and threshold).

    Proof sketch. (a) C ∩ {M + ΣL = S} = Δ: on Δ, L_k ≤ ΣL = S − M, so the coupled cap holds for free.
    (b) If P_B(y) ∈ C, it is P_C(y), because C ⊆ B. (c) Otherwise let p* = P_C(y) and suppose that
    M + ΣL > S at p*. Then for every z ∈ B, the points p* + t(z − p*) with small t > 0 stay in C. So
    (y − p*)·(z − p*) ≤ 0 for all z ∈ B, p* = P_B(y), and P_B(y) ∈ C, which contradicts the case. Hence
    the sum constraint is active at p*, p* ∈ Δ ⊆ C, and p* = P_Δ(y).
    P_B, exactly. For fixed M the optimal L is clip(l, 0, S − M), leaving the convex function
    φ(M) = ½(M − m)² + ½Σ_k ((l_k − S + M)⁺)² (the part of the distance that depends on M). Its derivative
    φ'(M) = M − m + Σ_k (M − t_k)⁺ with t_k = S − l_k is strictly increasing and piecewise linear. The
    root comes from the sorted breakpoints, M = (m + Σ_{j active} t_j)/(1 + #active), clipped to [0, S].
    """
    y = np.asarray(x, dtype=float)
    if y.ndim != 1 or y.size < 1:
        raise ValueError(f"x must be the 1-D vector (M, L_1..L_K), got shape {y.shape}")
    if not (math.isfinite(S) and S >= 0):
        raise ValueError(f"S must be finite and ≥ 0, got {S!r}")
    if not np.isfinite(y).all():
        raise ValueError("x must be finite")
    return _project(y, float(S))


def _project(y: FloatArray, s: float) -> FloatArray:
    if y.size == 1:  # K = 0: only the market order exists, so C = {S}
        return np.array([s])
    p = _project_coupled_box(y, s)
    if p.sum() >= s:
        return p
    return _project_simplex(y, s)


def _project_coupled_box(y: FloatArray, s: float) -> FloatArray:
    m, lim = y[0], y[1:]
    t = np.sort(s - lim)  # L_k's cap S − M binds once M > t_k
    before = np.concatenate(([0.0], np.cumsum(t)))  # before[i] = Σ_{j<i} t_j
    i = np.arange(t.size)
    slope_at_t = t * (1 + i) - m - before[:-1]  # φ'(t_i), nondecreasing in i
    active = int(np.count_nonzero(slope_at_t < 0))
    mkt = min(max((m + before[active]) / (1 + active), 0.0), s)
    out = np.empty_like(y)
    out[0] = mkt
    out[1:] = np.clip(lim, 0.0, s - mkt)
    return out


def _project_simplex(y: FloatArray, s: float) -> FloatArray:
    if s == 0.0:
        return np.zeros_like(y)
    u = np.sort(y)[::-1]
    excess = np.cumsum(u) - s
    k = np.arange(1, u.size + 1)
    rho = int(np.nonzero(u * k > excess)[0][-1])  # index 0 always qualifies because s > 0
    return np.maximum(y - excess[rho] / (rho + 1), 0.0)


def critical_ratio(h: float, f: float, r: float, theta: float, lambda_u: float) -> float:
    """p = (2h + f + r)/(λ_u + h + r + θ): the fill probability level at which one more limit share pays.

    From the derivation in `closed_form_single_venue`: p = 1 − a/D with a = θ + λ_u − h − f and
    D = λ_u + h + r + θ.
    """
    denom = lambda_u + h + r + theta
    if not denom > 0:
        raise ValueError(f"the closed form needs λ_u + h + r + θ > 0, got {denom!r}")
    return (2 * h + f + r) / denom


def closed_form_single_venue(
    S: float,  # noqa: N803
    Q: float,  # noqa: N803
    h: float,
    f: float,
    r: float,
    theta: float,
    lambda_u: float,
    lambda_o: float,
    outflow_samples: FloatArray,
) -> tuple[float, float]:
    """Exact minimiser (M*, L*) of the empirical expected cost for one venue, from the quantile of ξ.

    Derivation (K = 1). On C, L = S − M and fill ≤ L, so A ≤ S and λ_o never bites (it is accepted only
    so that the signature matches the model). With (S − A)⁺ = L − fill:

        v = (h+f+θ)·S + (θ + λ_u − h − f)·L − (h + r + θ + λ_u)·fill,   E fill(L) = ∫_0^L P(ξ > Q + u) du,

    so V is convex in L when D = λ_u + h + r + θ > 0, with right derivative V'₊(L) = a − D·(1 − F(Q + L)),
    where a = θ + λ_u − h − f and F(x) = P(ξ ≤ x). The smallest minimiser is the smallest L ∈ [0, S] with
    F(Q + L) ≥ p := 1 − a/D = (2h + f + r)/(λ_u + h + r + θ), that is

        L* = clip(F⁻¹(p) − Q, 0, S),   M* = S − L*,   F⁻¹(p) = inf{x : F(x) ≥ p}

    (F⁻¹(p) = −∞ for p ≤ 0 and +∞ for p > 1). This is the paper's formula as the secondary sources quote
    it, with the clip supplying its two corners:
    * all market, (M*, L*) = (S, 0), when F(Q) ≥ p (including p ≤ 0, a rebate so negative that posting
      never pays). Even the first limit share fills too rarely to beat crossing the spread, i.e., for
      2h+f+r > 0, λ_u ≥ (2h+f+r)/F(Q) − (h+r+θ) (the "λ_u high" corner).
    * all limit, (M*, L*) = (0, S), when F⁻¹(p) ≥ Q + S (e.g. p > 1, which happens when λ_u + θ < h + f).
      Then even the S-th share fills often enough, i.e. roughly λ_u ≤ (2h+f+r)/F(Q+S) − (h+r+θ)
      (the "λ_u low" corner).
    Had θ been charged only on M + ΣL (no catch-up), θ·(M + L) = θ·S would be constant on C, and θ would
    vanish from p, which would be (2h+f+r)/(λ_u+h+r). The θ in the paper's denominator therefore
    identifies the catch-up term.

    F is the empirical CDF of `outflow_samples`, the same law `solve_sa` resamples, so the two solve one
    problem. Where V is flat (F = p on a whole interval) this returns the smallest minimiser.
    """
    del lambda_o  # unreachable for K = 1: A ≤ S everywhere on C
    xi = np.sort(np.asarray(outflow_samples, dtype=float).ravel())
    if xi.size == 0 or not np.isfinite(xi).all():
        raise ValueError("outflow_samples must be a non-empty array of finite numbers")
    if not (math.isfinite(S) and S >= 0):
        raise ValueError(f"S must be finite and ≥ 0, got {S!r}")
    p = critical_ratio(h, f, r, theta, lambda_u)
    if p <= 0:
        limit = 0.0
    elif p > 1:
        limit = float(S)
    else:
        limit = min(max(_empirical_quantile(xi, p) - Q, 0.0), float(S))
    return float(S) - limit, limit


def _empirical_quantile(ascending: FloatArray, p: float) -> float:
    """F⁻¹(p) = inf{x : F(x) ≥ p} of the empirical CDF of the sorted samples, for 0 < p ≤ 1.

    That is the k-th smallest sample for the smallest k with k/n ≥ p; k is found from ⌈n·p⌉ and then
    checked with the comparison itself, because n·p can round across an integer.
    """
    n = ascending.size
    k = math.ceil(n * p)
    while k > 1 and (k - 1) / n >= p:
        k -= 1
    while k / n < p:
        k += 1
    return float(ascending[k - 1])


def gradient_bound(params: Params) -> float:
    """G with ‖g(X, ξ)‖ ≤ G everywhere: G² = (|h+f|+θ+λ_u+λ_o)² + Σ_k (|h|+|r_k|+θ+λ_u+λ_o)².

    Why: it makes the step sizes scale-free (γ·g is then measured in shares). The bound holds by listing
    the values each component of `cost_subgradient` can take. For h, f, r_k ≥ 0 it is the sum of squares
    in the step attributed to Section 4.1.
    """
    common = params.theta + params.lambda_u + params.lambda_o
    g2 = (abs(params.h + params.f) + common) ** 2
    g2 += float(np.sum((abs(params.h) + np.abs(params.r) + common) ** 2))
    return math.sqrt(g2)


def paper_step_size(S: float, params: Params, n_iter: int) -> float:  # noqa: N803
    """Constant step γ = √K·S / (G·√N) for an N-step run, with G from `gradient_bound`.

    √K·S is of the order of the diameter of C, and G bounds the subgradients. That is the robust-SA choice
    γ = D_C/(G√N), under which the averaged iterate's expected excess cost is O(D_C·G/√N). A public
    implementation attributes this formula to Section 4.1 of the paper. That attribution is unverified
    (see the module docstring).
    """
    return math.sqrt(params.K) * S / (gradient_bound(params) * math.sqrt(n_iter))


def solve_sa(
    S: float,  # noqa: N803
    params: Params,
    outflows: FloatArray | Sampler,
    n_iter: int = 4_000,
    step: StepSchedule = "sqrt",
    rng: np.random.Generator | int | None = 0,
    *,
    batch_size: int = 32,
    gamma0: float = 1.0,
    average_from: float = 0.5,
    x0: FloatArray | None = None,
) -> tuple[FloatArray, dict[str, object]]:
    """Projected stochastic subgradient descent (Robbins–Monro) with Polyak–Ruppert averaging.

    x_{n+1} = P_C(x_n − γ_n·ḡ_n), where ḡ_n is the mean of `cost_subgradient` over `batch_size` fresh
    outflow draws. The answer is the mean of the iterates after the first `average_from` fraction. It lies
    in C because C is convex.

    outflows: either an (n_obs, K) array of observed outflow vectors, whose rows are resampled uniformly
    with replacement so that cross-venue dependence is kept (the caller guarantees they were observed
    before the decision), or a callable (rng, size) -> (size, K) array.
    step: "paper", "sqrt" or "adaptive" (see `_StepRule`). Measured against the exact optimum (an LP,
    tests/lp_oracle.py) on 140 recorded decision states, 4,000 adaptive steps with γ0 = 0.3 leave a median
    excess expected cost of 0.02 bps of notional (max 0.32) where 1,000 "sqrt" steps left 0.07 (max 2.4);
    see bench/bench_ck_solvers.py.
    Why mini-batches: the Python loop costs far more than a vectorised subgradient. Averaging B draws per
    step leaves ḡ unbiased and bounded by G (so the step-size argument is unchanged) and divides its
    variance by B. batch_size = 1 is the paper's one-sample recursion.
    Why tail averaging (average_from = 0.5): it drops the transient from x0. Averaging from the start
    (average_from = 0) is the textbook Polyak–Ruppert estimator.
    x0 defaults to P_C(0) = (S/(K+1), …): equal weight on every order type, with no prior preference.
    Deterministic for a given integer seed (or Generator state).
    Caveat: SA's guarantees need V convex. With λ_o > 0 and K ≥ 2, v(·, ξ) is not convex in X (it contains
    λ_o·(A − S)⁺ of the concave A). The abstract states a convex formulation, but its conditions were not
    readable here. So the two-venue tests compare against a grid search instead of assuming convexity.
    """
    _check_sa_settings(S, n_iter, batch_size, average_from, step)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    draws, observed = _draw_outflows(outflows, gen, n_iter * batch_size, params.K)
    avail = np.maximum(draws - params.Q, 0.0).reshape(n_iter, batch_size, params.K)
    rule = _StepRule(step, S, params, n_iter, gamma0)
    x = project(_start_point(x0, params.K), S)
    start = int(average_from * n_iter)
    x_last, x_avg = _averaged_descent(x, avail, _BatchSubgradient(params, float(S)), rule, start)
    info: dict[str, object] = {
        "x_last": x_last,
        "n_iter": n_iter,
        "batch_size": batch_size,
        "n_draws": n_iter * batch_size,
        "step": step,
        "gamma_first": float(rule.gammas[0]),
        "gamma_last": float(rule.gammas[-1]),
        "averaged_from": start,
    }
    if observed is not None:
        info["expected_cost"] = expected_cost(x_avg, observed, params, S)
    return x_avg, info


def _check_sa_settings(S: float, n_iter: int, batch_size: int, average_from: float, step: str) -> None:  # noqa: N803
    if not (math.isfinite(S) and S >= 0):
        raise ValueError(f"S must be finite and ≥ 0, got {S!r}")
    if n_iter < 1 or batch_size < 1:
        raise ValueError("n_iter and batch_size must be ≥ 1")
    if not 0 <= average_from < 1:
        raise ValueError("average_from must be in [0, 1)")
    if step not in ("paper", "sqrt", "adaptive"):
        raise ValueError(f"step must be 'paper', 'sqrt' or 'adaptive', got {step!r}")


def _draw_outflows(
    outflows: FloatArray | Sampler, gen: np.random.Generator, n_draws: int, k: int
) -> tuple[FloatArray, FloatArray | None]:
    """All of the run's outflow draws up front (one vectorised call), and the observed rows if given.

    The observed rows are returned so that the run can report the expected cost of its answer under the
    very law it resampled.
    """
    observed: FloatArray | None
    if callable(outflows):
        draws = np.asarray(outflows(gen, n_draws), dtype=float)
        if draws.shape != (n_draws, k):
            raise ValueError(f"sampler must return shape ({n_draws}, {k}), got {draws.shape}")
        observed = None
    else:
        observed = np.asarray(outflows, dtype=float)
        if observed.ndim == 1 and k == 1:
            observed = observed[:, None]
        if observed.ndim != 2 or observed.shape[1] != k or observed.shape[0] == 0:
            raise ValueError(f"outflow array must have shape (n_obs ≥ 1, {k}), got {observed.shape}")
        draws = observed[gen.integers(0, observed.shape[0], size=n_draws)]
    if not np.isfinite(draws).all():
        raise ValueError("outflows must be finite")
    return draws, observed


def _start_point(x0: FloatArray | None, k: int) -> FloatArray:
    start_point = np.zeros(k + 1) if x0 is None else np.asarray(x0, dtype=float)
    if start_point.shape != (k + 1,):
        raise ValueError(f"x0 must have shape ({k + 1},), got {start_point.shape}")
    return start_point


class _StepRule:
    """γ_n of one run, recording every γ used (the run reports the first and the last).

    "paper" is the constant `paper_step_size` with N = n_iter. "sqrt" is γ_n = γ0·S/(G·√n), the classic
    decreasing choice, made scale-free by the same G. "adaptive" is γ_n = γ0·S/√(Σ_{j≤n} ‖ḡ_j‖²)
    (AdaGrad-norm): the same 1/√n decay, but scaled by the gradients actually met instead of the
    worst-case bound G, which is dominated by λ_u and λ_o and made "sqrt" crawl when they are large. It is
    one scalar per step, so the Euclidean projection stays the right one.
    """

    def __init__(self, schedule: StepSchedule, S: float, params: Params, n_iter: int, gamma0: float) -> None:  # noqa: N803
        self.adaptive = schedule == "adaptive"
        self.gamma0, self.s = gamma0, float(S)
        self.squares = 0.0  # Σ‖ḡ_j‖² for the adaptive step
        self.gammas: FloatArray
        if schedule == "paper":
            self.gammas = np.full(n_iter, paper_step_size(S, params, n_iter))
        elif self.adaptive:
            self.gammas = np.empty(n_iter)  # filled as the gradients arrive
        else:
            self.gammas = gamma0 * S / (gradient_bound(params) * np.sqrt(np.arange(1, n_iter + 1)))

    def __call__(self, n: int, grad: FloatArray) -> np.float64:
        """γ_n, given the n-th step's mean subgradient."""
        if self.adaptive:
            self.squares += float(grad @ grad)
            self.gammas[n] = self.gamma0 * self.s / math.sqrt(self.squares) if self.squares > 0 else 0.0
        return self.gammas[n]


class _BatchSubgradient:
    """ḡ: the mean of `cost_subgradient` over one step's batch, with the constants hoisted out of the loop
    (the same arithmetic as `cost_subgradient`, specialised to the available outflows a = (ξ − Q)⁺)."""

    def __init__(self, params: Params, s: float) -> None:
        self.s = s
        self.h_r = params.h + params.r
        self.dm_base = params.h + params.f + params.theta
        self.under_w = -(params.theta + params.lambda_u)
        self.over_w = params.lambda_o
        self.theta = params.theta

    def __call__(self, x: FloatArray, a: FloatArray) -> FloatArray:
        lim = x[1:]
        executed = x[0] + np.minimum(a, lim).sum(axis=1)
        c = self.under_w * (executed < self.s) + self.over_w * (executed > self.s)
        grad = np.empty(x.size)
        grad[0] = self.dm_base + c.mean()
        grad[1:] = self.theta + ((a > lim) * (c[:, None] - self.h_r)).mean(axis=0)
        return grad


def _averaged_descent(
    x: FloatArray, avail: FloatArray, subgradient: _BatchSubgradient, rule: _StepRule, start: int
) -> tuple[FloatArray, FloatArray]:
    """The projected recursion from x, one batch of `avail` per step: (last iterate, tail average)."""
    s = subgradient.s
    total = np.zeros(x.size)
    n_iter = avail.shape[0]
    for n in range(n_iter):
        grad = subgradient(x, avail[n])
        x = _project(x - rule(n, grad) * grad, s)
        if n >= start:
            total += x
    return x, total / (n_iter - start)
