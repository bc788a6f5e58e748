"""Measure consumer-group behaviour of the embedded brokers: join, SIGKILL, static membership.

`python -m bench.probe_groups [--kind tansu|noida]` prints one JSON line per case. Not a bench_* module
(`python -m bench` does not run it): it records the figures of docs/brokers.md's consumer-group table.

A case: a 3-partition topic with 300 messages per partition; member B (in this process) and member A (a
subprocess) in one group; A commits offset 100 on the partitions it holds, then is SIGKILLed. We time
how long B (or A restarted with the same group.instance.id) takes to own A's partitions, and at which
offset reading resumes there.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from allocator.broker.embedded import KINDS, EmbeddedBroker
from allocator.kafka.admin import ensure_topic

PARTITIONS = 3
PER_PARTITION = 300
COMMITTED = 100


def member_settings(bootstrap: str, group: str, instance: str, session_ms: int) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": session_ms,
        "heartbeat.interval.ms": 1000,
    }
    if instance:
        conf["group.instance.id"] = instance
    return conf


def run_member(bootstrap: str, topic: str, group: str, instance: str, session_ms: int) -> None:
    """Subprocess A: report assignments and the first offset read per partition; commit COMMITTED."""
    consumer = Consumer(member_settings(bootstrap, group, instance, session_ms))
    started = time.monotonic()

    def on_assign(c: Consumer, parts: list[TopicPartition]) -> None:
        print(
            json.dumps({"assigned": [p.partition for p in parts], "t": time.monotonic() - started}),
            flush=True,
        )

    consumer.subscribe([topic], on_assign=on_assign)
    first: dict[int, int] = {}
    committed = False
    while True:
        msg = consumer.poll(0.1)
        if msg is None or msg.error():
            continue
        p, o = msg.partition() or 0, msg.offset() or 0
        if p not in first:
            first[p] = o
            print(json.dumps({"first": p, "offset": o, "t": time.monotonic() - started}), flush=True)
        if not committed and o >= COMMITTED - 1:
            held = consumer.assignment()
            consumer.commit(
                offsets=[TopicPartition(topic, tp.partition, COMMITTED) for tp in held], asynchronous=False
            )
            committed = True
            print(json.dumps({"committed": [tp.partition for tp in held]}), flush=True)
            # Stop reading (pause) so the kill happens with the commit as the last word.
            consumer.pause(held)


def produce(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "allow.auto.create.topics": False})
    for p in range(PARTITIONS):
        for i in range(PER_PARTITION):
            producer.produce(topic, value=b"%d" % i, partition=p)
    producer.flush(30)


def spawn(bootstrap: str, topic: str, group: str, instance: str, session_ms: int) -> subprocess.Popen[str]:
    cmd = [
        sys.executable,
        "-m",
        "bench.probe_groups",
        "--member",
        bootstrap,
        topic,
        group,
        instance,
        str(session_ms),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=os.environ.copy())


def lines_of(proc: subprocess.Popen[str]) -> queue.Queue[dict[str, Any]]:
    """A's JSON lines, read by a thread (select() on a buffered pipe misses lines already read ahead)."""
    out: queue.Queue[dict[str, Any]] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.put(json.loads(line))

    threading.Thread(target=pump, daemon=True).start()
    return out


def next_line(lines: queue.Queue[dict[str, Any]]) -> dict[str, Any] | None:
    try:
        return lines.get_nowait()
    except queue.Empty:
        return None


def case(
    kind: str, bootstrap: str, name: str, *, static: bool, restart: bool, session_ms: int, wait: float = 40
) -> dict[str, Any]:
    topic = group = f"probe-{name}-{time.time_ns()}"
    ensure_topic({"bootstrap.servers": bootstrap}, topic, PARTITIONS, exact_partitions=True)
    produce(bootstrap, topic)
    b_conf = member_settings(bootstrap, group, "b" if static else "", session_ms)
    owned: set[int] = set()
    events: list[tuple[float, str, list[int]]] = []
    t0 = time.monotonic()

    def on_assign(c: Consumer, parts: list[TopicPartition]) -> None:
        owned.update(p.partition for p in parts)
        events.append((time.monotonic() - t0, "assign", [p.partition for p in parts]))

    def on_revoke(c: Consumer, parts: list[TopicPartition]) -> None:
        owned.difference_update(p.partition for p in parts)
        events.append((time.monotonic() - t0, "revoke", [p.partition for p in parts]))

    b = Consumer(b_conf)
    b.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    b_first: dict[int, int] = {}
    a = spawn(bootstrap, topic, group, "a" if static else "", session_ms)
    a_lines = lines_of(a)
    result: dict[str, Any] = {"broker": kind, "case": name, "session_timeout_ms": session_ms}
    a_parts: list[int] = []
    join_deadline = time.monotonic() + 40
    # Poll B while A joins and commits; the group must split the partitions between the two.
    committed_doc = None
    while time.monotonic() < join_deadline:
        msg = b.poll(0.1)
        if msg is not None and not msg.error():
            b_first.setdefault(msg.partition() or 0, msg.offset() or 0)
        if committed_doc is None and (doc := next_line(a_lines)) is not None and "committed" in doc:
            committed_doc = doc
            a_parts = doc["committed"]
        if committed_doc is not None and a_parts and owned and not (owned & set(a_parts)):
            break
    result["join_seconds"] = round(time.monotonic() - t0, 2)
    result["a_partitions"], result["b_partitions"] = a_parts, sorted(owned)
    if not a_parts:
        a.kill()
        result["error"] = "A never committed (no partitions?)"
        b.close()
        return result
    killed = time.monotonic()
    a.send_signal(signal.SIGKILL)
    a.wait()
    restarted = spawn(bootstrap, topic, group, "a", session_ms) if restart else None
    restart_lines = lines_of(restarted) if restarted is not None else None
    b_first_after: dict[int, int] = {}
    wait_until = killed + wait
    takeover: float | None = None
    restart_first: dict[str, Any] | None = None
    while time.monotonic() < wait_until:
        msg = b.poll(0.1)
        if msg is not None and msg.error() is None:
            p = msg.partition() or 0
            if p in a_parts and p not in b_first_after:
                b_first_after[p] = msg.offset() or 0
                takeover = takeover or time.monotonic() - killed
        elif msg is not None and (err := msg.error()) is not None and err.code() != KafkaError._PARTITION_EOF:
            result.setdefault("b_errors", []).append(str(err))
        if restart_lines is not None and restart_first is None:
            doc = next_line(restart_lines)
            if doc is not None and "first" in doc:
                restart_first = doc | {"since_kill": round(time.monotonic() - killed, 2)}
        if restart and restart_first is not None:
            break
        if not restart and len(b_first_after) == len(a_parts):
            break
    if restart:
        result["restart_first_message"] = restart_first
    else:
        result["b_takeover_seconds"] = round(takeover, 2) if takeover is not None else None
        result["b_resumed_at"] = b_first_after
    result["b_events"] = [(round(t, 2), e, p) for t, e, p in events]
    if restarted is not None:
        restarted.kill()
        restarted.wait()
    b.close()
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--member":
        run_member(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=KINDS, action="append")
    parser.add_argument("--case", action="append")
    parser.add_argument("--session-ms", type=int, default=6000)
    parser.add_argument(
        "--wait", type=float, default=40.0, help="seconds to wait for a takeover after the kill"
    )
    args = parser.parse_args()
    cases = {
        "dynamic-kill": {"static": False, "restart": False},
        "static-kill": {"static": True, "restart": False},
        "static-restart": {"static": True, "restart": True},
    }
    for kind in args.kind or KINDS:
        with EmbeddedBroker(kind) as broker:
            for name in args.case or cases:
                print(
                    json.dumps(
                        case(
                            kind,
                            broker.bootstrap,
                            name,
                            session_ms=args.session_ms,
                            wait=args.wait,
                            **cases[name],
                        )
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
