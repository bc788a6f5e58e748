"""Tests for allocator.allocation.static: hand-checked cases, allocate ≡ allocate_exhaustive, and a greedy oracle.

The exhaustive reference is the specification; `allocate` must return the same split and the same float
cost in every case, so the property tests compare with `==` and check the sign of zero as well.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.allocation.static import (
    Quote,
    _largest_base,
    _largest_base_bisect,
    _nudge,
    allocate,
    allocate_exhaustive,
    split_cost,
)

EMPTY = ([], math.inf)


def both(order_size, venues, step=100, lambda_over=0.4, lambda_under=0.6, theta_queue=0.5):
    """Run both implementations and insist they agree before returning the common answer."""
    ref = allocate_exhaustive(order_size, venues, lambda_over, lambda_under, theta_queue, step)
    fast = allocate(order_size, venues, lambda_over, lambda_under, theta_queue, step)
    assert_identical(fast, ref)
    return ref


def assert_identical(fast: tuple[list[int], float], ref: tuple[list[int], float]) -> None:
    """Same split, same cost bit for bit (including the sign of a zero cost)."""
    assert fast[0] == ref[0]
    assert type(fast[1]) is float
    assert fast[1] == ref[1] or (math.isnan(fast[1]) and math.isnan(ref[1]))
    assert math.copysign(1.0, fast[1]) == math.copysign(1.0, ref[1])


def greedy_split(order_size: int, venues: list[Quote], step: int = 100) -> list[int] | None:
    """The exact-arithmetic optimum under this spec: fill the cheapest ask + fee first, whole steps only.

    Why it is optimal: every q_i ≤ ask_size_i, so exe_i = q_i, under = over = 0 and the cost is the
    linear Σ q_i·(ask_i + fee_i) over a box with a fixed total; exchanging a step from a dearer venue to
    a cheaper one with room never raises it.
    """
    split = [0] * len(venues)
    left = order_size
    for i in sorted(range(len(venues)), key=lambda i: venues[i].ask + venues[i].fee):
        take = min(venues[i].ask_size // step * step, left)
        split[i] = take
        left -= take
    return split if left == 0 and order_size % step == 0 else None


def exact_cost(venues: list[Quote], split: list[int]) -> Fraction:
    """The split's cost with no rounding after forming each float ask + fee (as split_cost forms it)."""
    return sum(
        (Fraction(q) * Fraction(v.ask + v.fee) for v, q in zip(venues, split, strict=True)), Fraction(0)
    )


# ----------------------------------------------------------------------------------------------------
# Hand-computed cases


def test_one_venue_takes_the_whole_order():
    assert both(300, [Quote(ask=222.83, ask_size=500, fee=0.003)]) == ([300], 300 * (222.83 + 0.003))
    assert both(300, [Quote(ask=222.83, ask_size=500, fee=0.003)])[1] == pytest.approx(66_849.9)


def test_fee_flips_the_choice_between_two_venues():
    cheap_ask_dear_fee = Quote(ask=10.00, ask_size=100, fee=0.03)
    dear_ask_no_fee = Quote(ask=10.01, ask_size=100, fee=0.0)
    assert both(100, [cheap_ask_dear_fee, dear_ask_no_fee]) == ([0, 100], 1001.0)
    assert both(100, [Quote(ask=10.00, ask_size=100), dear_ask_no_fee]) == ([100, 0], 1000.0)


def test_order_not_a_multiple_of_step_has_no_candidate():
    assert both(250, [Quote(ask=10.0, ask_size=1000)]) == EMPTY
    assert both(7, [Quote(ask=10.0, ask_size=1000)], step=5) == EMPTY


def test_displayed_size_below_order_has_no_candidate():
    assert both(300, [Quote(ask=10.0, ask_size=100), Quote(ask=10.0, ask_size=100)]) == EMPTY
    # 150 + 150 = 300 is displayed, but only whole steps count: 100 + 100 < 300.
    assert both(300, [Quote(ask=10.0, ask_size=150), Quote(ask=10.0, ask_size=150)]) == EMPTY


def test_bound_is_included_only_when_it_is_a_multiple_of_step():
    assert both(200, [Quote(ask=10.0, ask_size=250)]) == ([200], 2000.0)
    assert both(300, [Quote(ask=10.0, ask_size=250)]) == EMPTY
    assert both(300, [Quote(ask=10.0, ask_size=300)]) == ([300], 3000.0)


def test_equal_prices_first_in_enumeration_order_wins():
    # Quote 0's q ascending is the outer loop, so (0, 100) is met before (100, 0): ties go to later venues.
    assert both(100, [Quote(ask=10.0, ask_size=100), Quote(ask=10.0, ask_size=100)]) == ([0, 100], 1000.0)
    three = [Quote(ask=10.0, ask_size=100) for _ in range(3)]
    assert both(200, three) == ([0, 100, 100], 2000.0)


def test_zero_sizes_and_zero_orders():
    assert both(100, [Quote(ask=9.0, ask_size=0), Quote(ask=10.0, ask_size=500)]) == ([0, 100], 1000.0)
    assert both(0, [Quote(ask=10.0, ask_size=0), Quote(ask=11.0, ask_size=500)]) == ([0, 0], 0.0)
    assert both(0, []) == ([], 0.0)  # the empty split is a complete split summing to 0
    assert both(100, []) == EMPTY
    assert both(-100, [Quote(ask=1.0, ask_size=100)]) == EMPTY
    assert both(100, [Quote(ask=1.0, ask_size=-100), Quote(ask=1.0, ask_size=500)]) == EMPTY


def test_last_bit_near_tie_on_realistic_prices():
    # 222.84 + 0.01 == 222.85 but 222.83 + 0.02 == 222.85000000000002: every candidate costs 89140.0
    # after rounding, and the lexicographically first one goes through the *dearer* prefix (0, 200).
    venues = [
        Quote(ask=222.84, ask_size=500, fee=0.01),
        Quote(ask=222.83, ask_size=200, fee=0.02),
        Quote(ask=222.84, ask_size=200, fee=0.01),
    ]
    assert venues[1].ask + venues[1].fee > venues[0].ask + venues[0].fee
    assert both(400, venues) == ([0, 200, 200], 89_140.0)


def test_rounding_absorbs_a_dearer_prefix():
    # Prefix (0, 1) costs 1 + 2^-52 > prefix (1, 0) = 1, but adding −2^53 rounds both to −(2^53 − 1),
    # so the lexicographically first split (0, 1, 1) is optimal although its prefix was not.
    venues = [
        Quote(ask=1.0, ask_size=1),
        Quote(ask=1.0 + 2**-52, ask_size=1),
        Quote(ask=-(2.0**53), ask_size=1),
    ]
    assert both(2, venues, step=1) == ([0, 1, 1], -(2.0**53 - 1))


def test_invalid_inputs_are_rejected_by_both():
    for function in (allocate, allocate_exhaustive):
        with pytest.raises(ValueError, match="step"):
            function(100, [Quote(ask=1.0, ask_size=100)], 0.0, 0.0, 0.0, 0)
        with pytest.raises(ValueError, match="finite"):
            function(100, [Quote(ask=math.nan, ask_size=100)], 0.0, 0.0, 0.0)
        with pytest.raises(ValueError, match="finite"):
            function(100, [Quote(ask=1.0, ask_size=100)], math.inf, 0.0, 0.0)
        with pytest.raises(ValueError, match="overflow"):
            function(100, [Quote(ask=1e300, ask_size=100)], 0.0, 0.0, 0.0)


def test_split_cost_applies_penalties_and_rebates_when_split_exceeds_display():
    venues = [Quote(ask=10.0, ask_size=100, fee=0.5, rebate=0.25)]
    # exe = 100, unfilled 100 earns the rebate, under = 300 − 100 = 200.
    assert split_cost(300, venues, [200], 1.0, 2.0, 3.0) == 100 * 10.5 - 100 * 0.25 + 3.0 * 200 + 2.0 * 200


# ----------------------------------------------------------------------------------------------------
# allocate ≡ allocate_exhaustive on random small problems

GRID_ASKS = [222.81, 222.82, 222.83, 222.84]
GRID_FEES = [0.0, 0.003, 0.01, 0.02, -0.01]  # some ask + fee pairs coincide, some differ in the last bit
ROUNDING_PRICES = [0.1, 0.2, 0.3, 1 / 3, 1.0, 1.0 + 2**-52, 3.0, 1e8 + 0.1, 2.0**53, -(2.0**53), 1e16, -1e16]
penalties = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def problems(draw, asks, fees):
    """Small problems: 0–6 venues, a handful of steps each, odd lots and non-multiple orders included."""
    step = draw(st.sampled_from([100, 100, 100, 1, 7, 50]))
    n = draw(st.integers(min_value=0, max_value=6))
    # 0–5 whole steps plus an odd lot now and then (an odd lot below one step is a zero-capacity venue)
    size = st.builds(
        lambda lots, odd: lots * step + odd,
        st.integers(min_value=0, max_value=5),
        st.sampled_from([0, 0, 0, 1, step // 2, step - 1]),
    )
    rebate = st.sampled_from([0.0, 0.002, -0.001, 0.25])
    # Venues pick (ask, fee) from a small per-problem palette, so exact and last-bit ties are common.
    palette = draw(st.lists(st.tuples(asks, fees), min_size=1, max_size=4))
    quotes = [draw(st.sampled_from(palette)) for _ in range(n)]
    venues = [
        Quote(ask=ask, ask_size=draw(size), fee=fee, rebate=draw(rebate), publisher_id=i)
        for i, (ask, fee) in enumerate(quotes)
    ]
    units = draw(st.integers(min_value=0, max_value=8 if n <= 4 else 6))
    remainder = draw(st.sampled_from([0, 0, 0, 0, 0, 1, step // 2, step - 1]))
    return units * step + remainder, venues, step


def check_against_reference(problem, lambda_over, lambda_under, theta_queue):
    order_size, venues, step = problem
    ref = allocate_exhaustive(order_size, venues, lambda_over, lambda_under, theta_queue, step)
    fast = allocate(order_size, venues, lambda_over, lambda_under, theta_queue, step)
    assert_identical(fast, ref)


@settings(max_examples=5000, deadline=None)
@given(problems(st.sampled_from(GRID_ASKS), st.sampled_from(GRID_FEES)), penalties, penalties, penalties)
def test_matches_exhaustive_on_tie_prone_price_grid(problem, lambda_over, lambda_under, theta_queue):
    check_against_reference(problem, lambda_over, lambda_under, theta_queue)


@settings(max_examples=2500, deadline=None)
@given(
    problems(st.sampled_from(ROUNDING_PRICES), st.sampled_from([0.0, 0.1, 0.2, 1e-9])),
    penalties,
    penalties,
    penalties,
)
def test_matches_exhaustive_on_rounding_prone_prices(problem, lambda_over, lambda_under, theta_queue):
    check_against_reference(problem, lambda_over, lambda_under, theta_queue)


arbitrary = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=2500, deadline=None)
@given(problems(arbitrary, arbitrary), penalties, penalties, penalties)
def test_matches_exhaustive_on_arbitrary_floats(problem, lambda_over, lambda_under, theta_queue):
    check_against_reference(problem, lambda_over, lambda_under, theta_queue)


@settings(max_examples=300, deadline=None)
@given(
    problems(st.sampled_from(GRID_ASKS), st.sampled_from(GRID_FEES)),
    st.lists(penalties, min_size=3, max_size=3),
    st.lists(penalties, min_size=3, max_size=3),
)
def test_penalties_never_change_the_answer(problem, first, second):
    # Every candidate has q_i ≤ ask_size_i, so exe_i = q_i and under = over = 0: λ and θ multiply zero.
    order_size, venues, step = problem
    for function in (allocate, allocate_exhaustive):
        assert_identical(
            function(order_size, venues, *first, step), function(order_size, venues, *second, step)
        )


# ----------------------------------------------------------------------------------------------------
# Larger problems: the greedy oracle


def error_bound(order_size: int, venues: list[Quote]) -> float:
    """A generous bound on |float cost − exact cost| of any split (a few n·ε·max|price|·order)."""
    biggest = max(abs(v.ask + v.fee) for v in venues)
    return 4 * (len(venues) + 2) * 2.0**-53 * biggest * order_size


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.builds(
            Quote,
            ask=st.sampled_from(GRID_ASKS),
            ask_size=st.integers(min_value=0, max_value=3000),
            fee=st.sampled_from(GRID_FEES),
        ),
        min_size=1,
        max_size=16,
    ),
    st.integers(min_value=0, max_value=100),
)
def test_optimal_against_greedy_oracle_on_medium_problems(venues, units):
    order_size = units * 100
    split, cost = allocate(order_size, venues, 0.1, 0.2, 0.3)
    greedy = greedy_split(order_size, venues)
    if greedy is None:
        assert (split, cost) == EMPTY
        return
    assert sum(split) == order_size
    assert all(0 <= q <= v.ask_size and q % 100 == 0 for q, v in zip(split, venues, strict=True))
    assert cost == split_cost(order_size, venues, split, 0.1, 0.2, 0.3)
    assert cost <= split_cost(order_size, venues, greedy, 0.1, 0.2, 0.3)  # float-optimal
    excess = exact_cost(venues, split) - exact_cost(venues, greedy)
    assert 0 <= excess <= 2 * error_bound(order_size, venues)  # exactly optimal up to rounding


def sixteen_venues(same_price: bool) -> list[Quote]:
    rng = np.random.default_rng(20240601)
    sizes = rng.integers(50, 151, size=16) * 100  # 5,000–15,000 shares each, ≥ 100,000 in total
    if same_price:
        return [Quote(ask=222.83, ask_size=int(s), fee=0.003) for s in sizes]
    ticks = rng.permutation(16)
    return [
        Quote(
            ask=round(222.83 + 0.01 * (t // 4), 2), ask_size=int(s), fee=[0.003, 0.0029, 0.0025, 0.002][t % 4]
        )
        for t, s in zip(ticks, sizes, strict=True)
    ]


def test_sixteen_venues_hundred_thousand_shares_distinct_prices_is_the_greedy_split():
    venues = sixteen_venues(same_price=False)
    assert len({v.ask + v.fee for v in venues}) == 16  # separated by ≥ $0.0001/share ≫ rounding
    split, cost = allocate(100_000, venues, 0.1, 0.2, 0.3)
    greedy = greedy_split(100_000, venues)
    assert split == greedy
    assert cost == split_cost(100_000, venues, greedy, 0.1, 0.2, 0.3)


def test_sixteen_venues_hundred_thousand_shares_all_tied_is_float_optimal():
    venues = sixteen_venues(same_price=True)
    split, cost = allocate(100_000, venues, 0.1, 0.2, 0.3)
    assert sum(split) == 100_000
    assert all(0 <= q <= v.ask_size and q % 100 == 0 for q, v in zip(split, venues, strict=True))
    assert cost == split_cost(100_000, venues, split, 0.1, 0.2, 0.3)
    # Every split has the same exact cost; which one wins is decided by rounding, and it must round lowest.
    assert exact_cost(venues, split) == 100_000 * Fraction(222.83 + 0.003)
    rng = np.random.default_rng(7)
    for _ in range(300):  # rivals: fill the venues to capacity in a random order
        rival, left = [0] * 16, 100_000
        for i in rng.permutation(16):
            rival[i] = min(venues[i].ask_size // 100 * 100, left)
            left -= rival[i]
        assert cost <= split_cost(100_000, venues, rival, 0.1, 0.2, 0.3)


# ----------------------------------------------------------------------------------------------------
# The float-threshold helper at the heart of the tie-break


def test_largest_base_matches_bisection_across_magnitudes():
    rng = np.random.default_rng(3)
    for trial in range(60):
        limit = rng.standard_normal((40, 7)) * 10.0 ** rng.integers(-300, 300, size=(40, 7))
        addend = rng.standard_normal(7) * 10.0 ** rng.integers(-300, 299, size=7)
        if trial % 3 == 0:  # integers: exact ties at rounding midpoints
            limit, addend = limit.round(), addend.round()
        limit, addend = np.clip(limit, -1e300, 1e300), np.clip(addend, -1e299, 1e299)
        got = _largest_base(limit, addend)
        assert np.all(got + addend <= limit)
        assert np.all(np.nextafter(got, np.inf) + addend > limit)
        flat_addend = np.broadcast_to(addend, limit.shape).ravel()
        want = _largest_base_bisect(limit.ravel(), flat_addend)
        assert np.array_equal(got.ravel(), want)
        # The nudging fallback, started from a useless estimate, must reach the same answer.
        assert np.array_equal(_nudge(limit.ravel().copy(), flat_addend.copy(), np.zeros(limit.size)), want)


def test_venue_is_an_alias_of_quote_and_the_top_level_import_works():
    from allocator import Venue, allocate, allocate_exhaustive  # the public API, as users import it

    assert Venue is Quote
    quotes = [Venue(ask=10.0, ask_size=100, fee=0.01), Quote(ask=10.0, ask_size=100)]
    assert allocate(100, quotes, 0.4, 0.6, 0.5) == allocate_exhaustive(100, quotes, 0.4, 0.6, 0.5)
    assert allocate(100, quotes, 0.4, 0.6, 0.5) == ([0, 100], 1000.0)
