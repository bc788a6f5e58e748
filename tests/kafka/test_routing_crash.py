"""The routing topics across a crash, on both embedded brokers: a live consumer writing child orders and
fills is SIGKILLed mid-stream and restarted with the same group (and transactional id), and the topics
must then hold what an uninterrupted run writes.

A resumed consumer rebuilds its router from the replay's first row, so it emits again what its
predecessor sent. On noida-db, which honours transactions, `--transactional-id` makes a read_committed
reader see every id exactly once (the publisher skips the ids already committed). Tansu accepts the
transaction calls but shows aborted messages (docs/brokers.md), so there the run goes without one: every
id arrives at least once, and the ids dedupe to the uninterrupted run's set.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from allocator.broker.embedded import create_topic
from tests.kafka_helpers import ORDER, documents, finish, popen, read_all, start_producer

pytestmark = pytest.mark.kafka

CK = ["--mode", "cont-kukanov", "--horizon", "3", "--lambda-over", "0.2", "--lambda-under", "0.01"]
SPEED = "3"  # the one-minute window in ~20 s: the kill lands well before the end, even on a loaded machine
# One row per message throughout: with the default (auto) wire the start message announces Arrow's rows per
# message, and the consumer then asks each poll for only a few of the paced window's one-row messages, so
# the restarted consumer would need ~1 min to catch up with the backlog its predecessor left.
WIRE = ["--wire", "json"]


def first_message(bootstrap: str, topic: str, alive: list, timeout: float = 60) -> None:
    """Wait until a read_committed reader sees a message on `topic` (every process in `alive` running)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "isolation.level": "read_committed"}
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for proc in alive:
                assert proc.poll() is None, (
                    f"exited {proc.returncode} too early: {proc.communicate()[1][-2000:]}"
                )
            msg = consumer.poll(0.05)
            if msg is not None and msg.error() is None:
                return
    finally:
        consumer.close()
    raise AssertionError(f"nothing on {topic!r} after {timeout:g} s")


def ids(bootstrap: str, topic: str, field: str) -> list[str]:
    return [doc[field] for doc in documents(read_all(bootstrap, topic))]


def test_routing_topics_after_a_sigkill_equal_an_uninterrupted_run(broker, tmp_path: Path):
    name = uuid.uuid4().hex[:8]
    topic, orders, fills = f"crash-{name}", f"orders-{name}", f"fills-{name}"
    ref_orders, ref_fills = f"ref-orders-{name}", f"ref-fills-{name}"
    for t in (topic, orders, fills, ref_orders, ref_fills):
        create_topic(broker.bootstrap, t)
    common = ["--bootstrap-servers", broker.bootstrap, "--topic", topic, "--idle-timeout", "20", *ORDER, *CK]
    transactional = ["--transactional-id", f"sor-{name}"] if broker.kind == "noida" else []
    crashing = [
        *common,
        *("--orders-topic", orders, "--fills-topic", fills),
        *("--group", f"g-{name}", "--state-dir", str(tmp_path)),
        *transactional,
    ]
    # The uninterrupted run reads the same replay at the same time, into its own topics.
    reference = popen("order_allocator.py", *common, "--orders-topic", ref_orders, "--fills-topic", ref_fills)
    victim = popen("order_allocator.py", *crashing)
    producer = start_producer(broker.bootstrap, topic, SPEED, *WIRE)

    first_message(broker.bootstrap, orders, [victim, producer, reference])
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert producer.poll() is None, "the replay ended before the kill: it must land mid-stream"

    restarted = popen("order_allocator.py", *crashing)
    code, out, err = finish(restarted)
    assert code == 0, err[-2000:]
    assert finish(producer)[0] == 0
    ref_code, ref_out, ref_err = finish(reference)
    assert ref_code == 0, ref_err[-2000:]

    report, ref_report = json.loads(out), json.loads(ref_out)
    run, ref_run = report.pop("run"), ref_report.pop("run")
    assert report == ref_report  # the resumed consumer routed what the uninterrupted one did
    assert run["stream"]["resumed_from_checkpoint"] is True
    assert run["live"]["equals_offline"] is True and ref_run["live"]["equals_offline"] is True

    want_orders, want_fills = (
        ids(broker.bootstrap, ref_orders, "order_id"),
        ids(broker.bootstrap, ref_fills, "fill_id"),
    )
    assert len(want_orders) > 1 and len(want_fills) > 1 and len(set(want_orders)) == len(want_orders)
    got_orders, got_fills = ids(broker.bootstrap, orders, "order_id"), ids(broker.bootstrap, fills, "fill_id")
    if broker.kind == "noida":  # transactions honoured: each id once for a read_committed reader
        assert Counter(got_orders) == Counter(want_orders)
        assert Counter(got_fills) == Counter(want_fills)
        assert run["live"]["already_committed"] > 0  # the predecessor's committed output was not re-sent
    else:  # at least once: nothing lost, the copies dedupe on the ids
        assert set(got_orders) == set(want_orders) and set(got_fills) == set(want_fills)
