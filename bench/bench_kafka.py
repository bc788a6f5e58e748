"""Kafka: producer rate, allocator ingest rate vs a bare confluent-kafka loop, pacing accuracy at 1×.

Each broker (embedded Tansu, noida-db) is started on a free loopback port for the run.
Targets: ingest ≥ 50 % of the bare consume loop; pacing wall time ≈ window, small p99 lateness.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer

from allocator.broker.embedded import EmbeddedBroker
from allocator.data.loader import load
from allocator.data.window import WindowSpec
from allocator.kafka.admin import ensure_topic
from allocator.kafka.consumer import consume_replay
from allocator.kafka.producer import replay

DATASET = Path(__file__).resolve().parents[1] / "data" / "l1_day.csv.gz"


def bare_consume(bootstrap: str, topic: str, expected: int) -> float:
    """Messages per second of the simplest batch consume loop over the same topic."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "receive.message.max.bytes": (1 << 31) - 1,
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    count, started = 0, None
    deadline = time.monotonic() + 120
    while count < expected and time.monotonic() < deadline:
        batch = consumer.consume(num_messages=5000, timeout=0.5)
        if batch and started is None:
            started = time.perf_counter()
        count += sum(1 for m in batch if m.error() is None)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return count / elapsed if elapsed else 0.0


def run() -> list[tuple[str, float, str]]:
    figures: list[tuple[str, float, str]] = []
    full = load(DATASET)
    thirty = load(DATASET, WindowSpec("13:40:00", "13:40:29"))
    for kind in ("tansu", "noida"):
        with EmbeddedBroker(kind=kind) as broker:
            settings = {"bootstrap.servers": broker.bootstrap}
            topic = f"bench-{uuid.uuid4().hex[:8]}"
            ensure_topic(settings, topic)
            stats = replay(full, settings, topic, speed=0)
            figures.append(
                (
                    f"[{kind}] producer rate at --speed 0 ({stats.rows} rows)",
                    stats.rows / stats.elapsed_s,
                    "msg/s",
                )
            )
            expected = stats.rows + 2
            bare = bare_consume(broker.bootstrap, topic, expected)
            result = consume_replay(settings, topic, group=uuid.uuid4().hex, idle_timeout=30, levels=1)
            ours = result.stats.ingest_rate
            figures += [
                (f"[{kind}] bare confluent-kafka consume loop", bare, "msg/s"),
                (f"[{kind}] allocator ingest (decode top level, dedupe, commit)", ours, "msg/s"),
                (f"[{kind}] ingest / bare loop (target >= 0.5)", ours / bare, "ratio"),
            ]
            if kind == "tansu":
                topic = f"pace-{uuid.uuid4().hex[:8]}"
                ensure_topic(settings, topic)
                wall_start = time.perf_counter()
                paced = replay(thirty, settings, topic, speed=1.0)
                wall = time.perf_counter() - wall_start
                span = (thirty.frame["ts_event"].max() - thirty.frame["ts_event"].min()) / 1e9
                figures += [
                    ("[tansu] pacing 1x: data span of the 30 s window", span, "s"),
                    ("[tansu] pacing 1x: replay wall time (incl. final flush)", wall, "s"),
                    ("[tansu] pacing 1x: wall time / data span", wall / span, "ratio"),
                    ("[tansu] pacing 1x: p99 lateness", paced.lateness_p99() * 1000, "ms"),
                    ("[tansu] pacing 1x: max lateness", paced.max_lateness_s * 1000, "ms"),
                    ("[tansu] pacing 1x: rows", paced.rows, "rows"),
                ]
    return figures
