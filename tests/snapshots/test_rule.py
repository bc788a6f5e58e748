"""The snapshot rule on crafted rows: first message per venue per tick, carried forward to later ticks."""

from __future__ import annotations

import numpy as np

from allocator.data.loader import load
from allocator.snapshots.rule import build_snapshots
from tests.helpers import at, frame, quote, to_csv_text, write


def test_snapshot_rule_on_crafted_rows(tmp_path, market_rows):
    path = write(tmp_path / "rows.csv", to_csv_text(market_rows))
    snaps = build_snapshots(load(path).frame)
    assert list(snaps.publisher_ids) == [2, 5, 43]
    assert [str(np.datetime64(int(t), "ns"))[11:19] for t in snaps.ts_event] == [
        "13:36:33",
        "13:36:34",
        "13:36:35",
        "13:36:36",
        "13:36:37",
    ]
    nan = np.nan
    # At 13:36:33 venue 2 is its FIRST message there (222.83 × 200); later ticks carry its LAST (222.84 × 300).
    np.testing.assert_array_equal(
        snaps.take_px,
        [
            [222.83, nan, nan],
            [222.84, 222.83, nan],
            [222.84, 222.83, 222.85],
            [222.84, nan, 222.85],
            [222.82, nan, 222.85],
        ],
    )
    np.testing.assert_array_equal(
        snaps.take_sz, [[200, 0, 0], [300, 90, 0], [300, 90, 150], [300, 0, 150], [500, 0, 150]]
    )
    assert snaps.untradable_quotes == 1
    np.testing.assert_array_equal(snaps.fresh[:, 0], [True, False, False, False, True])


def test_carry_forward_uses_last_message_of_earlier_tick():
    df = frame(
        [
            quote(at("13:40:00"), 2, 10.00, 100),
            quote(at("13:40:00"), 2, 10.05, 700),  # last message of venue 2's tick
            quote(at("13:40:01"), 5, 10.10, 100),
            quote(at("13:40:02"), 2, 10.20, 300),
            quote(at("13:40:02"), 2, 10.30, 400),
        ]
    )
    snaps = build_snapshots(df)
    np.testing.assert_array_equal(snaps.take_px[:, 0], [10.00, 10.05, 10.20])
    np.testing.assert_array_equal(snaps.take_sz[:, 0], [100, 700, 300])


def test_one_venue_snapshots_are_first_row_per_ts_event():
    rng = np.random.default_rng(7)
    ts = at("13:37:00") + np.sort(rng.integers(0, 50, 400)) * 1000
    rng.shuffle(ts[100:150])  # an unsorted stretch
    df = frame([quote(int(t), 2, 100 + (i % 7) / 100, 100 + i) for i, t in enumerate(ts)])
    snaps = build_snapshots(df)
    expected = (
        df.assign(row=np.arange(len(df))).sort_values("ts_event", kind="stable").groupby("ts_event").first()
    )
    np.testing.assert_array_equal(snaps.ts_event, expected.index.to_numpy())
    np.testing.assert_array_equal(snaps.take_sz[:, 0], expected["ask_sz_00"].to_numpy())
