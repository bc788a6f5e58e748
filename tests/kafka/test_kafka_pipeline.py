"""The Kafka path end to end on real brokers (Tansu and noida-db, started by the fixtures)."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid

import pyarrow as pa
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from allocator.kafka.checkpoint import state_directory
from allocator.kafka.codec import HEADER_FORMAT, HEADER_KIND, HEADER_SCHEMA, KIND_ROW, SCHEMA_VERSION
from allocator.kafka.consumer import consume_replay
from tests.kafka_helpers import DATASET, WINDOW, allocate_from, produce, script
from tests.kafka_helpers import offline_report as offline

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def offline_report() -> dict:
    return offline()


def new_topic() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def read_back(bootstrap: str, topic: str, messages: int) -> list[Message]:
    """The topic's first `messages` messages, as a plain consumer (kcat, say) sees them."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "session.timeout.ms": 6000}
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    held: list[Message] = []
    deadline = time.monotonic() + 60
    while len(held) < messages and time.monotonic() < deadline:
        held += [
            m for m in consumer.consume(num_messages=messages - len(held), timeout=0.5) if m.error() is None
        ]
    consumer.close()
    return held


@pytest.mark.parametrize("wire", ["arrow", "json"])
def test_kafka_report_is_identical_to_offline(broker, offline_report, wire):
    topic = new_topic()
    summary = produce(broker.bootstrap, topic, "--speed", "0", "--wire", wire)
    assert summary["rows_sent"] == summary["rows_delivered"] == summary["rows"] > 10_000
    assert summary["wire"] == wire
    report = json.loads(allocate_from(broker.bootstrap, topic).stdout)
    run = report.pop("run")
    assert report == offline_report
    stream = run["stream"]
    assert stream["stop_reason"] == "end_of_stream" and stream["wire"] == wire
    assert stream["rows_expected"] == stream["rows_received"] == summary["rows"]
    assert stream["duplicates_dropped"] == stream["missing_rows"] == stream["undecodable_skipped"] == 0
    assert stream["messages"] == summary["messages_sent"] + 2  # the rows' messages, start and end
    assert run["run_id"] == summary["run_id"]
    if wire == "arrow":  # unpaced: full messages, far fewer than rows
        assert summary["messages_sent"] < summary["rows"] / 100


REALISTIC = ["--mode", "cont-kukanov", "--horizon", "10", "--warmup", "5", "--lambda-under", "0.2,1.0"]


@pytest.mark.parametrize(("side", "wire"), [("buy", "arrow"), ("sell", "json")])
def test_cont_kukanov_kafka_report_is_identical_to_offline(broker, side, wire):
    # The realistic mode reads every message and all ten levels, so this proves the stream carries the
    # whole book (trades, sides, ts_recv), not just the top of it, in either wire format.
    expected = offline(*REALISTIC, "--side", side)
    topic = new_topic()
    produce(broker.bootstrap, topic, "--speed", "0", "--wire", wire)
    report = json.loads(allocate_from(broker.bootstrap, topic, *REALISTIC, "--side", side).stdout)
    report.pop("run")
    assert report == expected
    assert report["execution"]["model"]["book_levels"] == 10
    assert report["execution"]["strategies"]["optimized"]["maker_shares"] > 0


def test_consumer_started_first_waits_then_completes(broker, offline_report):
    topic = new_topic()
    holder: dict = {}
    thread = threading.Thread(target=lambda: holder.update(result=allocate_from(broker.bootstrap, topic)))
    thread.start()
    time.sleep(4)  # the consumer has joined and is waiting for a topic that does not exist yet
    assert thread.is_alive()
    produce(broker.bootstrap, topic, "--speed", "0")
    thread.join(timeout=120)
    report = json.loads(holder["result"].stdout)
    report.pop("run")
    assert report == offline_report


def row_tables(messages: list[Message]) -> list[tuple[str, pa.Table]]:
    """Each row message's format header and its rows as a table, whichever the encoding."""
    tables = []
    for m in messages:
        headers = dict(m.headers())
        if headers[HEADER_KIND] != KIND_ROW:
            continue
        if headers[HEADER_FORMAT] == b"arrow":
            tables.append(("arrow", pa.ipc.open_stream(m.value()).read_all()))
        else:
            tables.append(("json", pa.Table.from_pylist([json.loads(m.value())])))
    return tables


@pytest.mark.parametrize("wire", ["auto", "arrow"])
def test_pacing_at_speed_20(broker, wire):
    topic = new_topic()
    started = time.perf_counter()
    summary = produce(  # 19 s of data → ~0.95 s
        broker.bootstrap, topic, "--speed", "20", "--end", "13:36:51", "--wire", wire
    )
    wall = time.perf_counter() - started
    assert 0.9 <= summary["elapsed_seconds"] <= 3.0, summary
    if wire == "auto":  # Arrow's paced one-instant messages cost ~0.1 ms each: on a loaded machine they lag
        assert summary["p99_lateness_ms"] < 250, summary
    assert wall < 30
    # Each paced message holds the rows of one instant, so it goes out exactly when it is due; the
    # calibration history before the window is unpaced: full Arrow messages. auto sends the window as JSON.
    messages = read_back(broker.bootstrap, topic, summary["messages_sent"] + 2)
    rows = row_tables(messages)
    history = [(f, t) for f, t in rows if t.column("n")[0].as_py() < summary["history_rows"]]
    window = [(f, t) for f, t in rows if t.column("n")[0].as_py() >= summary["history_rows"]]
    assert sum(t.num_rows for _, t in rows) == summary["rows"]
    assert {f for f, _ in history} == {"arrow"} and max(t.num_rows for _, t in history) > 1000
    assert {f for f, _ in window} == {"json" if wire == "auto" else "arrow"}
    assert len(window) > 100 and all(len(set(t.column("ts_event").to_pylist())) == 1 for _, t in window)
    assert all(
        m.timestamp()[1] == t.column("ts_event")[0].as_py() // 1_000_000
        for m, (_, t) in zip(messages[1:-1], rows, strict=True)
    )


def test_json_rows_are_one_object_per_message_for_kcat(broker):
    topic = new_topic()
    summary = produce(broker.bootstrap, topic, "--speed", "0", "--wire", "json", "--calibration", "0")
    messages = read_back(broker.bootstrap, topic, summary["rows"] + 2)
    kinds = [dict(m.headers()) for m in messages]
    assert all(h[HEADER_SCHEMA] == SCHEMA_VERSION.encode() and h[HEADER_FORMAT] == b"json" for h in kinds)
    assert [h[HEADER_KIND] for h in kinds] == [b"start"] + [KIND_ROW] * summary["rows"] + [b"end"]
    rows = [json.loads(m.value()) for m in messages[1:-1]]
    assert [r["n"] for r in rows] == list(range(summary["rows"])) and {r["r"] for r in rows} == {
        summary["run_id"]
    }
    assert json.loads(messages[0].value())["wire"] == "json"


def test_a_replay_in_another_schema_version_is_one_line(broker):
    topic = new_topic()
    produce(broker.bootstrap, topic, "--speed", "0")
    start = read_back(broker.bootstrap, topic, 1)[0]
    _inject(broker, topic, [start.value()], kind=b"start", schema=b"sor-l1/9")  # a newer producer's replay
    result = allocate_from(broker.bootstrap, topic, check=False)
    assert result.returncode == 2 and result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"order_allocator.py: error: topic '{topic}': a replay (run "), last
    assert "wire schema 'sor-l1/9' but this consumer reads 'sor-l1/3'" in last
    assert "Traceback" not in result.stderr


def test_unreachable_broker_is_one_clear_line():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        started = time.perf_counter()
        result = script(
            "kafka_producer.py",
            "--bootstrap-servers",
            f"127.0.0.1:{port}",
            "--connect-timeout",
            "3",
            *WINDOW,
            check=False,
        )
    assert time.perf_counter() - started < 15
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(
        f"kafka_producer.py: error: cannot reach Kafka at 127.0.0.1:{port} within 3 s"
    )
    assert "Traceback" not in result.stderr


def _inject(
    broker, topic: str, values: list[bytes], kind: bytes = KIND_ROW, schema: bytes = SCHEMA_VERSION.encode()
) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for value in values:
        producer.produce(
            topic, value=value, key=b"AAPL", headers=[(HEADER_SCHEMA, schema), (HEADER_KIND, kind)]
        )
    assert producer.flush(10) == 0


def test_undecodable_messages_are_skipped_and_counted(broker, offline_report):
    topic = new_topic()
    produce(broker.bootstrap, topic, "--speed", "0")
    # Garbage appended after the end-of-stream message: a consumer reading it must not crash.
    _inject(broker, topic, [b"{not json", b'{"ts_event": "soon"}', b"\xff\xfe"])
    # Control messages that are not valid documents are counted too, never fatal.
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for kind, value in ((b"start", b"{broken"), (b"end", b'{"rows": "many"}'), (b"start", b"[1, 2]")):
        producer.produce(topic, value=value, key=b"AAPL", headers=[(HEADER_KIND, kind)])
    assert producer.flush(10) == 0
    result = allocate_from(broker.bootstrap, topic)
    report = json.loads(result.stdout)
    run = report.pop("run")
    assert report == offline_report
    assert run["stream"]["undecodable_skipped"] == 6


def test_missing_rows_make_the_report_incomplete(broker):
    from allocator.data.loader import load
    from allocator.kafka.codec import KIND_END, KIND_START, control_message, encode_rows, previous_sequence
    from allocator.kafka.producer import event_frame

    data = load(DATASET, levels=1)
    frame = event_frame(data.frame).iloc[:500]
    rows = encode_rows(frame, prev_sequence=previous_sequence(frame), run_id="r1")
    venue_rows = {str(k): int(v) for k, v in frame.groupby("publisher_id", observed=True).size().items()}
    start = control_message(
        KIND_START,
        run_id="r1",
        rows=500,
        columns=list(frame.columns),
        source="test",
        window_start_ns=data.window.start_ns,
        window_end_ns=data.window.end_ns,
        levels=1,
        venue_rows=venue_rows,
    )
    topic = new_topic()
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for kind, value in [
        (KIND_START, start),
        *((KIND_ROW, r) for i, r in enumerate(rows) if not 100 <= i < 150),
        (KIND_ROW, rows[7]),
        (KIND_END, control_message(KIND_END, run_id="r1", rows=500)),
    ]:
        producer.produce(topic, value=value, key=b"AAPL", headers=[(HEADER_KIND, kind)])
    assert producer.flush(10) == 0
    result = allocate_from(broker.bootstrap, topic, "--idle-timeout", "5", "--strict", check=False)
    assert result.returncode == 4
    report = json.loads(result.stdout)
    assert report["status"] == "incomplete"
    stream = report["run"]["stream"]
    assert stream["missing_rows"] == 50 and stream["missing_ranges"] == [[100, 149]]
    assert stream["duplicates_dropped"] == 1 and stream["rows_received"] == 450
    # Each venue with rows among the lost 100..149 has one gap: after its last row before them,
    # before its first row after them.
    lost = frame.iloc[100:150]
    expected = []
    for pid in sorted(lost["publisher_id"].unique()):
        mine = frame[frame["publisher_id"] == pid]
        before = mine.loc[:99, "sequence"]
        after = mine.loc[150:, "sequence"]
        expected.append(
            {
                "publisher_id": int(pid),
                "after_sequence": int(before.iloc[-1]) if len(before) else None,
                "before_sequence": int(after.iloc[0]),
            }
        )
    assert sorted(stream["venue_gaps"], key=lambda g: g["publisher_id"]) == expected
    assert sum(stream["missing_by_venue"].values()) == 50
    assert "gap at publisher_id" in result.stderr
    assert "incomplete" in result.stderr


def test_restart_in_the_same_group_resumes_from_the_checkpoint(broker, offline_report, tmp_path):
    topic = new_topic()
    # The replay is the calibration history (sent first) plus the window: `rows` counts both.
    replay_rows = produce(broker.bootstrap, topic, "--speed", "0")["rows"]
    group = f"g-{uuid.uuid4().hex[:8]}"
    settings = {"bootstrap.servers": broker.bootstrap}
    # First consumer: stops after ~4,000 rows, having checkpointed and committed what it processed.
    partial = consume_replay(
        settings, topic, group=group, state_dir=state_directory(tmp_path, group, topic), stop_after_rows=4000
    )
    assert partial.stats.stop_reason == "stopped_early"
    first_part = partial.stats.rows_received
    assert 4000 <= first_part < replay_rows
    result = allocate_from(broker.bootstrap, topic, "--group", group, "--state-dir", str(tmp_path))
    report = json.loads(result.stdout)
    run = report.pop("run")
    assert report == offline_report
    assert run["stream"]["resumed_from_checkpoint"] is True
    assert run["stream"]["duplicates_dropped"] == 0  # nothing was read twice
    assert run["stream"]["messages"] < replay_rows  # it did not start over


def test_a_replay_started_twice_is_deduplicated(broker, offline_report):
    """Two producers replaying the same window into one topic at once: every row arrives twice."""
    from tests.kafka_helpers import finish, popen

    topic = new_topic()
    args = ["--bootstrap-servers", broker.bootstrap, "--topic", topic, *WINDOW, "--speed", "0"]
    first, second = popen("kafka_producer.py", *args), popen("kafka_producer.py", *args)
    assert finish(first)[0] == 0
    assert finish(second)[0] == 0
    result = allocate_from(broker.bootstrap, topic, "--live")
    report = json.loads(result.stdout)
    run = report.pop("run")
    assert report == offline_report
    assert run["stream"]["missing_rows"] == 0
    assert run["stream"]["replays_seen"] >= 1
    assert " split: " in result.stderr  # --live printed the router's decisions as they happened
    assert run["live"]["equals_offline"] and run["live"]["decisions_before_end"] > 0


@pytest.mark.slow
def test_two_producers_replaying_different_windows_at_once_are_never_mixed(broker):
    # Both replays interleave on one topic. The consumer follows the one whose start came last; every row and
    # end message of the other is counted as foreign, so the report is exactly the offline report of one
    # window, complete, and never a blend of the two.
    from tests.kafka_helpers import consume, finish, start_producer

    topic = f"two-{uuid.uuid4().hex[:8]}"
    other = ["--start", "13:38:00", "--end", "13:38:59"]
    # At 4× each one-minute replay lasts 15 s, so the two overlap whatever their start-up times.
    first = start_producer(broker.bootstrap, topic, "4")
    second = start_producer(broker.bootstrap, topic, "4", *other)
    assert finish(first)[0] == 0 and finish(second)[0] == 0
    code, report, err = consume(broker.bootstrap, topic, "--idle-timeout", "5", "--order-size", "3000")
    assert code == 0, err
    assert report is not None and report["status"] == "complete"
    stream = report.pop("run")["stream"]
    assert report in (offline(), offline(*other))
    assert stream["foreign_messages"] > 0 and len(stream["foreign_run_ids"]) == 1
    assert stream["missing_rows"] == 0
