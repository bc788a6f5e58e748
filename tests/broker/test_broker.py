"""Integration tests for allocator.broker.embedded against both embedded brokers (see docs/brokers.md)."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO

import psutil
import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from allocator.broker.embedded import (
    KINDS,
    NOIDA_BIN_ENV,
    BrokerKind,
    BrokerStartError,
    EmbeddedBroker,
    create_topic,
    free_port,
    port_in_use,
)
from allocator.errors import EXIT_BROKER, BrokerError

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]
TS_2024_08_01 = 1722470400000  # historical timestamps must survive the round trip untouched
KIND_PARAMS = [pytest.param(k, id=k) for k in KINDS]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _consumer(bootstrap: str, group: str, **extra: object) -> Consumer:
    conf: dict[str, object] = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,  # Tansu joins in session/2; noida rejects < 6000
    }
    conf.update(extra)
    return Consumer(conf)


def _produce(bootstrap: str, topic: str, n: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(n):
        producer.produce(topic, key=str(i).encode(), value=json.dumps({"i": i}).encode())
    assert producer.flush(10) == 0


def _first_message(consumer: Consumer, timeout: float = 30.0) -> Message:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            return msg
    raise AssertionError(f"no message within {timeout}s")


def _read_to_eof(bootstrap: str, topic: str, timeout: float = 15.0) -> list[Message]:
    consumer = _consumer(bootstrap, _name("reader"), **{"enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, 0, 0)])  # assign(): no group join delay
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.2):
                err = msg.error()
                if err is None:
                    out.append(msg)
                elif err.code() == KafkaError._PARTITION_EOF:
                    return out
                else:
                    raise AssertionError(f"consume error: {err}")
        raise AssertionError(f"no partition EOF within {timeout}s ({len(out)} messages read)")
    finally:
        consumer.close()


def _readline(stream: IO[str] | None, timeout: float) -> str:
    assert stream is not None
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            raise AssertionError(f"no output within {timeout}s")
        return stream.readline()
    finally:
        sel.close()


# -- lifecycle ------------------------------------------------------------------------------------


def test_start_ready_stop_leaves_no_process(fresh_broker: EmbeddedBroker) -> None:
    pid = fresh_broker.pid
    assert pid is not None and psutil.pid_exists(pid)
    assert AdminClient({"bootstrap.servers": fresh_broker.bootstrap}).list_topics(timeout=5).brokers
    fresh_broker.stop()
    assert fresh_broker.pid is None
    assert not psutil.pid_exists(pid)


def test_restart_persistence_matches_kind(fresh_broker: EmbeddedBroker) -> None:
    """noida keeps topics, data and committed offsets across restart; Tansu loses everything."""
    topic, group = _name("persist"), _name("g")
    create_topic(fresh_broker.bootstrap, topic)
    _produce(fresh_broker.bootstrap, topic, 50)
    committer = _consumer(fresh_broker.bootstrap, group)
    committer.commit(offsets=[TopicPartition(topic, 0, 20)], asynchronous=False)
    committer.close()
    old_pid = fresh_broker.pid

    fresh_broker.restart()  # SIGTERM: noida flushes; a SIGKILL loses its last ~0.3 s of acked writes
    assert fresh_broker.pid != old_pid

    topics = AdminClient({"bootstrap.servers": fresh_broker.bootstrap}).list_topics(timeout=5).topics
    if not fresh_broker.persistent:
        assert topic not in topics
        return
    assert [m.key() for m in _read_to_eof(fresh_broker.bootstrap, topic)] == [
        str(i).encode() for i in range(50)
    ]
    reader = _consumer(fresh_broker.bootstrap, group)
    assert reader.committed([TopicPartition(topic, 0)], timeout=5)[0].offset == 20
    reader.close()


@pytest.mark.parametrize(("kind", "env"), [("tansu", "CALF_TANSU_BIN"), ("noida", NOIDA_BIN_ENV)])
def test_binary_that_exits_gives_one_line_error(
    kind: BrokerKind, env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "fake-broker"
    fake.write_text("#!/bin/sh\necho 'boom: cannot bind'\nexit 7\n")
    fake.chmod(0o755)
    monkeypatch.setenv(env, str(fake))
    broker = EmbeddedBroker(kind)
    try:
        with pytest.raises(BrokerStartError, match="exited with code 7") as info:
            broker.start(timeout=10)
    finally:
        broker.cleanup()
    assert "boom: cannot bind" in str(info.value)
    assert "\n" not in str(info.value)


# -- data path ------------------------------------------------------------------------------------


def test_headers_and_timestamps_round_trip_in_order(broker: EmbeddedBroker) -> None:
    topic, n = _name("roundtrip"), 500
    create_topic(broker.bootstrap, topic)
    sent = [
        (
            f"k{i}".encode(),
            json.dumps({"seq": i, "px": 225.41 + i / 100}).encode(),
            [("seq", str(i).encode()), ("src", b"test")],
            TS_2024_08_01 + i * 1000,
        )
        for i in range(n)
    ]
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    for key, value, headers, ts in sent:
        producer.produce(topic, key=key, value=value, headers=headers, timestamp=ts)
    assert producer.flush(10) == 0

    got = _read_to_eof(broker.bootstrap, topic)
    assert [m.offset() for m in got] == list(range(n))
    assert [(m.key(), m.value(), m.headers(), m.timestamp()[1]) for m in got] == sent
    assert {m.timestamp()[0] for m in got} == {1}  # TIMESTAMP_CREATE_TIME


def test_create_topic_is_idempotent(broker: EmbeddedBroker) -> None:
    topic = _name("idem")
    assert create_topic(broker.bootstrap, topic, partitions=2) is True
    assert create_topic(broker.bootstrap, topic, partitions=2) is False
    with pytest.raises(BrokerError, match="has 2 partitions, expected 1"):
        create_topic(broker.bootstrap, topic, partitions=1)


def test_commit_then_new_consumer_resumes_at_committed_offset(broker: EmbeddedBroker) -> None:
    topic, group = _name("resume"), _name("g")
    create_topic(broker.bootstrap, topic)
    _produce(broker.bootstrap, topic, 100)

    first = _consumer(broker.bootstrap, group)
    first.subscribe([topic])
    msg = _first_message(first)
    while msg.offset() < 39:
        msg = _first_message(first)
    first.commit(message=msg, asynchronous=False)  # commits offset 40 = next to read
    first.close()  # a clean leave: noida never evicts a member that vanished without close()

    second = _consumer(broker.bootstrap, group)
    second.subscribe([topic])
    assert _first_message(second).offset() == 40
    second.close()


_KILLED_CHILD = """
import sys, time
from confluent_kafka import Consumer
bootstrap, topic, group = sys.argv[1:4]
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.instance.id": "allocator-1",
              "auto.offset.reset": "earliest", "enable.auto.commit": False, "session.timeout.ms": 6000})
c.subscribe([topic])
while True:
    m = c.poll(0.2)
    if m is not None and m.error() is None and m.offset() == 29:
        c.commit(message=m, asynchronous=False)
        print("committed", flush=True)
        time.sleep(600)
"""


def test_sigkilled_static_member_is_replaced_and_resumes(broker: EmbeddedBroker) -> None:
    """With group.instance.id a successor takes over a SIGKILLed consumer's slot.

    Without it noida keeps the dead member as group leader forever and no successor ever gets an
    assignment; Tansu would make it wait session.timeout.ms + a join (~11 s).
    """
    topic, group = _name("killed"), _name("g")
    create_topic(broker.bootstrap, topic)
    _produce(broker.bootstrap, topic, 60)
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CHILD, broker.bootstrap, topic, group],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert _readline(child.stdout, 30).strip() == "committed"
    finally:
        child.kill()
        child.wait()

    successor = _consumer(broker.bootstrap, group, **{"group.instance.id": "allocator-1"})
    successor.subscribe([topic])
    assert _first_message(successor, timeout=20).offset() == 30
    successor.close()


# -- CLI ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KIND_PARAMS)
def test_cli_runs_until_sigint_and_exits_zero(kind: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "allocator.broker", "--port", str(port), "--kind", kind],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _readline(proc.stderr, 30).strip()
        assert line.startswith(f"broker ready on 127.0.0.1:{port} ({kind}")
        assert AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=5).brokers
        children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        assert children, "the CLI should have started a broker child"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
        assert proc.stderr.read().strip() == ""
        assert not [pid for pid in children if psutil.pid_exists(pid)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("kind", KIND_PARAMS)
def test_a_sigkilled_launcher_takes_its_broker_with_it(kind: str) -> None:
    # SIGKILL runs no cleanup in the launcher; the kernel's parent-death signal must still end the broker,
    # so the port is free for the next start.
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "allocator.broker", "--port", str(port), "--kind", kind],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _readline(proc.stderr, 30).startswith(f"broker ready on 127.0.0.1:{port}")
        children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        assert children
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 10
        while any(
            psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
            for pid in children
        ):
            assert time.monotonic() < deadline, "the broker outlived its SIGKILLed launcher"
            time.sleep(0.1)
        while port_in_use("127.0.0.1", port):  # the kernel may take a moment to release the listener
            assert time.monotonic() < deadline + 10, "the port stayed taken after the launcher died"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("kind", KIND_PARAMS)
def test_cli_port_in_use_is_one_line_error(kind: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "allocator.broker", "--port", str(port), "--kind", kind],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    assert result.returncode == EXIT_BROKER
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "already in use" in lines[0] and str(port) in lines[0]
    assert "Traceback" not in result.stderr
