"""Static Cont–Kukanov allocation of one parent order across venues, on a grid of `step`-share lots.

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

    The returned cost is `split_cost` of the chosen split (equal to F* by construction). Narrow windows
    are evaluated densely, O(units · window) per venue. Venues tied at the marginal price keep their
    whole range as window (all their splits have the same exact cost), which made that O(n · units · cap)
    and the tied case superlinear; wide windows therefore take the sliding path (`_forward_sliding`,
    `_backward_sliding`): O(units) per venue from range minima over offsets to an exact price line, with
    a proof per row and the dense evaluation only where the proof is out of reach. No Python loop runs
    per share or per DP state.
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


# Windows at least this wide take the sliding path (`_forward_sliding`, `_backward_sliding`) at stages
# with at least _SLIDING_CELLS (rows × width) DP states and moves; narrower windows (pinned venues, most
# near-ties) and small stages cost less evaluated densely, since the sliding path spends some 80 numpy
# calls a stage to save the width factor. Tests lower both to run the sliding path on small problems,
# and raise the width past every window to run the dense programme alone.
_SLIDING_WIDTH = 16
_SLIDING_CELLS = 20_000
# Prices the exact line X(w) = w·step·t is formed for: Dekker's product is exact only while no partial
# product overflows or underflows, which these bounds (with order_size ≤ 2^53) keep far away.
_LINE_MAGNITUDES = (2.0**-500, 2.0**500)
_SPLITTER = 134217729.0  # 2^27 + 1, Dekker's split of a double into two 26-bit halves
# Safety margin of the sliding path's certificates: 2^-48 of a bound on every magnitude involved covers
# 32 roundings (each ≤ 2^-53 of such a magnitude), several times what a certificate performs; the
# absolute floor covers the subnormal range, where a halved spacing can round.
_RELATIVE_MARGIN = 2.0**-48
_ABSOLUTE_MARGIN = 2.0**-1000
# How many groups of k a sliding window is bracketed in (`_Kernel.slide`): the top binades of the addends
# each on their own, the rest together. More groups give tighter brackets, at one range query each.
_GROUPS = 4


@dataclass(frozen=True, slots=True)
class _Line:
    """X(w) = w·step·t for w = 0..len−1 as the exact unevaluated sum hi + lo (hi = fl(w·step·t)).

    The sliding path measures prefix sums as offsets from this line, which is exactly linear in w, so
    an offset at w plus the addend's own offset is the offset of the sum at u = w + k with nothing lost.
    """

    hi: FloatArray
    lo: FloatArray
    scale: float  # spacing of the largest |hi|: a bound on every |lo|


@dataclass(frozen=True, slots=True)
class _Group:
    """A run ka..kb of one venue's k and its addends' offsets B(k) = p(k) − X(k) = −lo(k)."""

    ka: int
    kb: int
    least: float  # min B over the run
    most: float  # max B over the run
    argleast: int  # a k of the run with B(k) = least
    prefix_least: FloatArray  # min B over ka..k, for k = ka..kb (rows that cannot reach kb)
    prefix_most: FloatArray


@dataclass(frozen=True, slots=True)
class _Slide:
    """What the sliding path needs for one venue: its price line and its groups of k."""

    line: _Line
    groups: list[_Group]
    spread: float  # max |B(k)| over the window


@dataclass(frozen=True, slots=True)
class _Programme:
    """The DP's venues after the pinned ones are folded away, and the unit range live at each stage.

    Venues pinned to 0 add ±0.0, which changes no prefix sum, and pinned venues before the first free
    one only fix the starting prefix sum `cash`; `active[i]` is the original index of DP venue i.
    A state (i, u) is live when u ∈ [lo[i], hi[i]]: reachable from the windows before i and completable
    by the windows from i on (the windows are intervals, so every live state is reachable).
    """

    active: list[int]
    cash: float
    units: int
    low: list[int]
    high: list[int]
    lo: list[int]
    hi: list[int]
    addends: list[FloatArray]  # p_i(k) for k in [low_i, high_i], exactly as split_cost forms it
    slides: list[_Slide | None]  # set where venue i takes the sliding path


def _programme(units: int, step: int, prices: list[float], low: list[int], high: list[int]) -> _Programme:
    """Fold the pinned venues away and lay out the live unit ranges, the addends p_i(k) and the slides."""
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
    kernels: dict[float, _Kernel | None] = {}
    slides: list[_Slide | None] = []
    for t, a, b in zip(prices, low, high, strict=True):
        if b - a + 1 < _SLIDING_WIDTH:
            slides.append(None)
            continue
        if t not in kernels:
            line = _line(max(units, max(high)), step, t)  # w = u and w = k both index it
            kernels[t] = None if line is None else _Kernel(line, shares * t)
        kernel = kernels[t]
        slides.append(None if kernel is None else kernel.slide(a, b))
    return _Programme(active, cash, units, low, high, lo, hi, addends, slides)


def _line(size: int, step: int, t: float) -> _Line | None:
    """The exact line w·step·t over w = 0..size (Dekker's two-product), or None where it could be inexact."""
    small, large = _LINE_MAGNITUDES
    if size * step > 2**53 or not (t == 0.0 or small <= abs(t) <= large):
        return None
    shares = (np.arange(size + 1, dtype=np.int64) * step).astype(np.float64)  # exact: ≤ 2^53
    hi = shares * t
    split = _SPLITTER * shares
    shares_hi = split - (split - shares)
    shares_lo = shares - shares_hi
    split_t = _SPLITTER * t
    t_hi = split_t - (split_t - t)
    t_lo = t - t_hi
    lo = ((shares_hi * t_hi - hi) + shares_hi * t_lo + shares_lo * t_hi) + shares_lo * t_lo
    return _Line(hi, lo, float(np.spacing(np.abs(hi).max())))


class _Kernel:
    """One price's line and its addends' offsets B(k) = −lo(k), with p(k) = fl(k·step·t) cut into binades.

    Every venue at that price shares them: a venue's groups are cut out for its window, and each
    group's statistics are read off prefix scans cached by the group's first k, so venues cost a few
    lookups each instead of a few numpy calls per group.
    """

    def __init__(self, line: _Line, products: FloatArray) -> None:
        self.line = line
        self.offsets = -line.lo[: products.size]
        exponent = np.frexp(products)[1]
        self.starts = (np.flatnonzero(exponent[1:] != exponent[:-1]) + 1).tolist()
        self.scans: dict[int, tuple[FloatArray, FloatArray, IntArray]] = {}

    def slide(self, low: int, high: int) -> _Slide:
        """The window [low, high]'s groups: its top binades of |p(k)| each on their own, the rest together.

        B(k) spreads over about an ulp of p(k), so groups of small addends bracket tightly; a bracket is
        as wide as its widest group, and each group costs one range query per row. Any partition is
        correct.
        """
        starts = [k for k in self.starts if low < k <= high]
        edges = [low, *starts[max(len(starts) - _GROUPS + 1, 0) :], high + 1]
        groups = [self.group(a, b - 1) for a, b in itertools.pairwise(edges)]
        spread = max(max(abs(g.least), abs(g.most)) for g in groups)
        return _Slide(self.line, groups, spread)

    def group(self, ka: int, kb: int) -> _Group:
        """The run ka..kb with its least and greatest B, a k at the least, and its prefix scans."""
        if ka not in self.scans:
            run = self.offsets[ka:]
            least = np.minimum.accumulate(run)
            where = np.maximum.accumulate(np.where(run == least, np.arange(run.size), 0))
            self.scans[ka] = least, np.maximum.accumulate(run), where
        least, most, where = self.scans[ka]
        j = kb - ka
        return _Group(
            ka, kb, float(least[j]), float(most[j]), ka + int(where[j]), least[: j + 1], most[: j + 1]
        )


def _lexicographic_float_optimum(
    units: int, step: int, prices: list[float], low: list[int], high: list[int]
) -> list[int]:
    """Units per venue of the reference's answer, k_i restricted to [low_i, high_i] (see `allocate`).

    Three passes over the DP, each its own function: the least prefix sums give F*, the thresholds say
    from where F* is still reachable, and a forward replay picks the lexicographically first split.
    """
    dp = _programme(units, step, prices, low, high)
    limits = _reachability_thresholds(dp, _least_prefix_sums(dp))
    chosen = list(low)
    for i, k in zip(dp.active, _first_split_reaching(dp, limits), strict=True):
        chosen[i] = k
    return chosen


def _least_prefix_sums(dp: _Programme) -> list[FloatArray]:
    """M_i(u), the least reachable prefix sum after i DP venues (+inf where u is not live), i = 0..n.

    As x ↦ fl(x + p) is monotone non-decreasing, the least prefix leads to the least completion, so
    M_{i+1}(u) = min_k fl(M_i(u − k) + p_i(k)) is exact; F* = M_n(units). Wide windows go through
    `_forward_sliding`, the others through the dense min over every k.
    """
    pad, units = max(dp.high), dp.units
    # `buf` holds `pad` leading +inf so every window stays in bounds.
    buf = np.full(pad + units + 1, np.inf)
    least = np.full(units + 1, np.inf)
    least[0] = dp.cash
    table = [least]
    for i, (addend, slide) in enumerate(zip(dp.addends, dp.slides, strict=True)):
        buf[pad:] = least
        lo, hi = dp.lo[i + 1], dp.hi[i + 1]
        row = np.full(units + 1, np.inf)
        if slide is None or (hi - lo + 1) * addend.size < _SLIDING_CELLS:
            # row r ↔ u = lo + r; column j ↔ least[u − high_i + j], i.e. k = high_i − j
            windows = _windows(buf, pad + lo - dp.high[i], hi - lo + 1, addend.size)
            row[lo : hi + 1] = (windows + addend[::-1]).min(axis=1)
        else:
            rows = _Rows(lo, hi, dp.low[i], dp.high[i], dp.lo[i], dp.hi[i])
            row[lo : hi + 1] = _forward_sliding(buf, pad, addend, rows, slide)
        least = row
        table.append(least)
    return table


@dataclass(frozen=True, slots=True)
class _Rows:
    """One sliding stage: its rows u ∈ [lo, hi], the window k ∈ [low, high], and the live range
    [source_lo, source_hi] of the stage the values come from."""

    lo: int
    hi: int
    low: int
    high: int
    source_lo: int
    source_hi: int


def _forward_sliding(buf: FloatArray, pad: int, addend: FloatArray, rows: _Rows, slide: _Slide) -> FloatArray:
    """M_{i+1}(u) for the rows from M_i (buf, after `pad` leading +inf), in O(units), not O(units·width).

    Why it is exact. With X the venue's price line and any constant c, the exact sum M_i(u − k) + p_i(k)
    is c + X(u) + A(u − k) + B(k), A(w) = M_i(w) − c − X(w), B(k) = p_i(k) − X(k) (the addend's rounding
    error). B spans about an ulp of p_i while A varies over ulps of the larger prefix sums, so per group
    of k the range minimum of A plus the group's range of B brackets the least exact sum m(u) in
    [lower, upper]. Monotone rounding makes M_{i+1}(u) = min_k fl(s_k) = fl(m(u)), and a float F is
    that value when m(u) > the lower boundary of F's rounding cell and m(u) ≤ F's upper boundary; the
    latter holds when the bracket clears it or when F is an actual sum fl(s_k) itself (one per group,
    at its least B: this also settles sums lying exactly on a boundary). F is the least of those sums
    and the float nearest the bracket's middle. Rows that this leaves in doubt are evaluated densely,
    as the reference does.
    """
    line = slide.line
    count, width = rows.hi - rows.lo + 1, rows.high - rows.low + 1
    # span[r + j] = A(u − high + j) for row r ↔ u = lo + r, i.e. k = high − j; +inf off the live range
    start = rows.lo - rows.high
    w0, w1 = max(start, rows.source_lo), min(rows.hi - rows.low, rows.source_hi)
    least, hi_w = buf[pad + w0 : pad + w1 + 1], line.hi[w0 : w1 + 1]
    c = float(least[0] - hi_w[0])  # keeps the offsets small, so their roundings are tiny
    exact = _exact(c, line)
    offsets = _offset(least, hi_w, c, exact) - line.lo[w0 : w1 + 1]
    span = np.full(count + width - 1, np.inf)
    span[w0 - start : w1 - start + 1] = offsets
    lower, upper = _least_sum_bracket(span, count, slide.groups, rows, rows.lo, forward=True)
    x_hi, x_lo = line.hi[rows.lo : rows.hi + 1], line.lo[rows.lo : rows.hi + 1]
    lower += x_lo  # the bracket, now relative to c + x_hi(u)
    upper += x_lo
    actual = np.full(count, np.inf)  # the least of the groups' actual sums, as the reference adds them
    for g in slide.groups:
        at = pad + start + rows.high - g.argleast  # buf index of M_i(u − argleast) for row 0
        np.minimum(actual, buf[at : at + count] + addend[g.argleast - rows.low], out=actual)
    guess = np.minimum(actual, x_hi + (c + 0.5 * (lower + upper)))
    mid, gap_down, gap_up = _around(guess, x_hi, c, exact)  # guess's rounding cell: mid ∓ gap / 2
    size = float(np.abs(offsets).max()) + slide.spread + line.scale
    margin = float(_margin(size, 0.0 if exact else c, abs(c) + abs(x_hi[-1])))
    certain = (mid - 0.5 * gap_down + margin < lower) & (
        (actual <= guess) | (upper + margin < mid + 0.5 * gap_up)
    )
    doubt = np.flatnonzero(~certain)  # every row has a finite candidate: its states are live
    if doubt.size:
        # row r ↔ u = lo + r; column j ↔ M_i(u − high + j), i.e. k = high − j (as `_windows`)
        windows = buf[(pad + start + doubt)[:, None] + np.arange(width)]
        guess[doubt] = (windows + addend[::-1]).min(axis=1)
    return guess


def _reachability_thresholds(dp: _Programme, least: list[FloatArray]) -> list[FloatArray]:
    """T_i(u): the largest prefix sum from which some completion still ends at ≤ F* (`limits[i]`).

    By monotonicity the good prefixes form a down-set of floats: T_n(units) = F* = M_n(units),
    T_i(u) = max_k G(T_{i+1}(u + k), p_i(k)), G(y, p) = the largest float x with fl(x + p) ≤ y (see
    `_largest_base`). T_0 is never needed (the replay starts from a known prefix sum). Wide windows go
    through `_backward_sliding`. Where no completion exists the value is `_UNREACHABLE` or a little
    below it; which one never matters, as no prefix sum is that low.

    Only states that some optimal split passes through need their exact threshold: wherever
    T_i(u) < M_i(u) (`least`), no actual prefix sum at (i, u) can complete, and `_backward_sliding` may
    store any value below M_i(u) there instead (it stores `_UNREACHABLE`). Such a value only enters
    G-terms that are themselves below every prefix sum that could use them (M_{i+1}(u + k) ≤
    fl(M_i(u) + p_i(k))), so every comparison the replay makes comes out the same.
    """
    pad, units, n = max(dp.high), dp.units, len(dp.active)
    limits: list[FloatArray] = [np.empty(0)] * (n + 1)
    limits[n] = np.full(units + 1, _UNREACHABLE)
    limits[n][units] = least[n][units]
    # `buf` holds `pad` trailing "unreachable" sentinels.
    buf = np.full(units + 1 + pad, _UNREACHABLE)
    for i in range(n - 1, 0, -1):
        buf[: units + 1] = limits[i + 1]
        addend, slide = dp.addends[i], dp.slides[i]
        lo, hi = dp.lo[i], dp.hi[i]
        limit = np.full(units + 1, _UNREACHABLE)
        if slide is None or (hi - lo + 1) * addend.size < _SLIDING_CELLS:
            # row r ↔ u = lo + r; column j ↔ limits[i + 1][u + low_i + j], i.e. k = low_i + j
            windows = _windows(buf, lo + dp.low[i], hi - lo + 1, addend.size)
            limit[lo : hi + 1] = _largest_base(windows, addend).max(axis=1)
        else:
            # Rows whose whole window meets no real threshold have no completion: only the rows between
            # the first and the last real T_{i+1} (most are `_UNREACHABLE` once pruned) are computed.
            real = np.flatnonzero(limits[i + 1][dp.lo[i + 1] : dp.hi[i + 1] + 1] > 0.5 * _UNREACHABLE)
            if real.size:
                lo = max(lo, dp.lo[i + 1] + int(real[0]) - dp.high[i])
                hi = min(hi, dp.lo[i + 1] + int(real[-1]) - dp.low[i])
            if real.size and lo <= hi:
                rows = _Rows(lo, hi, dp.low[i], dp.high[i], dp.lo[i + 1], dp.hi[i + 1])
                limit[lo : hi + 1] = _backward_sliding(buf, units, addend, rows, slide, least[i][lo : hi + 1])
        limits[i] = limit
    return limits


def _backward_sliding(
    buf: FloatArray, units: int, addend: FloatArray, rows: _Rows, slide: _Slide, least: FloatArray
) -> FloatArray:
    """T_i(u) for the rows from T_{i+1} (buf, trailing sentinels), in O(units), not O(units·width).

    Why it is exact. fl(x + p) ≤ y holds exactly when x + p stays below β(y), the midpoint between y and
    the next float (reaching it only if y's last bit is even), so T_i(u) is the largest float under
    z(u) = max_k β(T_{i+1}(u + k)) − p_i(k), or at it. As in `_forward_sliding`, z(u) − c − X(u) =
    max_k A(u + k) − B(k) with A(w) = β(T_{i+1}(w)) − c − X(w), bracketed per group by range maxima.
    Where the bracket lies strictly between two consecutive floats, the lower one is T_i(u) and the
    strictness at β never matters. Rows whose bracket lies below M_i(u) (`least`) get `_UNREACHABLE`
    (see `_reachability_thresholds`), as do rows with no completion; the rest are evaluated densely
    (`_backward_rows`).
    """
    line = slide.line
    count, width = rows.hi - rows.lo + 1, rows.high - rows.low + 1
    out = np.full(count, _UNREACHABLE)
    # span[r + j] = −A(u + low + j) for row r ↔ u = lo + r, i.e. k = low + j (negated, so that the
    # bracket is of a least sum); +inf where there is no completion
    start = rows.lo + rows.low
    w0, w1 = max(start, rows.source_lo), min(rows.hi + rows.high, rows.source_hi)
    if w1 < w0:
        return out
    limit = buf[w0 : w1 + 1]
    real = limit > 0.5 * _UNREACHABLE
    if not real.any():
        return out
    y = np.where(real, limit, 0.0)
    hi_w = line.hi[w0 : w1 + 1]
    first = int(real.argmax())
    c = float(y[first] - hi_w[first])
    exact = _exact(c, line)
    offsets = (_offset(y, hi_w, c, exact) + 0.5 * (_neighbours(y)[1] - y)) - line.lo[w0 : w1 + 1]
    offsets[~real] = 0.0  # keeps the margin small; these entries are not used
    span = np.full(count + width - 1, np.inf)
    span[w0 - start : w1 - start + 1] = np.where(real, -offsets, np.inf)
    lower, upper = _least_sum_bracket(span, count, slide.groups, rows, units - rows.lo, forward=False)
    x_hi, x_lo = line.hi[rows.lo : rows.hi + 1], line.lo[rows.lo : rows.hi + 1]
    size = float(np.abs(offsets).max()) + slide.spread + line.scale
    margin = float(_margin(size, 0.0 if exact else c, abs(c) + abs(x_hi[-1])))
    with np.errstate(invalid="ignore"):  # rows without a completion make inf − inf
        z_lo, z_hi = x_lo - upper, x_lo - lower  # z(u)'s bracket relative to c + x_hi(u)
        prefix = _offset(least, x_hi, c, exact)  # M_i(u) relative to c + x_hi(u)
    # Rows whose bracket lies below M_i(u) keep `_UNREACHABLE` (so do rows without a completion, where
    # z_hi is −inf); only those between the first and last of the others need a rounding cell.
    useful = np.flatnonzero(~(z_hi + margin < prefix))
    if not useful.size:
        return out
    part = slice(int(useful[0]), int(useful[-1]) + 1)
    x_hi, x_lo, z_lo, z_hi, prefix = x_hi[part], x_lo[part], z_lo[part], z_hi[part], prefix[part]
    with np.errstate(invalid="ignore"):  # again for rows without a completion, now ±inf and NaN
        guess = x_hi + (c + 0.5 * (z_lo + z_hi))
        mid, gap_down, gap_up = _around(guess, x_hi, c, exact)
        under_guess = (mid - gap_down + margin < z_lo) & (z_hi + margin < mid)
        over_guess = (mid + margin < z_lo) & (z_hi + margin < mid + gap_up)
    useless = z_hi + margin < prefix  # T_i(u) < M_i(u), or no completion (z_hi = −inf)
    settled = out[part]
    settled[under_guess] = np.nextafter(guess[under_guess], -np.inf)
    settled[over_guess] = guess[over_guess]
    settled[useless] = _UNREACHABLE
    doubt = np.flatnonzero(~(under_guess | over_guess | useless))
    if doubt.size:
        errors = -line.lo[rows.low : rows.high + 1]
        settled[doubt] = _backward_rows(
            buf, start + part.start, span[part.start :], addend, errors, x_lo, doubt, margin
        )
    return out


def _backward_rows(
    buf: FloatArray,
    start: int,
    span: FloatArray,
    addend: FloatArray,
    offsets: FloatArray,
    x_lo: FloatArray,
    rows: IntArray,
    margin: float,
) -> FloatArray:
    """T_i(u) on the given rows of `_backward_sliding`, exactly, with `_largest_base` on few (row, k).

    G(y, p) never decreases as β(y) − p grows, so only the k whose offset A(u + k) − B(k) (known to
    within `margin`, the stage's, plus the roundings of this sum) comes within twice that of the row's
    largest can give the maximum. The others are skipped: `_largest_base` over every (row, k) is what
    made the dense pass slow.
    """
    columns = rows[:, None] + np.arange(offsets.size)  # row r ↔ u = lo + r; column j ↔ k = low + j
    with np.errstate(invalid="ignore"):
        z = (x_lo[rows, None] - span[columns]) - offsets  # β − p − c − x_hi(u); −inf: no completion
        best = z.max(axis=1, keepdims=True)
        near = z >= best - 4.0 * (margin + _margin(np.abs(best)))
    values = np.full(z.shape, -np.inf)
    values[near] = _largest_base(buf[start + columns[near]], np.broadcast_to(addend, z.shape)[near])
    result: FloatArray = values.max(axis=1)
    return result


def _least_sum_bracket(
    span: FloatArray, count: int, groups: list[_Group], rows: _Rows, reach: int, forward: bool
) -> tuple[FloatArray, FloatArray]:
    """Per row r, bounds on the least span[r + column(k)] + B(k) over the window's k.

    column(k) = high − k forward and k − low backward. Row r can use k up to reach ± r (forward: u,
    backward: units − u); beyond that span is +inf anyway, but a group's B range must shrink there too.
    Each group is a run of columns: a range minimum of span plus the group's least (greatest) B bounds
    its least sum from below (above). Backward, the sum at the group's least B bounds it from above
    too (forward, `_forward_sliding` uses that sum as an actual float instead).
    """
    table = _RangeMin(span, max(g.kb - g.ka + 1 for g in groups))
    lower: FloatArray | None = None
    upper: FloatArray | None = None
    for g in groups:
        first = rows.high - g.kb if forward else g.ka - rows.low
        least = table.query(first, g.kb - g.ka + 1, count)
        group_lower = least + g.least
        group_upper = least + g.most
        if not forward:
            star = g.argleast - rows.low
            np.minimum(group_upper, span[star : star + count] + g.least, out=group_upper)
        # rows that can use only part of the group, k ∈ [ka, reach ± r] with reach ± r < kb (rows that
        # cannot reach ka at all have least = +inf already): the prefix ranges of B, as a slice
        if forward:
            r0, r1 = max(g.ka - reach, 0), min(max(g.kb - reach, 0), count)
            part = slice(reach + r0 - g.ka, reach + r1 - g.ka)
            sign = 1
        else:
            r0, r1 = max(reach - g.kb + 1, 0), min(reach - g.ka + 1, count)
            part = slice(reach - r1 + 1 - g.ka, reach - r0 - g.ka + 1)
            sign = -1
        if r1 > r0:
            group_lower[r0:r1] = least[r0:r1] + g.prefix_least[part][::sign]
            np.minimum(group_upper[r0:r1], least[r0:r1] + g.prefix_most[part][::sign], out=group_upper[r0:r1])
        if lower is None or upper is None:
            lower, upper = group_lower, group_upper
        else:
            np.minimum(lower, group_lower, out=lower)
            np.minimum(upper, group_upper, out=upper)
    assert lower is not None and upper is not None  # a window has at least one group
    return lower, upper


class _RangeMin:
    """Minima of every run values[a : a + length] with length ≤ `longest`, two lookups each (sparse table).

    Level j holds the minima of runs of 2^j, built by doubling in log2(longest) numpy calls, so a
    window's groups cost one call each instead of a sliding scan each.
    """

    def __init__(self, values: FloatArray, longest: int) -> None:
        self.levels = [values]
        size = 1
        while 2 * size <= longest:
            previous = self.levels[-1]
            self.levels.append(np.minimum(previous[:-size], previous[size:]))
            size *= 2

    def query(self, first: int, length: int, count: int) -> FloatArray:
        """min(values[first + r : first + r + length]) for r = 0..count−1."""
        j = length.bit_length() - 1
        level, size = self.levels[j], 1 << j
        result: FloatArray = np.minimum(
            level[first : first + count], level[first + length - size : first + length - size + count]
        )
        return result


def _around(
    guess: FloatArray, x_hi: FloatArray, c: float, exact: bool
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The offset of guess from c + x_hi (`_offset`) and its gaps to the floats just below and above it."""
    with np.errstate(invalid="ignore"):  # guess = ±inf on rows without a candidate
        down, up = _neighbours(guess)
        return _offset(guess, x_hi, c, exact), guess - down, up - guess


def _exact(c: float, line: _Line) -> bool:
    """Whether offsets from c + X need Knuth's TwoSum: plain a − hi rounds by up to 2^-53·|c|, which is
    negligible (≤ 2^-33 ulp) only while |c| ≤ 2^20 ulps of the line (ties at one price, no cash first)."""
    return abs(c) > 2.0**20 * line.scale


def _offset(a: FloatArray, hi: FloatArray, c: float, exact: bool) -> FloatArray:
    """(a − hi) − c, the offset of a from c + hi, to within 2^-52 of its size (and of |c| unless exact).

    With exact, a − hi is split into its rounded value and its exact error (TwoSum) so that a large
    intercept c, such as the cash of venues pinned before the first free one, costs no accuracy.
    """
    diff = a - hi
    if not exact:
        result: FloatArray = diff - c
        return result
    back = diff - a
    error = (a - (diff - back)) + (-hi - back)
    result = (diff - c) + error
    return result


def _neighbours(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The floats just below and just above each x, from its bit pattern (np.nextafter is far slower).

    Finite x only. Going down from +0.0 gives NaN, which fails every certificate, so the row is just
    evaluated densely; −0.0 is first turned into +0.0, whose neighbours are the same.
    """
    bits = (x + 0.0).view(np.int64)
    step = np.where(bits < 0, -1, 1)  # negative floats order backwards as integers
    return (bits - step).view(np.float64), (bits + step).view(np.float64)


def _margin(size: FloatArray | float, c: float = 0.0, whole: float = 0.0) -> FloatArray | float:
    """Bound on the roundings in a certificate, each ≤ 2^-53 of the magnitude it rounds.

    size bounds the offsets it adds (offsets, the addends' offsets, the line's lo parts), which enter
    each sum a few times; c enters the few differences taken around the intercept (M − hi, guess − x_hi,
    each within 2^-53·(|c| + size)); whole, a bound on |c + x_hi|, only through the spacing of guess.
    """
    return _RELATIVE_MARGIN * (8.0 * size + 2.0**-49 * whole) + 2.0**-50 * abs(c) + _ABSOLUTE_MARGIN


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
