"""Running the two scripts against a broker, shared by the Kafka integration and fault tests."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from allocator.stream.events import ROUTING_SCHEMA

REPO = Path(__file__).resolve().parents[1]
DATASET = REPO / "data" / "l1_day.csv.gz"
# A one-minute slice of the recorded dataset keeps each replay to ~13k rows.
WINDOW = ["--start", "13:36:32", "--end", "13:37:31"]
ORDER = ["--order-size", "3000"]


def script(name: str, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """Run kafka_producer.py or order_allocator.py to completion."""
    result = subprocess.run(
        [sys.executable, str(REPO / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{name} exited {result.returncode}: {result.stderr[-2000:]}")
    return result


def popen(name: str, *args: str) -> subprocess.Popen:
    """Start a script in the background (for signals and concurrency)."""
    return subprocess.Popen(
        [sys.executable, str(REPO / name), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def start_producer(bootstrap: str, topic: str, speed: str, *extra: str) -> subprocess.Popen:
    """kafka_producer.py replaying WINDOW into `topic` at `speed`, in the background."""
    return popen(
        "kafka_producer.py",
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topic,
        "--speed",
        speed,
        *WINDOW,
        *extra,
    )


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def offline_report(*extra: str) -> dict:
    """The offline report for WINDOW and ORDER, without its run metadata: what Kafka runs must equal."""
    report = json.loads(script("order_allocator.py", "--csv", str(DATASET), *WINDOW, *ORDER, *extra).stdout)
    report.pop("run")
    return report


def produce(bootstrap: str, topic: str, *extra: str) -> dict:
    """Replay WINDOW into `topic`; returns the producer's JSON summary."""
    return json.loads(
        script(
            "kafka_producer.py", "--bootstrap-servers", bootstrap, "--topic", topic, *WINDOW, *extra
        ).stdout
    )


def allocate_from(bootstrap: str, topic: str, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    """Consume `topic` with order_allocator.py (15 s idle timeout unless overridden)."""
    return script(
        "order_allocator.py",
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topic,
        "--idle-timeout",
        "15",
        *ORDER,
        *extra,
        check=check,
    )


def consume(bootstrap: str, topic: str, *extra: str) -> tuple[int, dict | None, str]:
    """allocate_from without failing on a non-zero exit: (exit code, report or None, stderr)."""
    result = allocate_from(bootstrap, topic, *extra, check=False)
    return result.returncode, (json.loads(result.stdout) if result.stdout.strip() else None), result.stderr


def read_all(
    bootstrap: str, topic: str, isolation: str = "read_committed", timeout: float = 20
) -> list[Message]:
    """Every message of a one-partition topic, up to its end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": uuid.uuid4().hex,
            "enable.partition.eof": True,
            "isolation.level": isolation,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    held: list[Message] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = consumer.consume(num_messages=1000, timeout=0.5)
        held += [m for m in events if m.error() is None]
        if any(m.error() is not None and m.error().code() == KafkaError._PARTITION_EOF for m in events):
            break
    consumer.close()
    return held


def documents(messages: list[Message]) -> list[dict]:
    for m in messages:
        assert dict(m.headers() or [])["schema"] == ROUTING_SCHEMA.encode()
    return [json.loads(m.value()) for m in messages]
