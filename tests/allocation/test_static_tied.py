"""Tied prices in allocator.allocation.static: the sliding path of the DP against the references.

When venues share ask + fee, every split has the same exact cost and the windows of `_candidate_windows`
stay whole, so `allocate` runs its sliding path (`_forward_sliding`, `_backward_sliding`). Three references
check it, each compared with `==` on the split and the float cost:

* `allocate_exhaustive` (the specification) on small problems, with the sliding path forced onto every
  window (`_SLIDING_WIDTH` lowered to 2) so that it is exercised where brute force is possible;
* the implementation before the sliding path, kept verbatim in `static_before_sliding`, on medium and
  large tied problems, and the dense programme that the current module still has (`_SLIDING_WIDTH` raised
  past every window), including its DP tables;
* a hand-derived answer on a large problem whose sums are all exact (every split then costs the same,
  so the reference's first-met rule alone decides).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.allocation import static
from allocator.allocation.static import Quote, allocate, allocate_exhaustive
from tests.allocation import static_before_sliding as before
from tests.allocation.test_static import (
    GRID_ASKS,
    GRID_FEES,
    ROUNDING_PRICES,
    assert_identical,
    penalties,
    problems,
)

PENALTIES = (0.4, 0.6, 0.5)


@contextmanager
def sliding_width(width: int) -> Iterator[None]:
    """Run the block with `_SLIDING_WIDTH` set to width (2: every window slides; huge: none does), on
    stages of any size (`_SLIDING_CELLS` = 0)."""
    saved = static._SLIDING_WIDTH, static._SLIDING_CELLS
    static._SLIDING_WIDTH, static._SLIDING_CELLS = width, 0
    try:
        yield
    finally:
        static._SLIDING_WIDTH, static._SLIDING_CELLS = saved


EVERY_WINDOW = 2
NO_WINDOW = 10**9


def dense(order_size: int, venues: list[Quote], step: int = 100) -> tuple[list[int], float]:
    """The current module with its sliding path switched off: its dense programme alone."""
    with sliding_width(NO_WINDOW):
        return allocate(order_size, venues, *PENALTIES, step)


def sliding(order_size: int, venues: list[Quote], step: int = 100) -> tuple[list[int], float]:
    with sliding_width(EVERY_WINDOW):
        return allocate(order_size, venues, *PENALTIES, step)


# ----------------------------------------------------------------------------------------------------
# Small problems: the sliding path everywhere against the specification


@st.composite
def tied_problems(draw, asks, fees):
    """Small problems whose venues all share one ask + fee, or one of two (forced ties)."""
    step = draw(st.sampled_from([100, 100, 1, 7, 50]))
    n = draw(st.integers(min_value=1, max_value=6))
    palette = draw(st.lists(st.tuples(asks, fees), min_size=1, max_size=2))
    sizes = st.builds(
        lambda lots, odd: lots * step + odd,
        st.integers(min_value=0, max_value=6),
        st.sampled_from([0, 0, 0, 1, step - 1]),
    )
    venues = [
        Quote(ask=ask, ask_size=draw(sizes), fee=fee, rebate=0.002, publisher_id=i)
        for i, (ask, fee) in enumerate(draw(st.sampled_from(palette)) for _ in range(n))
    ]
    units = draw(st.integers(min_value=0, max_value=8 if n <= 4 else 6))
    return units * step + draw(st.sampled_from([0, 0, 0, 0, 1])), venues, step


def check_sliding_against_reference(problem, lambda_over=0.4, lambda_under=0.6, theta_queue=0.5):
    order_size, venues, step = problem
    ref = allocate_exhaustive(order_size, venues, lambda_over, lambda_under, theta_queue, step)
    with sliding_width(EVERY_WINDOW):
        fast = allocate(order_size, venues, lambda_over, lambda_under, theta_queue, step)
    assert_identical(fast, ref)


@settings(max_examples=1500, deadline=None)
@given(tied_problems(st.sampled_from(GRID_ASKS), st.sampled_from(GRID_FEES)))
def test_sliding_matches_exhaustive_on_tied_realistic_prices(problem):
    check_sliding_against_reference(problem)


@settings(max_examples=1000, deadline=None)
@given(tied_problems(st.sampled_from(ROUNDING_PRICES), st.sampled_from([0.0, 0.1, 1e-9])))
def test_sliding_matches_exhaustive_on_tied_rounding_prone_prices(problem):
    check_sliding_against_reference(problem)


arbitrary = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=1000, deadline=None)
@given(tied_problems(arbitrary, arbitrary))
def test_sliding_matches_exhaustive_on_tied_arbitrary_floats(problem):
    check_sliding_against_reference(problem)


@settings(max_examples=1000, deadline=None)
@given(problems(st.sampled_from(GRID_ASKS), st.sampled_from(GRID_FEES)), penalties, penalties, penalties)
def test_sliding_matches_exhaustive_on_the_general_tie_prone_grid(problem, lambda_over, lambda_under, theta):
    # mixed prices too: pinned venues and near-ties interleave with the sliding ones
    check_sliding_against_reference(problem, lambda_over, lambda_under, theta)


def test_sliding_matches_exhaustive_on_hand_picked_ties():
    cases = [
        (200, [Quote(ask=10.0, ask_size=100) for _ in range(3)], 100),
        (400, [Quote(ask=222.83, ask_size=300, fee=0.003) for _ in range(4)], 100),
        # the near-tie of test_static (222.84 + 0.01 vs 222.83 + 0.02 differ in the last bit)
        (
            400,
            [
                Quote(ask=222.84, ask_size=500, fee=0.01),
                Quote(ask=222.83, ask_size=200, fee=0.02),
                Quote(ask=222.84, ask_size=200, fee=0.01),
            ],
            100,
        ),
        # rounding absorbs a dearer prefix
        (
            2,
            [
                Quote(ask=1.0, ask_size=1),
                Quote(ask=1.0 + 2**-52, ask_size=1),
                Quote(ask=-(2.0**53), ask_size=1),
            ],
            1,
        ),
        (7, [Quote(ask=0.1, ask_size=5), Quote(ask=0.1, ask_size=5), Quote(ask=0.1, ask_size=5)], 1),
        (9, [Quote(ask=-1 / 3, ask_size=4) for _ in range(4)], 1),
    ]
    for order_size, venues, step in cases:
        check_sliding_against_reference((order_size, venues, step))


# ----------------------------------------------------------------------------------------------------
# Medium and large problems: against the dense programme (the implementation before the sliding path)


def tied_book(count: int, order_size: int, sizes: tuple[int, int], seed: int, ticks: int = 1) -> list[Quote]:
    """count venues at 222.83 (+ 0–ticks−1 cents) with one fee, displaying at least order_size in lots."""
    rng = np.random.default_rng(seed)
    while True:
        shown = rng.integers(sizes[0] // 100, sizes[1] // 100 + 1, size=count) * 100
        if shown.sum() >= order_size:
            break
    asks = np.round(222.83 + 0.01 * rng.integers(0, ticks, size=count), 2)
    return [Quote(ask=float(a), ask_size=int(s), fee=0.003) for a, s in zip(asks, shown, strict=True)]


@st.composite
def medium_tied(draw):
    """4–24 venues sharing one price (or, now and then, a few), a few hundred units, various steps."""
    step = draw(st.sampled_from([100, 100, 1, 7]))
    n = draw(st.integers(min_value=2, max_value=24))
    prices = draw(
        st.sampled_from(
            [
                [(222.83, 0.003)],
                [(222.84, 0.01), (222.83, 0.02)],  # last-bit near-tie
                [(222.83, 0.003), (222.84, 0.003)],  # ties at two levels: one marginal, one pinned
                [(0.1, 0.0)],
                [(1 / 3, 0.0)],
                [(2.0**53, 0.0), (1.0, 0.0)],
                [(-7.25, 0.0)],
            ]
        )
    )
    venues = [
        Quote(ask=ask, ask_size=draw(st.integers(0, 60)) * step, fee=fee)
        for ask, fee in (draw(st.sampled_from(prices)) for _ in range(n))
    ]
    shown = sum(v.ask_size for v in venues) // step
    return draw(st.integers(0, shown)) * step, venues, step


@settings(max_examples=150, deadline=None)
@given(medium_tied())
def test_sliding_matches_dense_on_medium_tied_problems(problem):
    order_size, venues, step = problem
    want = before.allocate(order_size, venues, *PENALTIES, step)
    assert_identical(dense(order_size, venues, step), want)
    assert_identical(allocate(order_size, venues, *PENALTIES, step), want)
    assert_identical(sliding(order_size, venues, step), want)


@settings(max_examples=60, deadline=None)
@given(medium_tied())
def test_sliding_tables_match_dense_tables(problem):
    """M is exact everywhere; T is exact wherever a split can still reach F* and below M elsewhere."""
    order_size, venues, step = problem
    units = order_size // step
    caps = [min(v.ask_size // step, units) for v in venues]
    if units == 0 or sum(caps) < units:
        return
    prices = [v.ask + v.fee for v in venues]
    _, low, high = static._candidate_windows(units, step, prices, caps)
    if sum(h > lo for lo, h in zip(low, high, strict=True)) <= 1:
        return
    with sliding_width(NO_WINDOW):
        plain = static._programme(units, step, prices, low, high)
        least_want = static._least_prefix_sums(plain)
        limits_want = static._reachability_thresholds(plain, least_want)
    with sliding_width(EVERY_WINDOW):
        fast = static._programme(units, step, prices, low, high)
        least = static._least_prefix_sums(fast)
        limits = static._reachability_thresholds(fast, least)
    assert any(s is not None for s in fast.slides)
    for got, want in zip(least, least_want, strict=True):
        assert np.array_equal(got, want)
    for i in range(1, len(limits)):
        matters = limits_want[i] >= least_want[i]
        assert np.array_equal(limits[i][matters], limits_want[i][matters])
        assert np.all(limits[i][~matters] < least_want[i][~matters])


@pytest.mark.parametrize(
    ("count", "order_size", "sizes", "seed", "ticks"),
    [
        (32, 100_000, (2_000, 6_000), 11, 1),  # all tied
        (24, 200_000, (8_000, 16_000), 12, 1),
        (48, 150_000, (2_000, 6_000), 13, 3),  # one uniform fee, three ask levels
    ],
)
def test_large_tied_book_matches_the_implementation_before(count, order_size, sizes, seed, ticks):
    venues = tied_book(count, order_size, sizes, seed, ticks)
    want = before.allocate(order_size, venues, *PENALTIES)
    assert_identical(allocate(order_size, venues, *PENALTIES), want)
    assert_identical(dense(order_size, venues), want)


def test_sixty_four_tied_venues_half_a_million_shares_match_the_implementation_before():
    """The case that was 2.5 s a call: 64 venues, 500,000 shares, every venue at one price."""
    venues = tied_book(64, 500_000, (16_000, 24_000), 4)
    want = before.allocate(500_000, venues, *PENALTIES)
    got = allocate(500_000, venues, *PENALTIES)
    assert_identical(got, want)
    assert sum(got[0]) == 500_000
    assert got[1] <= 500_000 * (222.83 + 0.003)  # rounding can only make the optimum cheaper here


# ----------------------------------------------------------------------------------------------------
# A large problem with a hand-derived answer


def test_exact_sums_leave_the_first_met_split_and_it_is_hand_derivable():
    # 222.8125 = 3565/16 and 0.0625 = 1/16: every k·step·t and every prefix sum is a multiple of 2^-4
    # below 2^53, so no addition rounds, all splits cost exactly 500,000 × 222.875, and the reference
    # keeps the first split it meets: each venue in turn takes the least it can, leaving the rest to the
    # later venues (which fill from the last one backwards).
    venues = tied_book(64, 500_000, (16_000, 24_000), 4)
    venues = [Quote(ask=222.8125, ask_size=v.ask_size, fee=0.0625) for v in venues]
    caps = [v.ask_size // 100 * 100 for v in venues]
    want, left = [], 500_000
    for i in range(len(venues)):
        take = max(left - sum(caps[i + 1 :]), 0)
        want.append(take)
        left -= take
    assert left == 0
    split, cost = allocate(500_000, venues, *PENALTIES)
    assert split == want
    assert cost == 500_000 * 222.875
    assert Fraction(cost) == 500_000 * (Fraction(222.8125) + Fraction(0.0625))


# ----------------------------------------------------------------------------------------------------
# The helpers the sliding path rests on


def test_range_minimum_table_matches_brute_force():
    rng = np.random.default_rng(5)
    for _ in range(40):
        values = rng.standard_normal(rng.integers(1, 300))
        values[rng.random(values.size) < 0.2] = np.inf
        longest = int(rng.integers(1, values.size + 1))
        table = static._RangeMin(values, longest)
        length = int(rng.integers(1, longest + 1))
        first = int(rng.integers(0, values.size - length + 1))
        count = int(rng.integers(0, values.size - length - first + 2))
        want = [values[first + r : first + r + length].min() for r in range(count)]
        assert np.array_equal(table.query(first, length, count), np.array(want, dtype=float))


def test_neighbours_match_nextafter_and_fail_safe_at_zero():
    x = np.array([1.0, -1.0, 2.0, -2.0, 0.5, 3.7e-310, -3.7e-310, 5e-324, -5e-324, 1e300, -1e300, -0.0])
    down, up = static._neighbours(x)
    assert np.array_equal(up, np.nextafter(x, np.inf))
    assert np.array_equal(down[:-1], np.nextafter(x[:-1], -np.inf))
    # below −0.0 (turned into +0.0) the bit pattern gives NaN: every certificate fails, the row goes dense
    assert np.isnan(static._neighbours(np.array([0.0]))[0][0])


def test_line_is_exact():
    for t in [222.833, 0.1, 1 / 3, -7.25, 2.0**53, 1e-9, 0.0, 222.84 + 0.01]:
        line = static._line(5_000, 100, t)
        assert line is not None
        for w in [0, 1, 7, 99, 2_500, 5_000]:
            assert Fraction(line.hi[w]) + Fraction(line.lo[w]) == w * 100 * Fraction(t)
            assert line.hi[w] == float(w * 100) * t  # hi is the product split_cost forms
    assert static._line(5_000, 100, 1e-200) is None  # outside the range where Dekker's product is exact


def test_tied_answer_does_not_depend_on_the_sliding_threshold():
    venues = tied_book(20, 60_000, (2_000, 6_000), 21)
    answers = set()
    for width in (EVERY_WINDOW, 16, 50, NO_WINDOW):
        with sliding_width(width):
            split, cost = allocate(60_000, venues, *PENALTIES)
        answers.add((tuple(split), cost))
    assert len(answers) == 1
    assert math.isfinite(next(iter(answers))[1])
