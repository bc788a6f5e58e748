"""The exact minimiser of the Cont–Kukanov empirical expected cost, as a linear programme (test oracle only).

For a finite set of outflow samples ξ_1..ξ_n the expected cost is piecewise linear. With λ_o = 0 and
h + r_k ≥ 0 for every venue it is an LP: fill_ik ≤ min(ξ_ik − Q_k, L_k)⁺ may be taken as free variables
bounded by both (the objective never gains from filling less), and the shortfall (S − A_i)⁺ becomes u_i ≥ 0,
u_i ≥ S − M − Σ_k fill_ik. HiGHS (scipy) solves it exactly, which is what the SA solver is measured against.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import lil_matrix

from allocator.allocation.cont_kukanov import Params


def exact_optimum(S: float, params: Params, samples: np.ndarray) -> np.ndarray:  # noqa: N803
    """(M, L_1..L_K) minimising the mean cost over `samples` (shape (n, K)); needs λ_o = 0, h + r_k ≥ 0."""
    if params.lambda_o != 0 or (params.h + params.r < 0).any():
        raise ValueError("the LP is exact only for lambda_o = 0 and h + r_k >= 0")
    xi = np.atleast_2d(np.asarray(samples, dtype=float))
    n, k = xi.shape
    avail = np.maximum(xi - params.Q, 0.0)
    fill0, short0 = 1 + k, 1 + k + n * k  # variable layout: M, L_1..L_K, fill (n×K), shortfall (n)
    cost = np.zeros(short0 + n)
    cost[0] = params.h + params.f + params.theta
    cost[1 : 1 + k] = params.theta
    cost[fill0:short0] = np.tile(-(params.h + params.r) / n, n)
    cost[short0:] = (params.theta + params.lambda_u) / n
    rows = lil_matrix((n * k + n + k + 1, len(cost)))
    bound = []
    r = 0
    for i in range(n):
        for j in range(k):
            rows[r, fill0 + i * k + j], rows[r, 1 + j] = 1, -1  # fill ≤ L
            bound.append(0.0)
            r += 1
    for i in range(n):
        rows[r, short0 + i] = -1  # shortfall ≥ S − M − Σ fill
        rows[r, 0] = -1
        for j in range(k):
            rows[r, fill0 + i * k + j] = -1
        bound.append(-S)
        r += 1
    for j in range(k):
        rows[r, 1 + j], rows[r, 0] = 1, 1  # L_k ≤ S − M
        bound.append(S)
        r += 1
    rows[r, 0] = -1  # M + Σ L ≥ S
    rows[r, 1 : 1 + k] = -1
    bound.append(-S)
    limits = [(0, S)] * (1 + k) + [(0, a) for a in avail.ravel()] + [(0, None)] * n
    result = linprog(cost, A_ub=rows.tocsr(), b_ub=np.array(bound), bounds=limits, method="highs")
    if not result.success:
        raise RuntimeError(result.message)
    return result.x[: 1 + k]
