"""The exact minimiser of the Cont–Kukanov sample-average cost, with a certificate for every answer.

Why not SA. Robbins–Monro SA converges as 1/√n; with 200 samples and large penalties its answers were off
by several bps of notional, more than the parameter effects it was meant to show. For a finite sample
ξ_1..ξ_n the expected cost is piecewise linear, so it can be minimised exactly.

The model. With a_ik = (ξ_ik − Q_k)⁺, fill_ik = min(a_ik, L_k), A_i = M + Σ_k fill_ik and the identity
(S − A)⁺ = (S − A) + (A − S)⁺, the cost of allocator.allocation.cont_kukanov is

    v_i = (θ + λ_u)·S + (h + f − λ_u)·M + θ·ΣL − Σ_k c_k·fill_ik + w·(A_i − S)⁺,
    c_k = h + r_k + θ + λ_u,   w = θ + λ_u + λ_o.

LP relaxation (the fast path, method "lp"). Replace fill_ik by a variable y_ik ≤ min(a_ik, L_k) and
(A_i − S)⁺ by o_i ≥ max(0, M + Σ_k y_ik − S). Every feasible (M, L) with its true fills is feasible here
at the same cost, so the LP value is a lower bound on the minimum; the bound used is a Lagrangian one
computed from HiGHS's duals in numpy (valid whatever HiGHS's tolerances). If the true cost at the LP's
(M, L) equals it, that point is optimal. This always happens when λ_o ≤ h + r_k at every venue, because
then the cost never falls when a fill is lowered, so the LP has no reason to understate one (the problem
is then convex).

Integer model (the non-convex case). When λ_o > h + r_k an over-filled share at venue k costs more than it
earns, and the LP may pretend a fill is smaller than min(a_ik, L_k). The exact model is then written in the
incremental formulation: per venue one column F_kj = min(v_kj, L_k) per distinct value v_kj of a_ik,
chained by segments, and one binary per segment of those venues that lets the next segment start only when
it is full. Its LP relaxation is the tightest one for each venue's fill curve and usually closes the
certificate by itself (method "lp-incremental"); otherwise HiGHS branch-and-bound solves it to a zero gap
from the relaxation's point with its true fills (method "milp"; the certificate is its dual bound). A
per-sample formulation (y ≥ v·z, y ≥ L − (S − v)·z) took minutes on the same states.

Ties. The cost is flat along some directions (two venues with equal rebates whose queues both surely
clear, for example). Among all minimisers the answer is the one with the smallest Σ weights·x, weights
1 + (K+1)·δ on M and 1 + k·δ on L_k (δ = 1e-3 / (K + 1)): fewest shares sent, then the least market order,
then the lowest venue index. On an LP's optimal face, which holds every true minimiser once its bound is
attained, the face is cut out exactly (complementary slackness) and the weights minimised over it; if
that point is not truly optimal (a non-convex face), the integer model's relaxation face, then the integer
model solved again with the weights as objective and its cost held at the minimum. After branch-and-bound
the rule is applied among the minimisers sharing its binary pattern (`ties` in the certificate says so): a
search over every pattern cost 3–16 s a decision on recorded states. The answer is re-checked against the
certificate after it, and coordinates within 1e-6 share of a whole number are snapped to it when that
costs nothing.

Units. Shares are scaled by 1/S and dollars by the per-share cost scale inside the solver, so every number
HiGHS sees is O(1) whatever the price level; the tolerance of the certificate is 1e-9 of the cost scale
S·(|h| + |f| + max|r| + θ + λ_u + λ_o), the largest cost one decision can move.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
import numpy.typing as npt
from highspy._core import _Highs  # the base class: the wrapper prints a banner on stdout when built

from allocator.allocation.cont_kukanov import Params, sample_costs

RELATIVE_TOLERANCE = 1e-9  # certificate gap, relative to the cost scale
_HIGHS_TOLERANCE = 1e-10  # HiGHS primal/dual feasibility tolerance on the scaled model
_TIE_STEP = 1e-3  # δ·(K+1) of the tie-breaking weights
MILP_TIME_LIMIT_SECONDS = 120.0
_AT_BOUND = 1e-12  # a scaled value this close to a bound sits on it
_DUAL_ZERO = 1e-9  # a reduced cost or row dual this small is zero: the optimum may move along it
_BUDGET_SLACK = 1e-11  # on the scaled cost: room for HiGHS's arithmetic, far inside the certificate
_INF = highspy.kHighsInf

FloatArray = npt.NDArray[np.float64]
Int32Array = npt.NDArray[np.int32]


@dataclass(frozen=True)
class ExactSolution:
    """The minimiser and how its optimality was established."""

    x: FloatArray  # (M, L_1..L_K) in shares, before rounding
    objective: float  # V(x): mean sample cost at x, in $ (allocator.allocation.cont_kukanov.sample_costs)
    lower_bound: float  # a bound V* ≥ lower_bound proven by the relaxation or the branch-and-bound
    method: str  # "lp", "lp-incremental", "milp" or "trivial" (nothing to decide)
    tolerance: float  # the certificate holds when objective − lower_bound ≤ tolerance
    binaries: int  # integer variables the model needed (0 for the LP)
    tie_break: bool  # whether the tie-breaking solve moved the answer
    seconds: float
    ties: str = "all minimisers"  # over which minimisers the tie rule was applied

    @property
    def gap(self) -> float:
        return self.objective - self.lower_bound

    @property
    def certified(self) -> bool:
        return self.gap <= self.tolerance

    def certificate(self) -> dict[str, Any]:
        """What a reader needs to re-check the answer: the bound, the value, the gap and the method."""
        return {
            "method": self.method,
            "lower_bound": self.lower_bound,
            "objective": self.objective,
            "gap": self.gap,
            "tolerance": self.tolerance,
            "certified": self.certified,
            "binaries": self.binaries,
            "tie_break": self.tie_break,
            "ties": self.ties,
        }


def cost_scale(S: float, params: Params) -> float:  # noqa: N803
    """The largest amount one decision can move the cost by, order of magnitude: the certificate's unit."""
    per_share = abs(params.h) + abs(params.f) + float(np.max(np.abs(params.r))) + params.theta
    return float(S) * (per_share + params.lambda_u + params.lambda_o)


def solve_exact(S: float, params: Params, samples: FloatArray) -> ExactSolution:  # noqa: N803
    """min over C of the mean of v(X, ξ_i) over the rows of `samples` (shape (n, K)), certified.

    Stages: the cheapest formulation whose certificate closes (`_certified_minimiser`), the tie rule's
    candidate (`_tie_candidate`), then `_settle`, which keeps the candidate and the whole-share snap
    only when the certificate still holds.
    """
    started = time.perf_counter()
    xi = _checked_samples(S, params, samples)
    tolerance = RELATIVE_TOLERANCE * max(cost_scale(S, params), 1e-300)
    if S == 0:
        x = np.zeros(params.K + 1)
        value = float(sample_costs(x, xi, params, 0.0).mean())
        return ExactSolution(x, value, value, "trivial", tolerance, 0, False, time.perf_counter() - started)
    decision = _Decision(float(S), params, xi, tolerance)
    found = _certified_minimiser(decision)
    tied, ties = _tie_candidate(decision, found)
    x, value, moved = _settle(decision, found, tied)
    seconds = time.perf_counter() - started
    return ExactSolution(x, value, found.lower, found.method, tolerance, found.binaries, moved, seconds, ties)


def _checked_samples(S: float, params: Params, samples: FloatArray) -> FloatArray:  # noqa: N803
    xi = np.atleast_2d(np.asarray(samples, dtype=float))
    if xi.ndim != 2 or xi.shape[1] != params.K or xi.shape[0] == 0:
        raise ValueError(f"samples must have shape (n ≥ 1, {params.K}), got {xi.shape}")
    if not np.isfinite(xi).all():
        raise ValueError("samples must be finite")
    if not (math.isfinite(S) and S >= 0):
        raise ValueError(f"S must be finite and ≥ 0, got {S!r}")
    return xi


@dataclass(frozen=True)
class _Decision:
    """One decision's data and the certificate's tolerance, as every stage of `solve_exact` needs them."""

    S: float
    params: Params
    xi: FloatArray
    tolerance: float


@dataclass(frozen=True)
class _Minimiser:
    """A certified minimiser: the model that proved it, its point, true cost and proven lower bound."""

    model: _Model
    x: FloatArray
    value: float
    lower: float
    method: str
    binaries: int


def _certified_minimiser(d: _Decision) -> _Minimiser:
    """The cheapest formulation whose certificate closes: the LP relaxation (exact in the convex case),
    else the incremental formulation's relaxation, else its branch-and-bound from the LP's point."""
    relaxation = _Relaxation(d.S, d.params, d.xi)
    x, lower = relaxation.solve()
    value = relaxation.true_cost(x)
    if value - lower <= d.tolerance:
        return _Minimiser(relaxation, x, value, lower, "lp", 0)
    incremental = _IntegerModel(d.S, d.params, d.xi)
    x_inc, lower_inc = incremental.solve_relaxed(x)
    if incremental.true_cost(x_inc) - lower_inc <= d.tolerance:
        return _Minimiser(incremental, x_inc, incremental.true_cost(x_inc), lower_inc, "lp-incremental", 0)
    milp = _IntegerModel(d.S, d.params, d.xi)
    x_mip, lower_mip, binaries = milp.solve(x)
    return _Minimiser(milp, x_mip, milp.true_cost(x_mip), lower_mip, "milp", binaries)


def _tie_candidate(d: _Decision, found: _Minimiser) -> tuple[FloatArray | None, str]:
    """The tie rule's point (None when the optimum is unique or no solve found one), and over which
    minimisers the rule was applied."""
    if found.method == "milp":
        # After branch-and-bound, ties are broken among the minimisers sharing its binary pattern (on that
        # pattern's LP face): a search over every pattern measured 3–16 s a decision on recorded states.
        assert isinstance(found.model, _IntegerModel)
        return found.model.break_ties_within_pattern(), "within the branch-and-bound pattern"
    # The true minimisers lie on the relaxation's optimal face (the bound is attained), so the face's
    # tie point is the rule's point whenever its true cost is optimal too; the face can hold more
    # only in the non-convex case, where fills on it may be understated.
    tied = found.model.break_ties()
    if tied is None or found.model.true_cost(tied) - found.lower <= d.tolerance:
        return tied, "all minimisers"
    tied = _incremental_face_tie(d, found) if found.method == "lp" else None
    if tied is None:  # the integer model with the rule as objective and its cost held at the minimum
        tied = _IntegerModel(d.S, d.params, d.xi).tie_point(found.x, found.value, d.tolerance)
    return tied, "all minimisers"


def _incremental_face_tie(d: _Decision, found: _Minimiser) -> FloatArray | None:
    """The tie point on the tighter incremental relaxation's face, if that face attains the minimum."""
    incremental = _IntegerModel(d.S, d.params, d.xi)
    x_inc, lower_inc = incremental.solve_relaxed(found.x)
    if found.value - lower_inc > d.tolerance:
        return None
    tied = incremental.break_ties()
    tied = x_inc if tied is None else tied
    if incremental.true_cost(tied) - found.value > d.tolerance:
        return None
    return tied


def _settle(d: _Decision, found: _Minimiser, tied: FloatArray | None) -> tuple[FloatArray, float, bool]:
    """(x, its true cost, whether the tie point moved it): the tie point re-checked against the
    certificate, then whole-share snapping where it costs nothing."""
    x, value, moved = found.x, found.value, False
    true_cost = found.model.true_cost
    if tied is not None and not np.allclose(tied, x, rtol=0, atol=1e-9 * d.S):
        tied_value = true_cost(tied)
        if tied_value - found.lower <= d.tolerance:
            x, value, moved = tied, tied_value, True
    snapped = _snap(x, d.S)
    if snapped is not None and true_cost(snapped) <= value + 1e-12 * max(abs(value), 1.0):
        x, value = snapped, true_cost(snapped)
    return x, value, moved


class _Model:
    """One decision's scaled LP/MILP (see the module docstring). Subclasses lay out the fill columns.

    Shared layout: column 0 is m = M/S, columns 1..K are l_k = L_k/S, then the subclass's fill columns,
    then one o_i per sample row that can over-fill."""

    n_fill: int

    def __init__(self, S: float, params: Params, xi: FloatArray) -> None:  # noqa: N803
        self.S, self.params, self.xi = S, params, xi
        a = np.minimum(np.maximum(xi - params.Q, 0.0), S) / S  # min(a, L) = L once a ≥ S ≥ L
        rows, counts = np.unique(a, axis=0, return_counts=True)
        self.a = rows
        self.weight = counts / xi.shape[0]
        self.c = params.h + params.r + params.theta + params.lambda_u
        self.w = params.theta + params.lambda_u + params.lambda_o
        self.partial = (rows > 0) & (rows < 1)
        self.full = rows >= 1
        self.o_rows = np.flatnonzero(np.count_nonzero(rows > 0, axis=1) >= 2)
        self.fill_col = np.full(rows.shape, -1, dtype=np.int64)  # column holding fill_ik (−1: none, zero)
        self.fill_col[self.full] = (1 + np.nonzero(self.full)[1]).astype(np.int64)
        self._layout_fills()
        first_o = 1 + params.K + self.n_fill
        self.o_index = first_o + np.arange(self.o_rows.size)
        self.n_cols = first_o + self.o_rows.size
        self.highs: _Highs | None = None
        self.built: dict[str, Any] = {}  # the arrays of the model as built (see `arrays`)
        self.solution: dict[str, FloatArray] = {}  # the last solve's values and duals
        # $ per share of the model, so HiGHS's absolute tolerances mean the same at any price scale
        self.unit = cost_scale(S, params) / S or 1.0

    def _layout_fills(self) -> None:
        raise NotImplementedError

    def _fill_rows(self, rows: _Rows) -> None:
        raise NotImplementedError

    def _fill_bounds(self, hi: FloatArray) -> None:
        raise NotImplementedError

    def _fill_values(self, z: FloatArray, values: FloatArray) -> None:
        raise NotImplementedError

    def cost(self) -> FloatArray:
        """Scaled cost per column; the constant (θ + λ_u) is the model's offset."""
        p, k = self.params, self.params.K
        cost = np.zeros(self.n_cols)
        cost[0] = p.h + p.f - p.lambda_u
        cost[1 : 1 + k] = p.theta
        filled = self.fill_col >= 0  # −c_k·ω_i on the column of each fill (l_k itself where a ≥ S)
        np.add.at(cost, self.fill_col[filled], -(self.weight[:, None] * self.c[None, :])[filled])
        cost[self.o_index] = self.weight[self.o_rows] * self.w
        return cost / self.unit

    @property
    def offset(self) -> float:
        return (self.params.theta + self.params.lambda_u) / self.unit

    def dollars(self, scaled: float) -> float:
        """A scaled objective value of HiGHS's (offset included) in $ of the sample cost."""
        return self.S * self.unit * scaled

    def _matrix(self) -> _Rows:
        k = self.params.K
        rows = _Rows()
        self._fill_rows(rows)
        if self.o_rows.size:  # o_i − m − Σ_k fill_ik ≥ −1
            fills = self.fill_col[self.o_rows]
            head = np.stack([self.o_index, np.zeros(self.o_rows.size, np.int64)], axis=1)
            cols = np.concatenate([head, fills], axis=1)
            vals = np.concatenate(
                [np.tile([1.0, -1.0], (self.o_rows.size, 1)), -np.ones(fills.shape)], axis=1
            )
            rows.add_ragged(cols, vals, np.full(self.o_rows.size, -1.0), np.full(self.o_rows.size, _INF))
        rows.add(  # m + l_k ≤ 1
            np.stack([np.zeros(k, np.int64), 1 + np.arange(k)], axis=1), np.ones((k, 2)), -_INF, np.ones(k)
        )
        rows.add(np.arange(1 + k)[None, :], np.ones((1, 1 + k)), np.ones(1), _INF)  # m + Σ l ≥ 1
        return rows

    def new_highs(self) -> _Highs:
        h = _Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        h.setOptionValue("primal_feasibility_tolerance", _HIGHS_TOLERANCE)
        h.setOptionValue("dual_feasibility_tolerance", _HIGHS_TOLERANCE)
        h.setOptionValue("presolve", "off")  # measured: presolve costs more than it saves at this size
        rows = self._matrix()
        start, index, value, row_lo, row_hi = rows.csr()
        lo = np.zeros(self.n_cols)
        hi = np.full(self.n_cols, float(self.params.K))  # o_i ≤ m + Σ l − 1 ≤ K − 1: finite, so the
        hi[: 1 + self.params.K] = 1.0  # Lagrangian bound below needs no dual sign on them
        self._fill_bounds(hi)
        cost = self.cost()
        self.built = {
            "cost": cost,
            "col_lo": lo,
            "col_hi": hi,
            "row_lo": row_lo,
            "row_hi": row_hi,
            "start": start.astype(np.int64),
            "index": index.astype(np.int64),
            "value": value,
            "colwise": False,
            "offset": self.offset,
        }
        lp = highspy.HighsLp()
        lp.num_col_ = self.n_cols
        lp.num_row_ = row_lo.size
        lp.col_cost_ = cost
        lp.col_lower_ = lo
        lp.col_upper_ = hi
        lp.row_lower_ = row_lo
        lp.row_upper_ = row_hi
        lp.offset_ = self.offset
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = start
        lp.a_matrix_.index_ = index
        lp.a_matrix_.value_ = value
        lp.a_matrix_.num_col_ = self.n_cols
        lp.a_matrix_.num_row_ = row_lo.size
        h.passModel(lp)
        return h

    def run(self, h: _Highs) -> FloatArray:
        h.run()
        status = h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"HiGHS did not solve the decision problem: {h.modelStatusToString(status)}")
        solution = h.getSolution()  # lists: converted once per solve, not once per use
        self.solution = {
            name: np.asarray(getattr(solution, name), dtype=float)
            for name in ("col_value", "col_dual", "row_value", "row_dual")
        }
        return self.solution["col_value"]

    def arrays(self) -> dict[str, Any]:
        """The model HiGHS holds now: the arrays it was built from, or (after rows or columns were
        added) HiGHS's own copy."""
        assert self.highs is not None
        built = self.built
        if self.highs.getNumCol() == built["cost"].size and self.highs.getNumRow() == built["row_lo"].size:
            return built
        lp = self.highs.getLp()
        m = lp.a_matrix_
        return {
            "cost": np.asarray(lp.col_cost_, dtype=float),
            "col_lo": np.asarray(lp.col_lower_, dtype=float),
            "col_hi": np.asarray(lp.col_upper_, dtype=float),
            "row_lo": np.asarray(lp.row_lower_, dtype=float),
            "row_hi": np.asarray(lp.row_upper_, dtype=float),
            "start": np.asarray(m.start_, dtype=np.int64),
            "index": np.asarray(m.index_, dtype=np.int64),
            "value": np.asarray(m.value_, dtype=float),
            "colwise": m.format_ == highspy.MatrixFormat.kColwise,
            "offset": float(lp.offset_),
        }

    def shares(self, col_value: FloatArray) -> FloatArray:
        """(M, L) in shares, projected onto C against the solver's last-digit noise."""
        k = self.params.K
        z = np.clip(col_value[: 1 + k], 0.0, 1.0)
        z[1:] = np.minimum(z[1:], 1.0 - z[0])
        deficit = 1.0 - z.sum()
        if deficit > 0:  # M + ΣL ≥ S may miss by the tolerance: top the market order up
            z[0] += deficit
            z[1:] = np.minimum(z[1:], 1.0 - z[0])
        return z * self.S + 0.0  # + 0.0: no negative zeros in logs

    def true_cost(self, x: FloatArray) -> float:
        return float(sample_costs(x, self.xi, self.params, self.S).mean())

    def point_values(self, x: FloatArray) -> FloatArray:
        """Every column at the point x with its true fills (a feasible start for branch-and-bound)."""
        k = self.params.K
        z = x / self.S
        values = np.zeros(self.n_cols)
        values[: 1 + k] = z
        self._fill_values(z, values)
        fill = np.minimum(self.a, z[1:][None, :])
        values[self.o_index] = np.maximum(z[0] + fill.sum(axis=1) - 1.0, 0.0)[self.o_rows]
        return values

    def lagrangian_bound(self) -> float:
        """A lower bound on the last LP solved that does not trust HiGHS's tolerances: for any row
        multipliers y, min over the column box of (c − Aᵀy)·x + Σ_rows y·(the row's bound) is below the LP
        value (weak duality; every column here has finite bounds). HiGHS's row duals are used as y,
        clipped to the signs the row bounds allow."""
        d = self.arrays()
        start, index, value = d["start"], d["index"], d["value"]
        row_lo, row_hi, col_lo, col_hi, cost = d["row_lo"], d["row_hi"], d["col_lo"], d["col_hi"], d["cost"]
        y = self.solution["row_dual"]
        y = np.where(np.isfinite(row_lo), y, np.minimum(y, 0.0))
        y = np.where(np.isfinite(row_hi), y, np.maximum(y, 0.0))
        outer = np.repeat(np.arange(start.size - 1), np.diff(start))
        if d["colwise"]:
            a_t_y = np.bincount(outer, weights=value * y[index], minlength=cost.size)
        else:
            a_t_y = np.bincount(index, weights=value * y[outer], minlength=cost.size)
        reduced = cost - a_t_y
        rows_part = np.where(y > 0, y * np.where(np.isfinite(row_lo), row_lo, 0.0), 0.0)
        rows_part += np.where(y < 0, y * np.where(np.isfinite(row_hi), row_hi, 0.0), 0.0)
        cols_part = np.minimum(reduced * col_lo, reduced * col_hi)
        return float(d["offset"] + rows_part.sum() + cols_part.sum())

    def break_ties(self) -> FloatArray | None:
        """The documented tie rule on the optimal face of the last solve, or None if that face is a point.

        The optimal face is cut out exactly, not with an objective budget: complementary slackness says
        every optimal point keeps each column with a non-zero reduced cost at its bound and each row with a
        non-zero dual at its bound, so those are fixed and the tie weights are minimised over the rest.
        """
        assert self.highs is not None
        h, k = self.highs, self.params.K
        n = h.getNumCol()
        d, sol = self.arrays(), self.solution
        # Nonbasic columns and rows sit exactly at a bound; a basic one that happens to sit there has a zero
        # dual, so it is never fixed and at worst makes the face look larger than it is (one more solve).
        col_value, row_value = sol["col_value"], sol["row_value"]
        col_at = (np.abs(col_value - d["col_lo"]) <= _AT_BOUND) | (
            np.abs(col_value - d["col_hi"]) <= _AT_BOUND
        )
        row_at = (np.abs(row_value - d["row_lo"]) <= _AT_BOUND) | (
            np.abs(row_value - d["row_hi"]) <= _AT_BOUND
        )
        loose_cols = col_at & (np.abs(sol["col_dual"]) <= _DUAL_ZERO)
        loose_rows = row_at & (np.abs(sol["row_dual"]) <= _DUAL_ZERO)
        if not (loose_cols.any() or loose_rows.any()):
            return None  # dual non-degenerate: the optimum is unique
        fix_cols = np.flatnonzero(col_at & ~loose_cols).astype(np.int32)
        h.changeColsBounds(fix_cols.size, fix_cols, col_value[fix_cols], col_value[fix_cols])
        fix_rows = np.flatnonzero(row_at & ~loose_rows).astype(np.int32)
        # ignore: highspy's stub omits changeRowsBounds, which the binding has (like changeColsBounds)
        h.changeRowsBounds(  # type: ignore[attr-defined]
            fix_rows.size, fix_rows, row_value[fix_rows], row_value[fix_rows]
        )
        h.changeColsCost(n, np.arange(n, dtype=np.int32), tie_weights(k, n))
        try:
            values = self.run(h)
        except RuntimeError:
            return None
        return self.shares(values)


class _Relaxation(_Model):
    """The LP relaxation: one y_ik ≤ min(a_ik, L_k) per (sample, venue) with a partial fill. Sparse and
    fast (a few ms at 200 × 6), exact whenever the certificate closes."""

    def _layout_fills(self) -> None:
        k = self.params.K
        self.n_fill = int(np.count_nonzero(self.partial))
        self.fill_col[self.partial] = 1 + k + np.arange(self.n_fill)

    def _fill_rows(self, rows: _Rows) -> None:
        yi, yk = np.nonzero(self.partial)  # y_ik − l_k ≤ 0
        rows.add(
            np.stack([self.fill_col[yi, yk], 1 + yk], axis=1), np.tile([1.0, -1.0], (yi.size, 1)), -_INF, 0.0
        )

    def _fill_bounds(self, hi: FloatArray) -> None:
        yi, yk = np.nonzero(self.partial)
        hi[self.fill_col[yi, yk]] = self.a[yi, yk]

    def _fill_values(self, z: FloatArray, values: FloatArray) -> None:
        yi, yk = np.nonzero(self.partial)
        values[self.fill_col[yi, yk]] = np.minimum(self.a[yi, yk], z[1 + yk])

    def solve(self) -> tuple[FloatArray, float]:
        self.highs = self.new_highs()
        values = self.run(self.highs)
        return self.shares(values), self.dollars(self.lagrangian_bound())


class _IntegerModel(_Model):
    """The exact model for the non-convex case, in the incremental formulation: per venue one column
    F_kj = min(v_kj, L_k) per distinct partial value v_k1 < … < v_km of a_ik/S, shared by every sample with
    that value, chained by segments 0 ≤ F_kj − F_k,j−1 ≤ v_kj − v_k,j−1. At venues with λ_o > h + r_k a
    binary z_kj = 1{segment j is full} lets segment j+1 start only after it, so F_kj is exactly
    min(v_kj, L_k). That formulation's relaxation is the tightest one for each venue's fill curve, so
    branch-and-bound closes fast; its LP is slower than the relaxation's, so it is built only when needed."""

    def _layout_fills(self) -> None:
        k = self.params.K
        self.values: list[FloatArray] = []
        self.f_first = np.zeros(k, dtype=np.int64)
        col = 1 + k
        for j in range(k):
            values, rank = np.unique(self.a[self.partial[:, j], j], return_inverse=True)
            self.values.append(values)
            self.f_first[j] = col
            self.fill_col[self.partial[:, j], j] = col + rank
            col += values.size
        self.n_fill = col - (1 + k)

    def _fill_rows(self, rows: _Rows) -> None:
        for j in range(self.params.K):
            values, first = self.values[j], int(self.f_first[j])
            m = values.size
            if m >= 2:  # 0 ≤ F_kj − F_k,j−1 ≤ v_kj − v_k,j−1
                fc = np.arange(first + 1, first + m)
                rows.add(
                    np.stack([fc, fc - 1], axis=1), np.tile([1.0, -1.0], (m - 1, 1)), 0.0, np.diff(values)
                )
            if m >= 1:  # 0 ≤ l_k − F_km ≤ 1 − v_km
                rows.add(np.array([[1 + j, first + m - 1]]), np.array([[1.0, -1.0]]), 0.0, 1.0 - values[-1:])

    def _fill_bounds(self, hi: FloatArray) -> None:
        for j in range(self.params.K):
            first = int(self.f_first[j])
            hi[first : first + self.values[j].size] = self.values[j]

    def _fill_values(self, z: FloatArray, values: FloatArray) -> None:
        for j in range(self.params.K):
            first = int(self.f_first[j])
            values[first : first + self.values[j].size] = np.minimum(self.values[j], z[1 + j])

    def solve(self, incumbent: FloatArray) -> tuple[FloatArray, float, int]:
        """Branch-and-bound to a zero gap from the incumbent (the relaxation's point with its true fills)."""
        h, binaries = self._branch_and_bound(incumbent)
        values = self.run(h)
        return self.shares(values), self.dollars(float(h.getInfo().mip_dual_bound)), binaries

    def break_ties_within_pattern(self) -> FloatArray | None:
        """The tie rule on the LP face of the branch-and-bound answer's binary pattern (binaries fixed)."""
        assert self.highs is not None
        h = self.highs
        cols = np.arange(self.n_cols, h.getNumCol(), dtype=np.int32)
        fixed = np.rint(self.solution["col_value"][cols])
        h.changeColsIntegrality(cols.size, cols, np.full(cols.size, highspy.HighsVarType.kContinuous))
        h.changeColsBounds(cols.size, cols, fixed, fixed)
        try:
            self.run(h)
        except RuntimeError:
            return None
        return self.break_ties()

    def tie_point(self, optimum: FloatArray, value: float, tolerance: float) -> FloatArray | None:
        """The tie rule's point among the true minimisers: minimise the tie weights subject to the exact
        model's cost ≤ the minimum (plus HiGHS's arithmetic), starting from the known optimum."""
        h, _ = self._branch_and_bound(optimum)
        n = h.getNumCol()
        cost = np.zeros(n)
        cost[: self.n_cols] = self.cost()
        budget = value / (self.S * self.unit) - self.offset + _BUDGET_SLACK
        h.addRow(-_INF, budget, n, np.arange(n, dtype=np.int32), cost)
        h.changeColsCost(n, np.arange(n, dtype=np.int32), tie_weights(self.params.K, n))
        h.changeObjectiveOffset(0.0)
        try:
            return self.shares(self.run(h))
        except RuntimeError:
            return None

    def solve_relaxed(self, incumbent: FloatArray) -> tuple[FloatArray, float]:
        """This formulation's LP relaxation (segment binaries continuous): its point and a proven bound.
        The incremental formulation is the tightest for each venue's fill curve, and on every recorded
        state it was tight, so this usually certifies without branching."""
        h, _ = self._branch_and_bound(incumbent, integer=False)
        values = self.run(h)
        return self.shares(values), self.dollars(self.lagrangian_bound())

    def _branch_and_bound(self, incumbent: FloatArray, integer: bool = True) -> tuple[_Highs, int]:
        p = self.params
        h = self.highs = self.new_highs()
        start_values = list(self.point_values(incumbent))
        binaries = 0
        for j in np.flatnonzero(p.lambda_o > p.h + p.r):
            values, f = self.values[j], int(self.f_first[j])
            m = values.size
            if m == 0:
                continue
            first_z = h.getNumCol()
            zc = np.arange(first_z, first_z + m, dtype=np.int32)
            empty = np.array([], np.int32)
            h.addCols(m, np.zeros(m), np.zeros(m), np.ones(m), 0, empty, empty, np.array([]))
            if integer:
                h.changeColsIntegrality(m, zc, np.full(m, highspy.HighsVarType.kInteger))
            binaries += m
            seg_len = np.diff(np.concatenate(([0.0], values)))
            next_len = np.concatenate((np.diff(values), [1.0 - values[-1]]))
            for pos in range(m):
                # segment pos is full when z = 1:  F_pos − F_pos−1 − len_pos·z ≥ 0
                cols = [f + pos, *([f + pos - 1] if pos else []), int(zc[pos])]
                vals = [1.0, *([-1.0] if pos else []), -seg_len[pos]]
                h.addRow(0.0, _INF, len(cols), np.array(cols, np.int32), np.array(vals))
                # the next segment (or l_k beyond the last value) stays empty unless z = 1
                nxt = [f + pos + 1, f + pos] if pos + 1 < m else [1 + j, f + pos]
                h.addRow(
                    -_INF, 0.0, 3, np.array([*nxt, zc[pos]], np.int32), np.array([1.0, -1.0, -next_len[pos]])
                )
            level = incumbent[1 + j] / self.S
            start_values += [1.0 if level >= v - 1e-12 else 0.0 for v in values]
        h.setOptionValue("mip_rel_gap", 0.0)
        h.setOptionValue("mip_abs_gap", 0.0)
        h.setOptionValue("mip_feasibility_tolerance", 1e-9)
        h.setOptionValue("time_limit", MILP_TIME_LIMIT_SECONDS)  # a pathological state fails loudly
        solution = highspy.HighsSolution()
        solution.col_value = np.array(start_values)
        h.setSolution(solution)
        return h, binaries


def _snap(x: FloatArray, S: float) -> FloatArray | None:  # noqa: N803
    """x with coordinates within 1e-6 share of a whole number set to it (solver round-off), if that point
    is still in C; None when nothing moves. Kept only when it costs no more (see solve_exact)."""
    whole = np.rint(x)
    near = np.abs(x - whole) <= 1e-6
    if not near.any():
        return None
    y = np.where(near, whole, x)
    if (y < 0).any() or y[0] > S or (y[1:] > S - y[0]).any() or y.sum() < S or np.array_equal(y, x):
        return None
    return y


def tie_weights(k: int, n: int | None = None) -> FloatArray:
    """The tie rule as costs: 1 + (K+1)·δ on M, 1 + k·δ on L_k, 0 on every other of the n columns
    (n defaults to the K + 1 of (M, L): the weights of a point, as the router's rounding uses them)."""
    delta = _TIE_STEP / (k + 1)
    tie = np.zeros(k + 1 if n is None else n)
    tie[0] = 1.0 + (k + 1) * delta
    tie[1 : 1 + k] = 1.0 + (np.arange(k) + 1) * delta
    return tie


class _Rows:
    """Rows of a sparse matrix collected as blocks of equal length (or ragged with −1 for no entry)."""

    def __init__(self) -> None:
        self.cols: list[npt.NDArray[np.integer]] = []
        self.vals: list[FloatArray] = []
        self.lengths: list[npt.NDArray[np.integer]] = []
        self.lower: list[FloatArray] = []
        self.upper: list[FloatArray] = []

    def add(
        self, cols: npt.NDArray[np.integer], vals: FloatArray, lower: npt.ArrayLike, upper: npt.ArrayLike
    ) -> None:
        n = cols.shape[0]
        self.cols.append(cols.ravel())
        self.vals.append(vals.ravel())
        self.lengths.append(np.full(n, cols.shape[1]))
        self.lower.append(np.broadcast_to(np.asarray(lower, dtype=float), (n,)))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=float), (n,)))

    def add_ragged(
        self, cols: npt.NDArray[np.integer], vals: FloatArray, lower: FloatArray, upper: FloatArray
    ) -> None:
        present = cols >= 0
        self.cols.append(cols[present])
        self.vals.append(vals[present])
        self.lengths.append(present.sum(axis=1))
        self.lower.append(lower)
        self.upper.append(upper)

    def csr(self) -> tuple[Int32Array, Int32Array, FloatArray, FloatArray, FloatArray]:
        """(row starts, column indices, values, row lower bounds, row upper bounds), as HiGHS takes them."""
        length = np.concatenate(self.lengths)
        start = np.concatenate(([0], np.cumsum(length))).astype(np.int32)
        return (
            start,
            np.concatenate(self.cols).astype(np.int32),
            np.concatenate(self.vals),
            np.concatenate(self.lower),
            np.concatenate(self.upper),
        )
