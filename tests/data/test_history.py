"""Calibration history: the rows just before the window, kept apart for estimation and never traded.

The loader keeps [start − calibration, start) as `MarketData.history`; the producer sends those rows
first and unpaced; the consumer splits them off again, so the window's frame (and every faithful
output) is what it was without them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from allocator.data.loader import DEFAULT_CALIBRATION_SECONDS, calibration_to_ns, history_start, load
from allocator.data.window import FULL_FILE, NS_PER_SECOND, WindowSpec
from allocator.kafka.codec import decode_rows, encode_rows, frame_from_batches, previous_sequence
from allocator.kafka.consumer import consume_replay, stream_market_data
from allocator.kafka.producer import event_frame, replay_frame
from allocator.kafka.replay_state import StreamResult, StreamStats
from tests.helpers import at, frame, quote, to_csv_text, write

REPO = Path(__file__).resolve().parents[2]
CALIBRATION = 120 * NS_PER_SECOND

# (time of day, venue, ask, size, action); the window is the default 13:36:32 – 13:45:14.
ROWS = [
    ("13:30:00", 2, 222.70, 100, "A"),  # long before: outside a 120 s span
    ("13:34:31.999999999", 2, 222.71, 100, "A"),  # 1 ns before the span
    ("13:34:32", 2, 222.72, 110, "A"),  # first ns of the span
    ("13:35:10", 43, 222.73, 120, "T"),  # a trade only the history has
    ("13:35:05", 5, 222.74, 130, "C"),  # out of order in the file
    ("13:36:31.999999999", 5, 222.75, 140, "A"),  # last ns before the window
    ("13:36:32", 2, 222.80, 200, "A"),  # window
    ("13:36:33", 43, 222.81, 210, "A"),
    ("13:36:33", 5, 222.82, 220, "M"),
    ("13:36:35", 2, 222.79, 230, "A"),
    ("13:36:34", 43, 222.83, 240, "A"),  # out of order in the window
    ("13:40:00", 5, 222.84, 250, "A"),
    ("13:45:14.999999999", 2, 222.85, 260, "A"),
    ("13:45:15", 2, 222.86, 270, "A"),  # after the window
]
HISTORY = [at(r[0]) for r in ROWS[2:6]]  # in file order
WINDOW = [at(r[0]) for r in ROWS[6:13]]


def rows_frame(rows=ROWS) -> pd.DataFrame:
    return frame(
        quote(at(clock), pid, ask, size, action=action, side="N" if action == "T" else "A")
        for clock, pid, ask, size, action in rows
    )


@pytest.fixture
def path(tmp_path) -> Path:
    return write(tmp_path / "history.csv", to_csv_text(rows_frame()))


def plain(df: pd.DataFrame) -> pd.DataFrame:
    """Values only: categories depend on how the rows were read (blocks, messages), values must not; so
    does the integer width (the loader narrows integer columns to int32, the consumer decodes int64)."""
    out = df.reset_index(drop=True).copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = out[name].astype(object)
        elif out[name].dtype.kind in "iu":
            out[name] = out[name].astype(np.int64)
    return out


# ------------------------------------------------------------------------------------------- loader


def test_history_is_exactly_the_span_before_the_window(path):
    data = load(path, calibration_ns=CALIBRATION)
    assert data.history is not None
    assert data.history["ts_event"].tolist() == HISTORY  # file order, both edges exact
    assert data.history_rows == 4
    assert data.frame["ts_event"].tolist() == WINDOW
    assert list(data.history.columns) == list(data.frame.columns)
    assert data.history.dtypes.equals(data.frame.dtypes)  # categories included
    both = pd.concat([data.history, data.frame], ignore_index=True)
    assert isinstance(both["action"].dtype, pd.CategoricalDtype)
    assert isinstance(both["symbol"].dtype, pd.CategoricalDtype)
    assert both["action"].tolist() == [r[4] for r in ROWS[2:13]]


def test_history_trades_nothing_the_window_is_unchanged(path):
    without = load(path)
    with_history = load(path, calibration_ns=CALIBRATION)
    pd.testing.assert_frame_equal(plain(with_history.frame), plain(without.frame))
    assert with_history.window == without.window and with_history.rows_total == without.rows_total
    assert with_history.symbols == without.symbols


def test_no_calibration_means_no_history_and_the_same_frame(path):
    default, zero = load(path), load(path, calibration_ns=0)
    assert default.history is None and zero.history is None
    assert default.history_rows == zero.history_rows == 0
    pd.testing.assert_frame_equal(default.frame, zero.frame)  # exactly, categories included


def test_history_is_filtered_block_by_block(path):
    whole = load(path, calibration_ns=CALIBRATION)
    blocks = load(path, calibration_ns=CALIBRATION, block_size=2048)  # one or two rows per block
    pd.testing.assert_frame_equal(plain(blocks.history), plain(whole.history))
    pd.testing.assert_frame_equal(plain(blocks.frame), plain(whole.frame))
    assert blocks.history.dtypes.equals(blocks.frame.dtypes)


def test_empty_history_keeps_columns_and_dtypes(path):
    short = load(path, WindowSpec("13:30:00.5", "13:45:14"), calibration_ns=NS_PER_SECOND // 10)
    assert short.history_rows == 0 and short.history is not None
    assert list(short.history.columns) == list(short.frame.columns)
    assert short.history.dtypes.equals(short.frame.dtypes)
    unbounded = load(path, FULL_FILE, calibration_ns=CALIBRATION)  # --start all: nothing is before
    assert unbounded.history_rows == 0 and len(unbounded.frame) == len(ROWS)


def test_negative_calibration_is_refused(path):
    with pytest.raises(ValueError, match="calibration_ns"):
        load(path, calibration_ns=-1)


def test_history_uses_the_symbol_filter(tmp_path):
    df = rows_frame()
    df.loc[[3, 7], "symbol"] = "MSFT"  # one history row and one window row
    multi = write(tmp_path / "multi.csv", to_csv_text(df))
    msft = load(multi, symbol="MSFT", calibration_ns=CALIBRATION)
    assert msft.history["ts_event"].tolist() == [at("13:35:10")]
    assert msft.frame["ts_event"].tolist() == [at("13:36:33")]
    aapl = load(multi, symbol="AAPL", calibration_ns=CALIBRATION)
    assert aapl.history["ts_event"].tolist() == [HISTORY[0], *HISTORY[2:]]
    # Without --symbol the window must hold one symbol; history of another one is not calibration.
    df.loc[7, "symbol"] = "AAPL"
    only_history = write(tmp_path / "only_history.csv", to_csv_text(df))
    data = load(only_history, calibration_ns=CALIBRATION)
    assert data.symbols == ["AAPL"]
    assert set(data.history["symbol"].astype(object)) == {"AAPL"}
    assert data.history["ts_event"].tolist() == [HISTORY[0], *HISTORY[2:]]


def test_dbn_history_matches_csv(tmp_path, path):
    from tests.helpers import write_dbn

    dbn = write_dbn(rows_frame(), tmp_path / "history.mbp-1.dbn")
    csv_data, dbn_data = load(path, calibration_ns=CALIBRATION), load(dbn, calibration_ns=CALIBRATION)
    columns = ["ts_event", "publisher_id", "ask_px_00", "ask_sz_00", "bid_px_00", "action"]
    pd.testing.assert_frame_equal(plain(dbn_data.history[columns]), plain(csv_data.history[columns]))
    pd.testing.assert_frame_equal(plain(dbn_data.frame[columns]), plain(csv_data.frame[columns]))
    assert load(dbn).history is None


def test_history_start_is_clamped():
    from allocator.data.window import Window

    int64 = np.iinfo(np.int64)
    assert history_start(Window(at("13:36:32"), at("13:45:15")), CALIBRATION) == at("13:34:32")
    assert history_start(Window(int(int64.min), 0), CALIBRATION) == int64.min  # --start all
    assert history_start(Window(int(int64.min) + 5, 0), CALIBRATION) == int64.min
    assert calibration_to_ns(DEFAULT_CALIBRATION_SECONDS) == CALIBRATION
    assert calibration_to_ns(0.5) == NS_PER_SECOND // 2


# ------------------------------------------------------------------------------- producer / consumer


def test_replay_sends_history_first_in_event_order(path):
    data = load(path, calibration_ns=CALIBRATION)
    sent, history_rows = replay_frame(data)
    assert history_rows == 4
    assert sent["ts_event"].tolist() == sorted(HISTORY) + sorted(WINDOW)  # each part stable by ts
    window_only, none = replay_frame(load(path))
    assert none == 0
    pd.testing.assert_frame_equal(window_only, event_frame(load(path).frame))


def _streamed(data, start_extra: dict | None = None) -> StreamResult:
    """What consume_replay would return for a replay of `data` (wire encoding and decoding included)."""
    rows, history_rows = replay_frame(data)
    values = encode_rows(rows, prev_sequence=previous_sequence(rows))
    decoded = decode_rows(values, list(rows.columns)).frame
    received = frame_from_batches([decoded], list(rows.columns)).drop(columns=["n", "p"])
    start = {
        "rows": len(rows),
        "columns": list(rows.columns),
        "window_start_ns": data.window.start_ns,
        "window_end_ns": data.window.end_ns,
        "levels": data.levels,
        "history_rows": history_rows,
    } | (start_extra or {})
    return StreamResult(frame=received, start=start, stats=StreamStats())


def test_consumer_splits_history_like_the_loader(path):
    sent = load(path, calibration_ns=CALIBRATION)
    result = _streamed(sent, {"history_start_ns": at("13:34:32")})
    got = stream_market_data(result, "t", None, calibration_ns=CALIBRATION)
    pd.testing.assert_frame_equal(plain(got.frame), plain(event_frame(sent.frame)))
    pd.testing.assert_frame_equal(plain(got.history), plain(event_frame(sent.history)))
    assert got.history.dtypes.equals(got.frame.dtypes)
    # Without calibration the consumer's frame is the frame of a replay that carried no history.
    no_history = stream_market_data(_streamed(load(path)), "t", None)
    plain_frame = stream_market_data(result, "t", None)
    assert plain_frame.history is None
    pd.testing.assert_frame_equal(plain_frame.frame, no_history.frame)  # categories included
    assert plain_frame.window == no_history.window


def test_consumer_window_narrows_then_history_is_before_it(path):
    sent = load(path, calibration_ns=CALIBRATION)
    result = _streamed(sent, {"history_start_ns": at("13:34:32")})
    narrowed = WindowSpec("13:36:34", "13:45:14")
    got = stream_market_data(result, "t", narrowed, calibration_ns=3 * NS_PER_SECOND)
    expected = load(path, narrowed, calibration_ns=3 * NS_PER_SECOND)
    pd.testing.assert_frame_equal(plain(got.frame), plain(event_frame(expected.frame)))
    # [13:36:31, 13:36:34): a producer history row and producer window rows before the new start.
    pd.testing.assert_frame_equal(plain(got.history), plain(event_frame(expected.history)))
    assert got.history["ts_event"].tolist() == [
        at("13:36:31.999999999"),
        at("13:36:32"),
        *[at("13:36:33")] * 2,
    ]
    without = stream_market_data(result, "t", narrowed)
    pd.testing.assert_frame_equal(plain(without.frame), plain(got.frame))


def test_live_router_ignores_history_rows(path):
    from allocator.config import PenaltyGrid, RunConfig
    from allocator.data.venues import load_fee_table
    from allocator.kafka.replay_state import deliver_window_rows
    from allocator.stream.faithful import FaithfulStream

    config = RunConfig(order_size=300, step=100, grid=PenaltyGrid((0.4,), (0.6,), (0.3,)))  # one grid point

    def decisions(data) -> list:
        result = _streamed(data)
        router = FaithfulStream(
            300, 100, "buy", config.grid.points()[0], load_fee_table(None), "parent", None
        )
        deliver_window_rows(lambda rows: router.add(rows, 0.0), result.frame, result.start)
        router.end(0.0)
        return router.fills

    plain_fills = decisions(load(path))
    assert plain_fills  # the window alone fills something
    assert decisions(load(path, calibration_ns=CALIBRATION)) == plain_fills


# ------------------------------------------------------------------------------------------------ CLI


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "-inf", "abc", "1e999", ""])
def test_bad_calibration_is_one_line_exit_2(path, value):
    # `=` form: argparse would take a bare "-inf" for an option and print its usage instead.
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "kafka_producer.py"),
            "--dry-run",
            "--csv",
            str(path),
            f"--calibration={value}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kafka_producer.py: error: --calibration ")
    assert "Traceback" not in result.stderr


def test_dry_run_counts_history_rows(path):
    def dry(*extra: str) -> dict:
        out = subprocess.run(
            [sys.executable, str(REPO / "kafka_producer.py"), "--dry-run", "--csv", str(path), *extra],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(out)

    default = dry()
    assert default["history_rows"] == 4 and default["rows_in_window"] == len(WINDOW)
    assert dry("--calibration", "1")["history_rows"] == 1
    zero = dry("--calibration", "0")
    assert "history_rows" not in zero  # --calibration 0: the description as it always was
    assert zero == {k: v for k, v in default.items() if k != "history_rows"}


# ----------------------------------------------------------------------------------------- real broker


@pytest.mark.kafka
def test_producer_to_consumer_over_a_broker_gives_the_loaders_history(broker, tmp_path):
    # History spread over 100 s before a 1 s window, replayed in real time: only the window is paced.
    rows = [
        ("13:34:52", 2, 222.60, 100, "A"),
        ("13:35:30", 43, 222.61, 100, "T"),
        ("13:35:29", 5, 222.62, 100, "C"),
        ("13:36:31.5", 2, 222.63, 100, "A"),
        ("13:36:32", 2, 222.80, 200, "A"),
        ("13:36:32.4", 43, 222.81, 200, "A"),
        ("13:36:32.2", 5, 222.82, 200, "A"),
        ("13:36:33", 2, 222.83, 200, "A"),
    ]
    path = write(tmp_path / "paced.csv", to_csv_text(rows_frame(rows)))
    topic = f"h-{uuid.uuid4().hex[:10]}"
    started = time.perf_counter()
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "kafka_producer.py"),
            "--bootstrap-servers",
            broker.bootstrap,
            "--topic",
            topic,
            "--csv",
            str(path),
            "--speed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    wall = time.perf_counter() - started
    summary = json.loads(out)
    assert summary["rows"] == summary["rows_delivered"] == 8 and summary["history_rows"] == 4
    assert 0.9 <= summary["elapsed_seconds"] < 5, summary  # the window's 1 s, not the history's 100 s
    assert wall < 60

    result = consume_replay({"bootstrap.servers": broker.bootstrap}, topic, group=f"g-{uuid.uuid4().hex[:8]}")
    assert result.stats.complete and result.stats.rows_received == 8
    assert result.start["history_rows"] == 4
    assert result.start["history_start_ns"] == at("13:34:32")
    expected = load(path, calibration_ns=CALIBRATION)
    got = stream_market_data(result, topic, None, calibration_ns=CALIBRATION)
    pd.testing.assert_frame_equal(plain(got.history), plain(event_frame(expected.history)))
    pd.testing.assert_frame_equal(plain(got.frame), plain(event_frame(expected.frame)))
    without = stream_market_data(result, topic, None)
    assert without.history is None
    pd.testing.assert_frame_equal(plain(without.frame), plain(event_frame(load(path).frame)))
