"""Cutting a study into tasks: blocks per path, keys that change with what the rows depend on, early errors."""

from __future__ import annotations

import dataclasses

import pytest

from allocator.config import PenaltyGrid, RunConfig, SimSettings
from allocator.data.venues import load_fee_table
from allocator.data.window import NS_PER_SECOND
from allocator.errors import SettingError
from allocator.study.paths import SyntheticSource
from allocator.study.plan import OrderPlan, plan_tasks

CONFIG = RunConfig(mode="cont-kukanov", grid=PenaltyGrid((0.2,), (0.2,), (0.1,)))
FEES = load_fee_table()


def test_blocks_cover_every_arrival_of_every_path_once():
    sources = [SyntheticSource(1, 10, "/c"), SyntheticSource(2, 10, "/c")]
    tasks = plan_tasks(sources, OrderPlan(arrivals=10), CONFIG, FEES, block=4)
    assert [(t.source.seed, t.first, t.stop) for t in tasks] == [
        (1, 0, 4), (1, 4, 8), (1, 8, 10), (2, 0, 4), (2, 4, 8), (2, 8, 10)
    ]  # fmt: skip
    assert len({t.key for t in tasks}) == 6
    assert all(t.config.jobs == 1 for t in tasks)


def test_keys_change_with_the_settings_and_not_with_the_grid_workers():
    sources = [SyntheticSource(1, 10, "/c")]
    key = plan_tasks(sources, OrderPlan(), CONFIG, FEES)[0].key
    assert plan_tasks(sources, OrderPlan(), dataclasses.replace(CONFIG, jobs=4), FEES)[0].key == key
    assert plan_tasks(sources, OrderPlan(), dataclasses.replace(CONFIG, order_size=100), FEES)[0].key != key
    assert plan_tasks(sources, OrderPlan(sides=("buy",)), CONFIG, FEES)[0].key != key
    assert plan_tasks(sources, OrderPlan(), CONFIG, load_fee_table(fee=0.01))[0].key != key
    assert plan_tasks([SyntheticSource(1, 11, "/c")], OrderPlan(), CONFIG, FEES)[0].key != key


def test_a_synthetic_path_too_short_is_refused_before_any_work_naming_it_and_both_settings():
    # 2 minutes of path, 120 s of calibration before each arrival and 120 s after it: no room
    with pytest.raises(SettingError) as info:
        plan_tasks([SyntheticSource(3, 2, "/c")], OrderPlan(), CONFIG, FEES)
    error = info.value
    assert str(error).startswith("synthetic-3: the path ")
    assert error.settings == {"calibration": "calibration", "horizon": "order_horizon"}
    assert "needs 120 s of calibration before the arrival and 120 s of order_horizon after it" in str(error)


def test_the_study_needs_the_realistic_mode_and_a_warmup_inside_the_calibration():
    source = [SyntheticSource(1, 10, "/c")]
    with pytest.raises(SettingError, match="a study evaluates the realistic mode"):
        plan_tasks(source, OrderPlan(), RunConfig(), FEES)
    late = dataclasses.replace(CONFIG, sim=SimSettings.from_units(warmup_seconds=60, calibration_seconds=30))
    with pytest.raises(SettingError, match="warmup 60 is longer than calibration 30"):
        plan_tasks(source, OrderPlan(), late, FEES)
    with pytest.raises(SettingError, match="given twice"):
        plan_tasks(source * 2, OrderPlan(), CONFIG, FEES)


def test_order_settings_are_checked_with_their_names():
    with pytest.raises(SettingError, match="arrivals 0: give at least one arrival"):
        OrderPlan(arrivals=0)
    with pytest.raises(SettingError, match="'hold' is not one of buy, sell"):
        OrderPlan(sides=("buy", "hold"))  # type: ignore[arg-type]
    with pytest.raises(SettingError, match="order_horizon 0: an order needs more than 0 seconds"):
        OrderPlan(order_horizon_ns=0 * NS_PER_SECOND)


def test_poisson_arrivals_are_seeded_per_path_and_reproducible():
    plan = OrderPlan(arrivals=5, spacing="poisson", seed=3)
    span = (0, 600 * NS_PER_SECOND)
    a = plan.arrivals_on("p1", *span, calibration_ns=60 * NS_PER_SECOND)
    assert a == plan.arrivals_on("p1", *span, calibration_ns=60 * NS_PER_SECOND)
    assert a != plan.arrivals_on("p2", *span, calibration_ns=60 * NS_PER_SECOND)
    assert a == sorted(a) and a[0] >= 60 * NS_PER_SECOND and a[-1] <= 480 * NS_PER_SECOND
