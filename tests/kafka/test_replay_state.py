"""The consumer's state machine without a broker: fake messages in, phases, counts and stop reasons out."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from allocator.kafka.checkpoint import Checkpoint
from allocator.kafka.codec import HEADER_KIND, KIND_END, KIND_ROW, KIND_START, control_message, encode_rows
from allocator.kafka.codec import previous_sequence as prev_seq
from allocator.kafka.replay_state import Phase, ReplayState, StopRules
from tests.helpers import at, frame, quote

ROWS = 6
SENT = frame(quote(at("13:36:32") + i, 1 + i % 2, 222.5 + i / 100, 100 + i) for i in range(ROWS))


@dataclass
class FakeMessage:
    """What ReplayState reads of a confluent_kafka.Message."""

    payload: bytes | None
    kind: bytes | None = None
    part: int = 0
    at_offset: int = 0

    def value(self) -> bytes | None:
        return self.payload

    def headers(self) -> list[tuple[str, bytes]] | None:
        return [(HEADER_KIND, self.kind)] if self.kind is not None else None

    def partition(self) -> int:
        return self.part

    def offset(self) -> int:
        return self.at_offset


def start(run_id: str = "r1", rows: int = ROWS) -> FakeMessage:
    doc = control_message(
        KIND_START,
        run_id=run_id,
        rows=rows,
        columns=list(SENT.columns),
        window_start_ns=at("13:36:32"),
        window_end_ns=at("13:45:15"),
        venue_rows={"1": 3, "2": 3},
    )
    return FakeMessage(doc, KIND_START)


def end(run_id: str = "r1", rows: int = ROWS) -> FakeMessage:
    return FakeMessage(control_message(KIND_END, run_id=run_id, rows=rows), KIND_END)


def rows(*indices: int, run_id: str = "r1", sent: pd.DataFrame = SENT) -> list[FakeMessage]:
    values = encode_rows(sent, prev_sequence=prev_seq(sent), run_id=run_id)
    return [FakeMessage(values[i], KIND_ROW) for i in indices]


def with_offsets(messages: list[FakeMessage], first: int = 0) -> list[FakeMessage]:
    for i, msg in enumerate(messages):
        msg.at_offset = first + i
    return messages


def state(rules: StopRules | None = None, **kwargs) -> ReplayState:
    return ReplayState(rules or StopRules(idle_timeout=10.0), now=0.0, **kwargs)


def test_a_whole_replay_goes_waiting_receiving_draining_end_of_stream():
    s = state()
    assert s.phase is Phase.WAITING
    offsets = s.take(with_offsets([start(), *rows(0, 1, 2)]), 1.0, events=True)
    assert offsets == {"0": 4}
    assert s.phase is Phase.RECEIVING and s.stats.rows_received == 3
    assert s.stop_reason(1.0, events=True) is None
    s.take(with_offsets([*rows(3, 4, 5), end()], 4), 2.0, events=True)
    assert s.stop_reason(2.0, events=True) is None  # complete: one more poll for a newer replay
    assert s.phase is Phase.DRAINING
    s.take([], 2.5, events=False)
    assert s.stop_reason(2.5, events=False) == "end_of_stream"
    result = s.result()
    assert result.stats.expected_rows == ROWS and result.stats.missing_rows == 0
    assert result.stats.messages == 8 and result.stats.replays_seen == 1
    assert result.frame["ts_event"].tolist() == SENT["ts_event"].tolist()
    assert list(result.frame.columns) == list(SENT.columns)


def test_an_eof_event_while_draining_postpones_the_end():
    s = state()
    s.take([start(), *rows(*range(ROWS)), end()], 1.0, events=True)
    assert s.stop_reason(1.0, events=True) is None
    s.take([], 1.5, events=True)  # the poll brought only a partition-EOF event
    assert s.stop_reason(1.5, events=True) is None
    assert s.stop_reason(2.0, events=False) == "end_of_stream"


def test_duplicates_count_once_and_rows_before_a_start_are_undecodable():
    s = state()
    s.take(rows(0, 1), 1.0, events=True)  # no start seen yet
    assert s.stats.undecodable == 2 and s.stats.rows_received == 0 and s.phase is Phase.WAITING
    s.take([start(), *rows(0, 1, 1), *rows(1)], 2.0, events=True)
    s.take(rows(0), 3.0, events=True)
    assert s.stats.rows_received == 2 and s.stats.duplicates == 3


def test_bad_control_messages_and_other_runs_ends_are_counted_or_ignored():
    s = state()
    s.take([FakeMessage(b"{not json", KIND_START), FakeMessage(b"?", None), start()], 1.0, events=True)
    assert s.stats.undecodable == 2
    s.take([end(run_id="other"), FakeMessage(b'{"run_id": "r1"}', KIND_END)], 2.0, events=True)
    assert s.end_rows is None and s.stats.undecodable == 3
    s.take([start()], 3.0, events=True)  # the same run's start again changes nothing
    assert s.stats.replays_seen == 1


def test_a_newer_replay_starts_over_even_while_draining(caplog):
    s = state()
    s.take([start(), *rows(*range(ROWS)), end()], 1.0, events=True)
    s.stop_reason(1.0, events=True)
    assert s.phase is Phase.DRAINING
    with caplog.at_level(logging.INFO, logger="allocator.kafka.replay_state"):
        s.take([*rows(0), start("r2", rows=3), *rows(1, run_id="r2")], 2.0, events=True)
    assert "a newer replay (run r2) follows on the topic: starting over" in caplog.text
    assert s.phase is Phase.RECEIVING and s.stats.replays_seen == 2
    assert s.stats.rows_received == 1 and s.end_rows is None  # only the row after the new start
    assert s.stop_reason(2.5, events=False) is None
    assert s.stop_reason(20.0, events=False) == "idle_timeout"
    result = s.result()
    assert result.stats.missing_rows == 2 and result.stats.missing_ranges == [(0, 0), (2, 2)]


def test_idle_timeout_says_whether_a_replay_was_seen():
    waiting = state(StopRules(idle_timeout=5.0))
    waiting.take([], 4.0, events=False)
    assert waiting.stop_reason(4.0, events=False) is None
    assert waiting.stop_reason(5.5, events=False) == "idle_timeout_no_replay"
    assert waiting.result().stats.expected_rows is None
    started = state(StopRules(idle_timeout=5.0))
    started.take([start()], 3.0, events=True)
    assert started.stop_reason(7.0, events=False) is None  # 4 s after the last message
    assert started.stop_reason(8.5, events=False) == "idle_timeout"


def test_a_row_limit_stops_early():
    s = state(StopRules(stop_after_rows=3))
    s.take([start(), *rows(0, 1)], 1.0, events=True)
    assert s.stop_reason(1.0, events=True) is None
    s.take(rows(2), 2.0, events=True)
    assert s.stop_reason(2.0, events=True) == "stopped_early"


def test_gaps_are_found_and_attributed_to_venues():
    s = state()
    s.take([start(), *rows(0, 1, 4, 5), end()], 1.0, events=True)
    result = s.result()
    assert result.stats.missing_rows == 2 and result.stats.missing_ranges == [(2, 3)]
    assert result.stats.missing_by_venue == {"1": 1, "2": 1}
    assert [g["publisher_id"] for g in result.stats.venue_gaps] == [1, 2]


def test_on_rows_gets_each_new_batch_once():
    seen: list[pd.DataFrame] = []
    s = state(on_rows=seen.append)
    s.take([start(), *rows(0, 1)], 1.0, events=True)
    s.take(rows(1, 2), 2.0, events=True)
    assert [len(b) for b in seen] == [2, 1]


def test_checkpoint_then_resume_continues_where_it_ended(tmp_path):
    first = state(checkpoint=Checkpoint(tmp_path))
    first.take(with_offsets([start(), *rows(0, 1, 2)]), 1.0, events=True)
    checkpoint = Checkpoint(tmp_path)
    meta = checkpoint.load()
    assert meta is not None and meta["offsets"] == {"0": 4} and len(meta["segments"]) == 1
    resumed = state(checkpoint=checkpoint)
    resumed.resume(meta, checkpoint.batches(meta))
    assert resumed.phase is Phase.RECEIVING and resumed.stats.resumed_from_checkpoint
    assert resumed.stats.rows_received == 3
    resumed.take([*rows(2, 3, 4, 5), end()], 2.0, events=True)
    assert resumed.stats.duplicates == 1 and resumed.stats.rows_received == ROWS
    resumed.stop_reason(2.0, events=True)
    assert resumed.stop_reason(2.5, events=False) == "end_of_stream"
    got = resumed.result().frame
    assert np.array_equal(got["ts_event"].to_numpy(), SENT["ts_event"].to_numpy())


def test_a_newer_replay_resets_the_checkpoint(tmp_path):
    s = state(checkpoint=Checkpoint(tmp_path))
    s.take([start(), *rows(0, 1)], 1.0, events=True)
    s.take([start("r2"), *rows(0, run_id="r2")], 2.0, events=True)
    meta = Checkpoint(tmp_path).load()
    assert (
        meta is not None and meta["start"]["run_id"] == "r2" and meta["segments"] == ["segment-000000.arrow"]
    )
    assert sorted(p.name for p in tmp_path.glob("segment-*.arrow")) == ["segment-000000.arrow"]


@pytest.mark.parametrize(
    "payload",
    [
        None,
        b"[1, 2]",
        b'{"n": "x"}',
        b"{}",  # valid JSON with none of a row's keys
        b'{"ts_event": 1722519392000000000, "publisher_id": 1, "ask_px_00": 222.5, "ask_sz_00": 100}',  # no "n"
        b'{"n": 7, "publisher_id": 1}',  # no ts_event
    ],
)
def test_a_row_without_a_usable_value_is_undecodable(payload):
    s = state()
    s.take([start(), FakeMessage(payload, KIND_ROW), *rows(0)], 1.0, events=True)
    assert s.stats.undecodable == 1 and s.stats.rows_received == 1


def test_exit_codes_after_a_stream():
    from allocator.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED_CONSUMER
    from allocator.kafka.replay_state import StreamStats

    complete = StreamStats(stop_reason="end_of_stream")
    gap = StreamStats(stop_reason="end_of_stream", missing_rows=3, expected_rows=10)
    idle = StreamStats(stop_reason="idle_timeout")
    ctrl_c = StreamStats(stop_reason="interrupted")
    assert [complete.exit_code(strict=s) for s in (False, True)] == [0, 0]
    assert [gap.exit_code(strict=s) for s in (False, True)] == [0, EXIT_INCOMPLETE]
    assert [idle.exit_code(strict=s) for s in (False, True)] == [0, EXIT_INCOMPLETE]
    assert [ctrl_c.exit_code(strict=s) for s in (False, True)] == [EXIT_INTERRUPTED_CONSUMER] * 2
    # nothing to report: a failure even without --strict, and even after a complete stream
    assert [s.failure_exit_code for s in (complete, gap, idle, ctrl_c)] == [
        EXIT_INCOMPLETE,
        EXIT_INCOMPLETE,
        EXIT_INCOMPLETE,
        EXIT_INTERRUPTED_CONSUMER,
    ]
    assert gap.why() == "end of stream, 3 of 10 rows missing"


OTHER = frame(quote(at("13:40:00") + i, 3, 300.0 + i, 7) for i in range(ROWS))  # another window's rows


def test_two_replays_written_at_once_are_never_mixed():
    """A second producer starts mid-replay: the consumer follows its run only; the first run's rows and
    end message after that are foreign, counted by run id, and never take the followed run's indices."""
    s = state()
    s.take([start("r1"), *rows(0, 1, run_id="r1")], 1.0, events=True)
    theirs = rows(2, 3, 4, 5, run_id="r1")
    ours = rows(*range(ROWS), run_id="r2", sent=OTHER)
    mixed = [start("r2"), ours[0], *theirs[:2], *ours[1:4], *theirs[2:], end("r1"), *ours[4:], end("r2")]
    s.take(mixed, 2.0, events=True)
    s.stop_reason(2.0, events=True)
    s.stats.stop_reason = s.stop_reason(2.5, events=False) or ""
    result = s.result()
    assert result.start["run_id"] == "r2" and result.stats.complete
    assert result.frame["ts_event"].tolist() == OTHER["ts_event"].tolist()
    report = result.stats.report()
    assert report["foreign_messages"] == 5 and report["foreign_run_ids"] == ["r1"]
    assert report["duplicates_dropped"] == 0 and report["undecodable_skipped"] == 0


def test_rows_without_a_run_id_are_undecodable():
    s = state()
    untagged = encode_rows(SENT, prev_sequence=prev_seq(SENT))
    s.take([start(), FakeMessage(untagged[0], KIND_ROW), *rows(1)], 1.0, events=True)
    assert s.stats.undecodable == 1 and s.stats.rows_received == 1 and s.stats.foreign_messages == 0


def test_a_lone_row_of_the_wrong_shape_never_takes_the_real_rows_index():
    """It has a row's keys and our run id but not the replay's columns: undecodable, even alone in its
    poll (no batch parse error to send it down a slow path), and the real row 2 is kept, not a duplicate."""
    s = state()
    s.take([start(), *rows(0, 1)], 1.0, events=True)
    fake = b'{"n":2,"r":"r1","ts_event":1722519392000000000,"publisher_id":1}'
    s.take([FakeMessage(fake, KIND_ROW)], 2.0, events=True)
    s.take([*rows(2, 3, 4, 5), end()], 3.0, events=True)
    result = s.result()
    assert result.stats.undecodable == 1 and result.stats.duplicates == 0
    assert result.stats.rows_received == ROWS and result.stats.missing_rows == 0
    assert result.stats.undecodable_examples == [
        "not a market-data row: no 'ts_recv', 'rtype', 'instrument_id', ..."
    ]
    pd.testing.assert_frame_equal(result.frame, SENT, check_dtype=False, check_categorical=False)


@pytest.mark.parametrize(
    ("fields", "example"),
    [
        ({"rows": 10**13}, "start message: rows 10000000000000 is not an integer in 0..100000000"),
        ({"rows": True}, "start message: rows True is not an integer in 0..100000000"),
        (
            {"window_start_ns": -1},
            "start message: window_start_ns -1 is not an integer in 0..4102444800000000000",
        ),
        (
            {"window_end_ns": 10**30},
            "start message: window_end_ns 100000000000000000000000000... is not an integer in 0..4102444800000000000",
        ),
        ({"window_end_ns": 5}, "start message: window_start_ns is after window_end_ns"),
        ({"history_rows": 7}, "start message: history_rows 7 is not an integer in 0..6"),
        ({"levels": 11}, "start message: levels 11 is not an integer in 1..10"),
        ({"columns": ["ts_event", 3]}, "start message: columns must be a list of names"),
        (
            {"columns": ["ts_event"]},
            "start message: columns must be unique and hold ts_event, publisher_id, ask_px_00, ask_sz_00",
        ),
        (
            {"venue_rows": {"1": -3}},
            "start message: venue_rows must map publisher ids to row counts within rows",
        ),
        ({"run_id": ""}, "start message: run_id must be a string of 1 to 64 characters"),
    ],
)
def test_an_out_of_bounds_start_message_is_counted_never_obeyed(fields, example):
    doc = {
        "run_id": "r9",
        "rows": ROWS,
        "columns": list(SENT.columns),
        "window_start_ns": at("13:36:32"),
        "window_end_ns": at("13:45:15"),
    } | fields
    s = state()
    s.take([FakeMessage(control_message(KIND_START, **doc), KIND_START)], 1.0, events=True)
    assert s.phase is Phase.WAITING and not s.start
    assert s.stats.undecodable == 1 and s.stats.undecodable_examples == [example]


def test_an_end_message_announcing_more_rows_than_its_start_is_counted_never_obeyed():
    s = state()
    s.take([start(), *rows(*range(ROWS)), end(rows=10**6)], 1.0, events=True)
    assert s.end_rows is None and s.stats.undecodable == 1
    assert s.stats.undecodable_examples == ["end message: rows 1000000 > the start's 6"]
    s.take([end()], 2.0, events=True)
    assert s.end_rows == ROWS
