"""Both wire formats without a broker: round trips of every value, only the columns needed decoded,
how rows are grouped into messages, and what a message of another layout version does."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.data.loader import STRING_COLUMNS
from allocator.data.schema import mbp_columns
from allocator.errors import UserError
from allocator.kafka.codec import (
    HEADER_FORMAT,
    HEADER_KIND,
    HEADER_SCHEMA,
    KIND_END,
    KIND_ROW,
    KIND_START,
    MAX_MESSAGE_BYTES,
    MAX_ROWS_PER_MESSAGE,
    PREVIOUS_SEQUENCE,
    REPLAY_INDEX,
    SCHEMA_VERSION,
    WIRE_ARROW,
    WIRE_AUTO,
    WIRE_JSON,
    WireError,
    arrow_schema,
    control_message,
    control_problem,
    decode_arrow,
    decode_rows,
    encode_arrow,
    encode_rows,
    frame_from_batches,
    message_starts,
    previous_sequence,
    rows_per_message,
    string_widths,
)
from allocator.kafka.producer import first_json_message
from allocator.kafka.replay_state import ReplayState, StopRules, wanted_columns
from tests.helpers import at, frame, quote

SENT = frame(quote(at("13:36:32") + i // 2, 1 + i % 3, 222.5 + i / 100, 100 + i) for i in range(12))
TOP = wanted_columns(list(SENT.columns), 1)


def bounds(values: pd.DataFrame, per_message: int, paced_from: int | None = None) -> list[int]:
    starts = message_starts(values["ts_event"].to_numpy(), per_message, paced_from)
    return [*starts.tolist(), len(values)]


def encoded(values: pd.DataFrame, wire: str, run_id: str = "r1", per_message: int = 4) -> list[bytes]:
    prev = previous_sequence(values)
    if wire == WIRE_JSON:
        return encode_rows(values, prev_sequence=prev, run_id=run_id)
    return encode_arrow(values, bounds(values, per_message), prev_sequence=prev, run_id=run_id)


def decoded(
    values: list[bytes], wire: str, columns: list[str], replay_columns: list[str], run_id: str = "r1"
):
    if wire == WIRE_JSON:
        return decode_rows(values, columns, run_id=run_id)
    return decode_arrow(values, columns, replay_columns, run_id=run_id)


# ---------------------------------------------------------------------------------- round trips

LEVELS = st.integers(1, 10)
PRICES = st.one_of(st.floats(allow_nan=True, allow_infinity=False, width=64), st.just(float("nan")))
INTS = st.integers(-(2**62), 2**62)
TEXT = st.text(min_size=0, max_size=6)  # quotes, backslashes, control characters, any script


@st.composite
def market_frames(draw: st.DrawFn) -> pd.DataFrame:
    """Rows with the loader's columns and dtypes (strings categorical), any values those types allow."""
    columns = mbp_columns(draw(LEVELS))
    rows = draw(st.integers(1, 30))
    ts = np.sort(np.array(draw(st.lists(st.integers(0, 50), min_size=rows, max_size=rows)), dtype=np.int64))
    data: dict[str, object] = {}
    for name in columns:
        if name in ("ts_event", "ts_recv"):
            data[name] = at("13:36:32") + ts
        elif name == "publisher_id":
            data[name] = np.array(
                draw(st.lists(st.integers(1, 4), min_size=rows, max_size=rows)), dtype=np.int64
            )
        elif name in STRING_COLUMNS:
            data[name] = pd.Categorical(draw(st.lists(TEXT, min_size=rows, max_size=rows)))
        elif name == "sequence":  # Databento sequences are never negative (p < 0 means "none")
            data[name] = np.array(
                draw(st.lists(st.integers(0, 2**62), min_size=rows, max_size=rows)), dtype=np.int64
            )
        elif name == "price" or "_px_" in name:
            data[name] = np.array(draw(st.lists(PRICES, min_size=rows, max_size=rows)), dtype=np.float64)
        else:
            data[name] = np.array(draw(st.lists(INTS, min_size=rows, max_size=rows)), dtype=np.int64)
    return pd.DataFrame(data, columns=columns)


@settings(max_examples=60, deadline=None)
@given(values=market_frames(), per_message=st.integers(1, 12), paced_from=st.none() | st.integers(0, 30))
def test_both_formats_round_trip_every_value(values: pd.DataFrame, per_message: int, paced_from: int | None):
    columns = list(values.columns)
    prev = previous_sequence(values)
    messages = {
        WIRE_JSON: encode_rows(values, first_index=7, prev_sequence=prev, run_id="run"),
        WIRE_ARROW: encode_arrow(values, bounds(values, per_message, paced_from), 7, prev, "run"),
    }
    expected = frame_from_batches([values], columns)
    for wire, sent in messages.items():
        result = decoded(sent, wire, columns, columns, run_id="run")
        assert result.undecodable == 0 and not result.foreign, (wire, result.errors)
        rows = frame_from_batches([result.frame], columns)
        assert rows[REPLAY_INDEX].tolist() == list(range(7, 7 + len(values)))
        assert rows[PREVIOUS_SEQUENCE].tolist() == prev.tolist()
        pd.testing.assert_frame_equal(rows[columns], expected, obj=wire)


def test_json_rows_are_one_object_each_that_any_json_reader_takes():
    values = SENT.assign(symbol=['A"B\\C\n\x00é'] * len(SENT))  # everything JSON must escape
    for value in encoded(values, WIRE_JSON):
        row = json.loads(value)
        assert row["symbol"] == 'A"B\\C\n\x00é' and list(row)[:3] == ["n", "r", "p"]
    rows = decode_rows(encoded(values, WIRE_JSON), list(values.columns), run_id="r1").frame
    assert rows["symbol"].tolist() == ['A"B\\C\n\x00é'] * len(SENT)


def test_an_arrow_message_is_a_complete_ipc_stream():
    messages = encoded(SENT, WIRE_ARROW, per_message=5)
    tables = [pa.ipc.open_stream(value).read_all() for value in messages]
    assert [t.num_rows for t in tables] == [5, 5, 2]
    assert all(t.schema.equals(arrow_schema(list(SENT.columns))) for t in tables)
    assert pa.concat_tables(tables).column("ts_event").to_pylist() == SENT["ts_event"].tolist()


# ---------------------------------------------------------------------------------- only what is needed


def test_at_one_level_json_deeper_fields_are_never_parsed():
    """A deeper level's value of the wrong type spoils the row only for a consumer that needs it."""
    values = [v.replace(b'"bid_px_05":', b'"bid_px_05":"not a price","x":') for v in encoded(SENT, WIRE_JSON)]
    top = decode_rows(values, TOP, run_id="r1")
    assert top.undecodable == 0 and len(top.frame) == len(SENT)
    assert list(top.frame.columns) == [REPLAY_INDEX, PREVIOUS_SEQUENCE, *TOP]
    assert decode_rows(values, list(SENT.columns), run_id="r1").undecodable == len(SENT)


def test_at_one_level_arrow_gives_only_the_top_of_book_columns():
    result = decode_arrow(encoded(SENT, WIRE_ARROW), TOP, list(SENT.columns), run_id="r1")
    assert list(result.frame.columns) == [REPLAY_INDEX, PREVIOUS_SEQUENCE, *TOP]
    pd.testing.assert_frame_equal(
        frame_from_batches([result.frame], TOP)[TOP], frame_from_batches([SENT], list(SENT.columns))[TOP]
    )


# ---------------------------------------------------------------------------------- bad messages


def _corrupt_symbols(values: pd.DataFrame) -> bytes:
    """An Arrow row message whose symbols are not UTF-8 (its sizes are sound: only full validation sees it)."""
    good = (
        pa.ipc.open_stream(encoded(values, WIRE_ARROW, per_message=len(values))[0]).read_all().to_batches()[0]
    )
    offsets = pa.py_buffer(np.arange(len(values) + 1, dtype=np.int32).tobytes())
    bad = pa.Array.from_buffers(
        pa.string(), len(values), [None, offsets, pa.py_buffer(b"\xff" * len(values))]
    )
    columns = [bad if name == "symbol" else good.column(name) for name in good.schema.names]
    batch = pa.RecordBatch.from_arrays(columns, schema=good.schema)
    return arrow_schema(list(values.columns)).serialize().to_pybytes() + batch.serialize().to_pybytes()


def test_bad_arrow_messages_are_counted_and_the_good_ones_kept():
    good = encoded(SENT, WIRE_ARROW, per_message=6)
    other_run = encoded(SENT.iloc[:3], WIRE_ARROW, run_id="r2", per_message=3)
    poll = [
        good[0],
        b"\xff\xff\xff\xffnot arrow",
        good[1][:-10],
        other_run[0],
        _corrupt_symbols(SENT.iloc[:2]),
    ]
    result = decode_arrow(poll, list(SENT.columns), list(SENT.columns), run_id="r1")
    assert len(result.frame) == 6 and result.frame[REPLAY_INDEX].tolist() == list(range(6))
    assert result.undecodable == 3 and result.foreign == {"r2": 3}
    assert any("corrupt" in e for e in result.errors) and any(
        "not an Arrow row message" in e for e in result.errors
    )


def test_an_arrow_message_with_other_columns_is_undecodable():
    other = encode_arrow(SENT[mbp_columns(1)], [0, len(SENT)], run_id="r1")
    result = decode_arrow(other, TOP, list(SENT.columns), run_id="r1")
    assert result.undecodable == 1 and "without the replay's columns" in result.errors[0]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [({"wire": "avro"}, "wire must be one of"), ({"rows_per_message": 0}, "rows_per_message 0 is not")],
)
def test_start_messages_announcing_an_unknown_wire_are_refused(fields, problem):
    doc = {
        "run_id": "r1",
        "rows": 12,
        "columns": list(SENT.columns),
        "window_start_ns": at("13:36:32"),
        "window_end_ns": at("13:45:15"),
    }
    assert control_problem(doc, KIND_START) is None
    assert problem in str(control_problem(doc | fields, KIND_START))


# ---------------------------------------------------------------------------------- messages


@settings(max_examples=200, deadline=None)
@given(
    ts=st.lists(st.integers(0, 5), min_size=0, max_size=60).map(lambda t: np.cumsum(t).astype(np.int64)),
    per_message=st.integers(1, 8),
    paced=st.none() | st.integers(0, 70),
)
def test_paced_messages_hold_one_instant_and_unpaced_ones_are_full(ts, per_message, paced):
    starts = message_starts(ts, per_message, paced).tolist()
    ends = [*starts[1:], len(ts)] if starts else []
    assert starts == sorted(set(starts)) and (not len(ts) or starts[0] == 0)
    first_paced = len(ts) if paced is None else min(paced, len(ts))
    assert first_paced == len(ts) or first_paced in starts  # no message spans history and window
    for start, end in zip(starts, ends, strict=True):
        assert 0 < end - start <= per_message
        if start >= first_paced:
            assert len(set(ts[start:end].tolist())) == 1  # one instant: sent when it is due
            assert end == len(ts) or ts[end] != ts[start] or end - start == per_message
        elif end < first_paced:
            assert end - start == per_message  # unpaced: full (but the last before the window)


@pytest.mark.parametrize("levels", [1, 10])
@pytest.mark.parametrize("symbol", ["AAPL", "a much longer instrument name " * 3])
def test_a_full_arrow_message_stays_under_the_brokers_limit(levels, symbol):
    assert rows_per_message(mbp_columns(levels), WIRE_JSON) == 1
    values = SENT[mbp_columns(levels)].assign(symbol=symbol)
    rows = rows_per_message(list(values.columns), WIRE_ARROW, string_widths(values))
    assert 1 < rows <= MAX_ROWS_PER_MESSAGE
    values = pd.concat([values] * (rows // len(values) + 1)).iloc[:rows]
    size = len(encode_arrow(values, [0, rows], run_id="f" * 32)[0])
    assert 0.85 * MAX_MESSAGE_BYTES < size <= MAX_MESSAGE_BYTES  # full, and never refused (docs/brokers.md)


# ---------------------------------------------------------------------------------- the state machine


@dataclass
class Message:
    """What ReplayState reads of a confluent_kafka.Message, with any headers."""

    payload: bytes | None
    headers_: list[tuple[str, bytes]] = field(default_factory=list)
    at_offset: int = 0

    def value(self) -> bytes | None:
        return self.payload

    def headers(self) -> list[tuple[str, bytes]]:
        return self.headers_

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self.at_offset


def headers(kind: bytes, wire: str = WIRE_JSON, schema: str = SCHEMA_VERSION) -> list[tuple[str, bytes]]:
    return [(HEADER_SCHEMA, schema.encode()), (HEADER_FORMAT, wire.encode()), (HEADER_KIND, kind)]


def start(wire: str, run_id: str = "r1", schema: str = SCHEMA_VERSION, **extra: object) -> Message:
    fields = {
        "run_id": run_id,
        "rows": len(SENT),
        "columns": list(SENT.columns),
        "window_start_ns": at("13:36:32"),
        "window_end_ns": at("13:45:15"),
        "venue_rows": {"1": 4, "2": 4, "3": 4},
        "schema": schema,
        "wire": wire,
        "rows_per_message": rows_per_message(list(SENT.columns), wire),
    }
    return Message(control_message(KIND_START, **(fields | extra)), headers(KIND_START, schema=schema))


def rows(wire: str, run_id: str = "r1", per_message: int = 4) -> list[Message]:
    return [Message(v, headers(KIND_ROW, wire)) for v in encoded(SENT, wire, run_id, per_message)]


def end(run_id: str = "r1") -> Message:
    return Message(control_message(KIND_END, run_id=run_id, rows=len(SENT)), headers(KIND_END))


@pytest.mark.parametrize("wire", [WIRE_ARROW, WIRE_JSON])
def test_a_replay_in_either_format_gives_the_same_frame(wire):
    state = ReplayState(StopRules(idle_timeout=10.0), now=0.0, levels=1)
    sent = rows(wire)
    # Out of order, one message twice, the other run's rows mixed in: all as a real topic may have them.
    poll = [start(wire), *sent[::-1], sent[0], *rows(wire, run_id="r2"), end()]
    state.take(poll, 1.0, events=True)
    result = state.result()
    assert result.stats.rows_received == len(SENT) and result.stats.missing_rows == 0
    assert result.stats.duplicates == (4 if wire == WIRE_ARROW else 1)  # a message of 4 rows, or a row
    assert result.stats.foreign_messages == len(SENT) and result.stats.wire == wire
    assert list(result.frame.columns) == TOP
    pd.testing.assert_frame_equal(result.frame, frame_from_batches([SENT], list(SENT.columns))[TOP])


def test_a_lost_arrow_message_is_a_gap_of_its_rows():
    state = ReplayState(StopRules(idle_timeout=10.0), now=0.0)
    sent = rows(WIRE_ARROW)
    state.take([start(WIRE_ARROW), sent[0], sent[2], end()], 1.0, events=True)
    stats = state.result().stats
    assert stats.missing_rows == 4 and stats.missing_ranges == [(4, 7)]


def test_rows_without_headers_are_recognised_by_their_first_bytes():
    state = ReplayState(StopRules(idle_timeout=10.0), now=0.0)
    bare = [Message(m.payload) for m in rows(WIRE_ARROW)[:1] + rows(WIRE_JSON)[4:]]
    state.take([start(WIRE_ARROW), *bare, Message(b"neither")], 1.0, events=True)
    assert state.stats.rows_received == len(SENT) and state.stats.undecodable == 1


@pytest.mark.parametrize("how", ["header", "document"])
def test_a_start_in_another_schema_version_is_one_line(how):
    state = ReplayState(StopRules(idle_timeout=10.0), now=0.0)
    message = start(WIRE_ARROW, schema="sor-l1/9")
    if how == "document":  # no headers (kcat -P): the document's own `schema` field says it
        message = Message(message.payload, [(HEADER_KIND, KIND_START)])
    with pytest.raises(WireError) as error:
        state.take([message], 1.0, events=True)
    assert isinstance(error.value, UserError) and "\n" not in str(error.value)
    assert "'sor-l1/9'" in str(error.value) and f"'{SCHEMA_VERSION}'" in str(error.value)
    assert "(run r1)" in str(error.value)


def test_rows_in_another_schema_version_or_an_unknown_format_are_undecodable():
    state = ReplayState(StopRules(idle_timeout=10.0), now=0.0)
    other = [Message(m.payload, headers(KIND_ROW, WIRE_ARROW, schema="sor-l1/9")) for m in rows(WIRE_ARROW)]
    avro = Message(b"\x00", headers(KIND_ROW, "avro"))
    state.take([start(WIRE_ARROW), avro, *other], 1.0, events=True)
    assert state.stats.undecodable == len(other) + 1 and state.stats.rows_received == 0
    assert "unknown format 'avro'" in state.stats.undecodable_examples[0]
    assert "wire schema 'sor-l1/9'" in state.stats.undecodable_examples[1]


def test_polls_ask_for_about_a_batch_of_rows_but_never_more_than_can_still_come():
    state = ReplayState(StopRules(idle_timeout=10.0), now=0.0)
    assert state.poll_size(50_000) == 1  # waiting for a start: read it as soon as it arrives
    state.take([start(WIRE_ARROW, rows_per_message=5)], 1.0, events=True)
    assert state.poll_size(20) == 4  # 20 rows are 4 messages of 5
    assert state.poll_size(50_000) == 3 + 1  # 12 rows left in messages of 5, and the end message
    state.take(rows(WIRE_ARROW, per_message=5)[:2], 2.0, events=True)
    assert state.poll_size(50_000) == 1 + 1


def test_a_poll_that_takes_what_is_ready_counts_a_row_per_message():
    """The streaming router's polls do not wait, so they may ask for every row still to come (a paced
    window arrives a row per message) instead of a batch of full Arrow messages."""
    state = ReplayState(StopRules(idle_timeout=10.0), now=0.0)
    state.take([start(WIRE_ARROW, rows_per_message=5)], 1.0, events=True)
    assert state.poll_size(50_000, takes_what_is_ready=True) == 12 + 1
    assert state.poll_size(8, takes_what_is_ready=True) == 8
    assert state.poll_size(50_000) == 3 + 1


def test_polls_stop_asking_at_the_callers_row_limit():
    state = ReplayState(StopRules(idle_timeout=10.0, stop_after_rows=6), now=0.0)
    state.take([start(WIRE_ARROW, rows_per_message=5)], 1.0, events=True)
    assert state.poll_size(50_000) == 2 + 1  # 6 rows are 2 messages of 5, and the replay is not over


def test_the_producer_flag_chooses_the_format_auto_by_default(capsys):
    import kafka_producer

    assert kafka_producer.build_parser().parse_args([]).wire == WIRE_AUTO
    assert kafka_producer.build_parser().parse_args(["--wire", "json"]).wire == WIRE_JSON
    assert kafka_producer.build_parser().parse_args(["--wire", "arrow"]).wire == WIRE_ARROW
    with pytest.raises(SystemExit) as exit_info:
        kafka_producer.build_parser().parse_args(["--wire", "avro"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --wire: invalid choice: 'avro' (choose from 'auto', 'arrow', 'json')" in err


def test_an_auto_replay_mixes_arrow_history_and_json_rows_into_the_same_frame():
    """auto: full Arrow messages, then a JSON message per row, each told by its own format header."""
    state = ReplayState(StopRules(idle_timeout=10.0), now=0.0, levels=1)
    history = encode_arrow(SENT, [0, 4, 8], 0, None, "r1")[:1]  # rows 0-3 in one Arrow message
    paced = encode_rows(SENT.iloc[4:], first_index=4, run_id="r1")  # rows 4-11, one JSON message each
    poll = [
        start(WIRE_AUTO, rows_per_message=4),
        *[Message(v, headers(KIND_ROW, WIRE_ARROW)) for v in history],
        *[Message(v, headers(KIND_ROW, WIRE_JSON)) for v in paced[::-1]],
        end(),
    ]
    state.take(poll, 1.0, events=True)
    result = state.result()
    assert result.stats.rows_received == len(SENT) and result.stats.missing_rows == 0
    assert result.stats.wire == WIRE_AUTO and result.stats.undecodable == 0
    pd.testing.assert_frame_equal(result.frame, frame_from_batches([SENT], list(SENT.columns))[TOP])


@settings(max_examples=100, deadline=None)
@given(
    ts=st.lists(st.integers(0, 5), min_size=1, max_size=60).map(lambda t: np.cumsum(t).astype(np.int64)),
    per_message=st.integers(2, 8),
    paced=st.integers(0, 70),
)
def test_auto_messages_are_full_before_the_window_and_a_row_each_in_it(ts, per_message, paced):
    starts = message_starts(ts, per_message, paced, 1)
    first_paced = min(paced, len(ts))
    assert starts.tolist() == [
        *message_starts(ts[:first_paced], per_message, None),
        *range(first_paced, len(ts)),
    ]
    assert first_json_message(WIRE_AUTO, starts, paced) == int(np.searchsorted(starts, first_paced))
    assert first_json_message(WIRE_AUTO, starts, None) == len(starts)  # unpaced: all Arrow
    assert first_json_message(WIRE_JSON, starts, paced) == 0
    assert first_json_message(WIRE_ARROW, starts, paced) == len(starts)
