"""Where a study's parent orders arrive: inside the span where history and deadline fit, reproducibly."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.cli.common import flag_for
from allocator.errors import SettingError
from allocator.study.orders import arrival_times

S = 1_000_000_000


def test_even_arrivals_sit_at_slice_centres():
    # span [0 + 100 s, 1000 s − 100 s] = [100 s, 900 s]; four slices of 200 s, centres at 200, 400, 600, 800 s
    times = arrival_times(0, 1000 * S, 4, calibration_ns=100 * S, order_horizon_ns=100 * S)
    assert times == [200 * S, 400 * S, 600 * S, 800 * S]


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 50),
    st.integers(0, 600),
    st.integers(0, 600),
    st.integers(0, 2**31 - 1),
    st.sampled_from(["even", "poisson"]),
)
def test_every_arrival_has_its_history_and_its_deadline(count, calibration_s, horizon_s, seed, spacing):
    first, last = 5 * S, 3600 * S
    place = functools.partial(
        arrival_times,
        first,
        last,
        count,
        calibration_ns=calibration_s * S,
        order_horizon_ns=horizon_s * S,
        spacing=spacing,
        seed=seed,
    )
    times = place()
    assert len(times) == count and times == sorted(times)
    assert all(first + calibration_s * S <= t <= last - horizon_s * S for t in times)
    assert place() == times  # the same seed places the same orders


def test_a_path_too_short_is_an_error_naming_both_settings():
    with pytest.raises(SettingError) as error:
        arrival_times(0, 200 * S, 3, calibration_ns=120 * S, order_horizon_ns=120 * S)
    text = error.value.render(flag_for)
    assert "too short for an order" in text and "120 s of --calibration" in text and "--order-horizon" in text


def test_zero_arrivals_is_an_error():
    with pytest.raises(SettingError, match="at least one arrival"):
        arrival_times(0, 1000 * S, 0, calibration_ns=0, order_horizon_ns=0)
