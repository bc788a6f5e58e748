"""allocator.allocation.static as it was before the sliding path (commit ab1eb80), kept verbatim as a reference.

`allocate` here is the dense programme over (venue, units) that the tied-price tests compare the current
`allocate` with on problems too large for `allocate_exhaustive` (64 venues × 500,000 shares takes it a
few seconds). Frozen on purpose: do not edit it along with the module it mirrors.

The original module docstring follows.

Static Cont–Kukanov allocation of one parent order across venues, on a grid of `step`-share lots.

Two implementations of one specification live here:

* `allocate_exhaustive` — the specification written out literally (depth-first enumeration). It is the
  reference that tests and benchmarks compare against, so it stays slow and obvious.
* `allocate` — an exact dynamic programme that returns the *identical* split and the *identical* float
  cost as the reference in every case (ties, near-ties caused by float rounding, and the empty answer).

Reading of the candidate range. For venue v, with `used` shares already given to earlier venues, the
quantity q takes every multiple of `step` (0, step, 2·step, …) that is ≤ min(order_size − used,
ask_size_v). "Up to and including" therefore means "the bound itself is included *when it is a multiple
of step*": a bound of 250 with step 100 gives 0, 100, 200. A negative bound gives no value at all.
Consequences: an order_size that is not a multiple of step has no candidate (answer `[]`, `+inf`); a
venue with ask_size < step can only receive 0; and because every q ≤ ask_size, exe_i = split_i, so
under = over = 0 and λ/θ never change the answer (nor the cost's value).

Input domain (checked identically by both functions, so they cannot disagree outside it): step ≥ 1;
every price, fee, rebate and penalty finite; and Σ|ask + fee| · order_size ≤ 1e300 so that no candidate
cost can overflow. Negative order or ask sizes are allowed and, as in the specification, yield no
candidate.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DEFAULT_STEP = 100
# Bound on Σ|ask + fee|·order_size: keeps every partial sum (and the DP's thresholds, which are a few
# ulps away from partial sums) far from overflow, so inf/NaN never enter a comparison.
_MAX_COST_MAGNITUDE = 1e300
# Threshold meaning "no completion from here reaches the optimum". Finite, so the threshold arithmetic
# needs no inf/NaN special cases. Real prefix sums and thresholds stay within ~2e300, and the sentinel
# drifts by at most Σ|p| ≤ 1e300 in total, so it can never be confused with a real threshold.
_UNREACHABLE = -1e306

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Quote:
    """One venue's displayed best ask at one snapshot; `fee` is paid per executed share, `rebate` earned
    per unfilled one. `publisher_id` says which venue it is (the allocator itself never reads it)."""

    ask: float
    ask_size: int
    fee: float = 0.0
    rebate: float = 0.0
    publisher_id: int = 0


Venue = Quote  # the old name: kept for `from allocator import Venue` and modules not yet switched


def split_cost(
    order_size: int,
    venues: Sequence[Quote],
    split: Sequence[int],
    lambda_over: float,
    lambda_under: float,
    theta_queue: float,
) -> float:
    """The specification's cost of one split, summed in venue order.

    Both allocators call this for the cost they return, so the summation order (which decides the last
    bit of the result) is defined in exactly one place.
    """
    executed = 0
    cash = 0.0
    for venue, shares in zip(venues, split, strict=True):
        exe = min(shares, venue.ask_size)
        executed += exe
        cash += exe * (venue.ask + venue.fee)
        cash -= max(shares - exe, 0) * venue.rebate
    under = max(order_size - executed, 0)
    over = max(executed - order_size, 0)
    return cash + theta_queue * (under + over) + lambda_under * under + lambda_over * over


def _check_inputs(
    order_size: int,
    venues: Sequence[Quote],
    lambda_over: float,
    lambda_under: float,
    theta_queue: float,
    step: int,
) -> None:
    """Reject inputs where the spec is undefined (step ≤ 0 loops forever) or where inf/NaN would decide."""
    operator.index(order_size)
    if operator.index(step) < 1:
        raise ValueError(f"step must be a positive integer, got {step!r}")
    for venue in venues:
        operator.index(venue.ask_size)
    numbers = [lambda_over, lambda_under, theta_queue]
    numbers += [x for v in venues for x in (v.ask, v.fee, v.rebate)]
    if not all(math.isfinite(x) for x in numbers):
        raise ValueError("prices, fees, rebates and penalties must be finite")
    magnitude = math.fsum(abs(v.ask + v.fee) for v in venues) * max(order_size, 0)
    if not magnitude <= _MAX_COST_MAGNITUDE:
        raise ValueError(f"Σ|ask+fee|·order_size = {magnitude:g} is too large: costs could overflow")


def allocate_exhaustive(
    order_size: int,
    venues: Sequence[Quote],
    lambda_over: float,
    lambda_under: float,
    theta_queue: float,
    step: int = DEFAULT_STEP,
) -> tuple[list[int], float]:
    """The specification, literally: enumerate splits depth-first and keep the first strictly cheaper one.

    Exponential in the number of venues; it exists to be obviously right, not fast.
    """
    _check_inputs(order_size, venues, lambda_over, lambda_under, theta_queue, step)
    best_split: list[int] = []
    best_cost = math.inf
    split: list[int] = []

    def visit(i: int, used: int) -> None:
        nonlocal best_split, best_cost
        if i == len(venues):
            if used == order_size:
                cost = split_cost(order_size, venues, split, lambda_over, lambda_under, theta_queue)
                if cost < best_cost:
                    best_split, best_cost = split.copy(), cost
            return
        bound = min(order_size - used, venues[i].ask_size)
        for q in range(0, bound + 1, step):  # multiples of step that are <= bound (none if bound < 0)
            split.append(q)
            visit(i + 1, used + q)
            split.pop()

    visit(0, 0)
    return best_split, best_cost


def allocate(
    order_size: int,
    venues: Sequence[Quote],
    lambda_over: float,
    lambda_under: float,
    theta_queue: float,
    step: int = DEFAULT_STEP,
) -> tuple[list[int], float]:
    """Exact fast equivalent of `allocate_exhaustive`: same split, same float cost, bit for bit.

    What has to be matched. Since exe_i = split_i, the reference's cost of a split is the left-to-right
    float sum c_{i+1} = fl(c_i + p_i(k_i)), c_0 = 0.0, with p_i(k) = fl(k·step·t_i), t_i = fl(ask_i +
    fee_i); the rebate and penalty terms add ±0.0 and leave the value unchanged. Its answer is the
    lexicographically smallest split (venue 0 outermost, q ascending) among those whose *float* cost is
    the minimum F*. Two splits with the same exact cost can differ in the last bit, and a split with a
    slightly higher exact cost can round lower, so no tolerance-based comparison can reproduce this.

    How, in two stages. (a) Pruning with a proof, not a tolerance (`_candidate_windows`): every split
    that can tie or beat the exact-arithmetic optimum in floats keeps each venue's units in a window
    around it; when at most one venue keeps a range, that optimum is the only candidate. (b) Otherwise
    `_lexicographic_float_optimum` replays the reference's IEEE operations in a dynamic programme over
    (venue, units used) restricted to the windows.

    The returned cost is `split_cost` of the chosen split (equal to F* by construction). Work is
    O(n · units · window) element operations in a fixed number of numpy calls per venue; no Python loop
    runs per share or per DP state.
    """
    _check_inputs(order_size, venues, lambda_over, lambda_under, theta_queue, step)
    if order_size < 0 or order_size % step or any(v.ask_size < 0 for v in venues):
        return [], math.inf
    units = order_size // step
    caps = [min(v.ask_size // step, units) for v in venues]
    if sum(caps) < units:  # also covers "no venues, order > 0"
        return [], math.inf
    prices = [v.ask + v.fee for v in venues]  # t_i, rounded exactly as split_cost rounds it
    greedy, low, high = _candidate_windows(units, step, prices, caps)
    if sum(h > lo for lo, h in zip(low, high, strict=True)) <= 1:
        units_split = greedy  # the sum constraint pins the one free venue: a single candidate
    else:
        units_split = _lexicographic_float_optimum(units, step, prices, low, high)
    split = [k * step for k in units_split]
    return split, split_cost(order_size, venues, split, lambda_over, lambda_under, theta_queue)


def _candidate_windows(
    units: int, step: int, prices: list[float], caps: list[int]
) -> tuple[list[int], list[int], list[int]]:
    """The greedy optimum g (in units) and per-venue [low, high] unit windows holding every float optimum.

    In exact arithmetic the optimum is the greedy fill by t_i, and the exact excess of a split over g is
    Σ_i step·|k_i − g_i|·|t_i − t_m| (t_m = the marginal price; all terms ≥ 0 because cheaper venues are
    full and dearer ones empty in g). Every split's float cost is within
    E = γ_{n+1}·max|t|·order_size (+ underflow slack) of its exact cost, so a float optimum has
    excess ≤ 2E: the whole range for venues priced at t_m, typically a single value for the others.
    The slack below is twice that 2E, so the float roundings of this very computation cannot matter.
    """
    n = len(prices)
    greedy = [0] * n
    marginal = 0.0
    left = units
    for i in sorted(range(n), key=prices.__getitem__):  # exact float comparisons
        take = min(caps[i], left)
        if take > 0:
            greedy[i], left, marginal = take, left - take, prices[i]
    biggest = max((abs(t) for t in prices), default=0.0)
    error = (n + 2) * (2.0**-53 * biggest * units * step + 2.0**-1074)
    slack = 4.0 * error
    low, high = [], []
    for t, cap, g in zip(prices, caps, greedy, strict=True):
        gap = abs(t - marginal) * step
        reach = cap if gap * cap <= slack else int(slack / gap)
        low.append(max(0, g - reach))
        high.append(min(cap, g + reach))
    return greedy, low, high


@dataclass(frozen=True, slots=True)
class _Programme:
    """The DP's venues after the pinned ones are folded away, and the unit range live at each stage.

    Venues pinned to 0 add ±0.0, which changes no prefix sum, and pinned venues before the first free
    one only fix the starting prefix sum `cash`; `active[i]` is the original index of DP venue i.
    A state (i, u) is live when u ∈ [lo[i], hi[i]]: reachable from the windows before i and completable
    by the windows from i on.
    """

    active: list[int]
    cash: float
    units: int
    low: list[int]
    high: list[int]
    lo: list[int]
    hi: list[int]
    addends: list[FloatArray]  # p_i(k) for k in [low_i, high_i], exactly as split_cost forms it


def _programme(units: int, step: int, prices: list[float], low: list[int], high: list[int]) -> _Programme:
    """Fold the pinned venues away and lay out the live unit ranges and the addends p_i(k)."""
    first_free = next(i for i, (a, b) in enumerate(zip(low, high, strict=True)) if a < b)
    cash = 0.0
    for i in range(first_free):
        cash += (low[i] * step) * prices[i]  # the same two roundings as split_cost
    units -= sum(low[:first_free])
    active = [i for i in range(first_free, len(prices)) if high[i] > 0]
    prices = [prices[i] for i in active]
    low = [low[i] for i in active]
    high = [high[i] for i in active]
    pre_lo = [0, *itertools.accumulate(low)]
    pre_hi = [0, *itertools.accumulate(high)]
    suf_lo = [pre_lo[-1] - a for a in pre_lo]
    suf_hi = [pre_hi[-1] - a for a in pre_hi]
    lo = [max(a, units - b) for a, b in zip(pre_lo, suf_hi, strict=True)]
    hi = [min(a, units - b) for a, b in zip(pre_hi, suf_lo, strict=True)]
    # float(int shares) · t_i, as split_cost forms it
    shares = (np.arange(max(high) + 1, dtype=np.int64) * step).astype(np.float64)
    addends = [shares[a : b + 1] * t for t, a, b in zip(prices, low, high, strict=True)]
    return _Programme(active, cash, units, low, high, lo, hi, addends)


def _lexicographic_float_optimum(
    units: int, step: int, prices: list[float], low: list[int], high: list[int]
) -> list[int]:
    """Units per venue of the reference's answer, k_i restricted to [low_i, high_i] (see `allocate`).

    Three passes over the DP, each its own function: the least prefix sums give F*, the thresholds say
    from where F* is still reachable, and a forward replay picks the lexicographically first split.
    """
    dp = _programme(units, step, prices, low, high)
    best = _least_final_cost(dp)
    limits = _reachability_thresholds(dp, best)
    chosen = list(low)
    for i, k in zip(dp.active, _first_split_reaching(dp, limits), strict=True):
        chosen[i] = k
    return chosen


def _least_final_cost(dp: _Programme) -> float:
    """F* = M_n(units), with M_i(u) the least reachable prefix sum after venue i.

    As x ↦ fl(x + p) is monotone non-decreasing, the least prefix leads to the least completion, so
    M_{i+1}(u) = min_k fl(M_i(u − k) + p_i(k)) is exact.
    """
    pad, units = max(dp.high), dp.units
    # `buf` holds `pad` leading +inf so every window stays in bounds.
    buf = np.full(pad + units + 1, np.inf)
    least = np.full(units + 1, np.inf)
    least[0] = dp.cash
    for i, addend in enumerate(dp.addends):
        buf[pad:] = least
        # row r ↔ u = lo + r; column j ↔ least[u − high_i + j], i.e. k = high_i − j
        lo, hi = dp.lo[i + 1], dp.hi[i + 1]
        windows = _windows(buf, pad + lo - dp.high[i], hi - lo + 1, addend.size)
        least = np.full(units + 1, np.inf)
        least[lo : hi + 1] = (windows + addend[::-1]).min(axis=1)
    return float(least[units])


def _reachability_thresholds(dp: _Programme, best: float) -> list[FloatArray]:
    """T_i(u): the largest prefix sum from which some completion still ends at ≤ F* (`limits[i]`).

    By monotonicity the good prefixes form a down-set of floats: T_n(units) = F*,
    T_i(u) = max_k G(T_{i+1}(u + k), p_i(k)), G(y, p) = the largest float x with fl(x + p) ≤ y (see
    `_largest_base`). T_0 is never needed (the replay starts from a known prefix sum).
    """
    pad, units, n = max(dp.high), dp.units, len(dp.active)
    limits: list[FloatArray] = [np.empty(0)] * (n + 1)
    limits[n] = np.full(units + 1, _UNREACHABLE)
    limits[n][units] = best
    # `buf` holds `pad` trailing "unreachable" sentinels.
    buf = np.full(units + 1 + pad, _UNREACHABLE)
    for i in range(n - 1, 0, -1):
        buf[: units + 1] = limits[i + 1]
        addend = dp.addends[i]
        lo, hi = dp.lo[i], dp.hi[i]
        # row r ↔ u = lo + r; column j ↔ limits[i + 1][u + low_i + j], i.e. k = low_i + j
        windows = _windows(buf, lo + dp.low[i], hi - lo + 1, addend.size)
        limit = np.full(units + 1, _UNREACHABLE)
        limit[lo : hi + 1] = _largest_base(windows, addend).max(axis=1)
        limits[i] = limit
    return limits


def _first_split_reaching(dp: _Programme, limits: list[FloatArray]) -> list[int]:
    """Units per DP venue of the lexicographically first split whose float cost is F*.

    Walk forward replaying the actual prefix sum x and give venue i the smallest k with
    fl(x + p_i(k)) ≤ T_{i+1}(u + k). This is right even when a lexicographically earlier prefix has a
    *larger* prefix sum that rounding later absorbs, which keeping argmins of M would miss.
    """
    cash, used = dp.cash, 0
    split = []
    for i, addend in enumerate(dp.addends):
        low = dp.low[i]
        count = min(dp.high[i], dp.units - used) - low + 1
        trial = cash + addend[:count]
        fits = trial <= limits[i + 1][used + low : used + low + count]
        j = int(fits.argmax())
        if not fits[j]:
            raise RuntimeError("allocate: tie-break pass lost the optimum (internal error)")
        cash = float(trial[j])
        used += low + j
        split.append(low + j)
    return split


def _windows(buf: FloatArray, start: int, rows: int, width: int) -> FloatArray:
    """Read-only view: row r is buf[start + r : start + r + width] (no copy; cheaper than sliding_window_view)."""
    view: FloatArray = np.ndarray(
        (rows, width), dtype=np.float64, buffer=buf, offset=start * buf.itemsize, strides=(buf.itemsize,) * 2
    )
    view.flags.writeable = False
    return view


def _largest_base(limit: FloatArray, addend: FloatArray) -> FloatArray:
    """Elementwise largest float x with fl(x + addend) ≤ limit (all finite; addend broadcasts on rows).

    The passing x form a down-set because x ↦ fl(x + addend) is monotone. Every x whose exact sum with
    addend lies below the midpoint between limit and the next float passes, so fl(limit − addend) plus
    half an ulp of limit (one float less when ties round away from limit) is usually the answer and
    otherwise within an ulp or two, even when addend dwarfs x (where fl(limit − addend) alone can be
    billions of ulps short). The result is verified; a few nextafter nudges fix any miss, and anything
    still unsettled, which the estimate should never leave, is bisected on the bit pattern.
    """
    x = (limit - addend) + (np.nextafter(limit, np.inf) - limit) * 0.5
    # A sum exactly on the midpoint rounds to limit only when limit's last mantissa bit is even.
    odd = (limit.view(np.int64) & 1).astype(bool)
    x = np.where(odd, np.nextafter(x, -np.inf), x)
    settled = (x + addend <= limit) & (np.nextafter(x, np.inf) + addend > limit)
    if settled.all():
        return x
    missed = ~settled  # typically a few percent: finish them on their own
    limit, addend = np.broadcast_arrays(limit, addend)
    x[missed] = _nudge(limit[missed], addend[missed], x[missed])
    return x


def _nudge(limit: FloatArray, addend: FloatArray, x: FloatArray) -> FloatArray:
    """Move each near-miss estimate x to the largest float with fl(x + addend) ≤ limit (1-D arrays)."""
    for _ in range(_NUDGES):
        passes = x + addend <= limit
        up = np.nextafter(x, np.inf)
        settled = passes & (up + addend > limit)
        if settled.all():
            return x
        x = np.where(settled, x, np.where(passes, up, np.nextafter(x, -np.inf)))
    unsettled = ~((x + addend <= limit) & (np.nextafter(x, np.inf) + addend > limit))
    x[unsettled] = _largest_base_bisect(limit[unsettled], addend[unsettled])
    return x


_NUDGES = 4
_SIGN = np.int64(-(2**63))
_MAGNITUDE = np.int64(2**63 - 1)


def _largest_base_bisect(limit: FloatArray, addend: FloatArray) -> FloatArray:
    """Same contract as `_largest_base`, by bisection over float bit patterns.

    Slow (64 rounds) but needs no estimate: floats map monotonically onto integers, so the largest
    passing x is a plain integer binary search between −max_float (passes) and +max_float (fails).
    """
    big = np.finfo(np.float64).max
    lo = np.full(limit.shape, _float_key(np.array(-big)))
    hi = np.full(limit.shape, _float_key(np.array(big)))
    with np.errstate(over="ignore"):  # probes near ±max_float may overflow to ±inf; the test stays right
        for _ in range(64):
            mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)
            passes = _key_float(mid) + addend <= limit
            lo = np.where(passes, mid, lo)
            hi = np.where(passes, hi, mid)
    return _key_float(lo)


def _float_key(x: FloatArray) -> IntArray:
    """An int64 that orders like the float (−0.0 and 0.0 share key 0)."""
    bits = np.asarray(x, dtype=np.float64).view(np.int64)
    return np.where(bits < 0, -(bits & _MAGNITUDE), bits)


def _key_float(key: IntArray) -> FloatArray:
    """Inverse of `_float_key`."""
    bits = np.where(key < 0, (-key) | _SIGN, key)
    return bits.view(np.float64)
