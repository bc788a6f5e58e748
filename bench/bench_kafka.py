"""Kafka: our producer and consumer against bare confluent-kafka loops over the very same messages, per
broker (embedded Tansu, noida-db, each on a free port) and wire format; pacing accuracy at 1×.

What the ratios mean (goals: producer ≥ 0.9, ingest ≥ 0.8):

* producer / bare = bare seconds ÷ our seconds. Ours is the whole `replay(..., speed=0)` call on the
  loaded day (116k rows × 10 levels): event order, encoding, scheduling, delivery accounting, flush.
  The bare loop produces exactly the messages our producer wrote (values, keys, headers and timestamps
  read back from the topic) with the same client settings (idempotent, acks=all, linger), no delivery
  callbacks, then flushes. Both start with a metadata request: without one, librdkafka holds the first
  delivery for 0.5-1 s waiting for the idempotent producer's id (docs/brokers.md). The same messages
  and rows go out on both sides, so the ratio is that of msg/s and of rows/s alike.
* ingest / bare = bare seconds ÷ our seconds, each from the first message's arrival to the end of
  processing the last (group join excluded). Ours is `consume_replay(levels=1)`: headers, reading
  and validating the top-of-book columns, run ids, dedupe and the gap bookkeeping per poll (the rows
  stay in Arrow). The one conversion of all rows into the pipeline's frame comes after the last poll;
  the line "incl. the final frame" adds it. The bare loop assigns the same topic with the same
  consumer settings and calls consume() as ours does (one message first, then the same batch size and
  timeout, never more messages than are still to come, so neither waits out the timeout at the end)
  until it holds every message, touching nothing else. noida-db answers a fetch with the whole log at
  once, so there the span from the first message covers only the copying out of librdkafka (about
  2 GB/s): the lines "from the assignment" time both loops from the moment they own the partition,
  the fetch included.

An Arrow message holds up to `rows_per_message` rows, a JSON message one: compare rows/s across formats,
msg/s only within one. The machine is shared with other work, so each round times every side twice
around the other (A-B-A, the mean of the two), every phase waits for the broker to be idle, and every
figure is the median of BENCH_KAFKA_REPEATS rounds (default 5), with the range of the ratios in its
label.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from allocator.broker.embedded import EmbeddedBroker
from allocator.data.loader import MarketData, load
from allocator.data.window import WindowSpec
from allocator.kafka.admin import admin_client, ensure_topic
from allocator.kafka.codec import WIRE_CHOICES, WIRE_FORMATS, rows_per_message, string_widths
from allocator.kafka.consumer import BATCH, POLL_SECONDS, consume_replay
from allocator.kafka.producer import POLL_ROWS, ReplayStats, replay
from allocator.kafka.settings import consumer_settings, producer_settings

DATASET = Path(__file__).resolve().parents[1] / "data" / "l1_day.csv.gz"
REPEATS = int(os.environ.get("BENCH_KAFKA_REPEATS", "5"))
Figure = tuple[str, float, str]


def bare_consume(
    settings: dict[str, str], topic: str, messages: int, batch: int
) -> tuple[list[Message], float, float]:
    """The simplest batch consume loop over `topic` until it holds `messages`: (them, seconds from the
    first message's arrival to the last's, seconds from the assignment to the last message)."""
    consumer = Consumer(consumer_settings(uuid.uuid4().hex, settings))
    assigned = time.perf_counter()
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    held: list[Message] = []
    started = None
    deadline = time.monotonic() + 120
    while len(held) < messages and time.monotonic() < deadline:
        asked = min(batch, messages - len(held)) if held else 1  # as ours: the start message first
        events = consumer.consume(num_messages=asked, timeout=POLL_SECONDS)
        data = [m for m in events if m.error() is None]
        if data and started is None:
            started = time.perf_counter()
        held += data
    ended = time.perf_counter()
    consumer.close()
    if len(held) < messages:
        raise RuntimeError(f"the bare consumer got {len(held)} of {messages} messages")
    return held, ended - (started or ended), ended - assigned


def bare_produce(settings: dict[str, str], topic: str, messages: list[Message]) -> float:
    """The simplest produce loop sending exactly `messages` (value, key, headers, timestamp): seconds."""
    copies = [(m.value(), m.key(), m.headers(), m.timestamp()[1]) for m in messages]
    started = time.perf_counter()
    producer = Producer(producer_settings(settings))
    producer.list_topics(topic, timeout=5)  # as ours does: the idempotent producer's id comes at once
    for i, (value, key, headers, timestamp) in enumerate(copies):
        while True:
            try:
                producer.produce(topic, value=value, key=key, headers=headers, timestamp=timestamp)
                break
            except BufferError:
                producer.poll(0.05)
        if i % POLL_ROWS == 0:
            producer.poll(0)
    if producer.flush(120):
        raise RuntimeError("the bare producer could not deliver everything")
    return time.perf_counter() - started


def new_topic(settings: dict[str, str], prefix: str) -> str:
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    ensure_topic(settings, topic)
    return topic


def drop_topics(settings: dict[str, str], topics: list[str]) -> None:
    """Delete a round's topics: noida-db keeps everything in memory and rewrites all of it in every
    snapshot, so a broker holding the earlier rounds would make each round slower (and take GBs)."""
    admin = admin_client(settings)
    for future in admin.delete_topics(topics, operation_timeout=30).values():
        future.result(60)


def settle(broker: EmbeddedBroker, timeout: float = 30.0) -> None:
    """Wait until the broker process is idle (under 5 % of a core for 0.5 s). noida-db spends about a
    core for seconds after every burst of writes on its JSON snapshot (docs/brokers.md): a phase timed
    meanwhile would measure that, not the loop."""
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu_seconds() -> float:
        fields = Path(f"/proc/{broker.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    deadline = time.monotonic() + timeout
    before = cpu_seconds()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds()
        if now - before < 0.025:
            return
        before = now


def one_round(broker: EmbeddedBroker, data: MarketData, wire: str) -> dict[str, float]:
    """Each side timed twice around the other (A-B-A), every phase on an idle broker: our producer, the
    bare consumer reading what it wrote, the bare producer re-sending exactly that, our producer again;
    then our consumer and the bare consumer again, on the first topic."""
    settings = {"bootstrap.servers": broker.bootstrap}
    batch = max(1, BATCH // rows_per_message(list(data.frame.columns), wire, string_widths(data.frame)))

    def ours_produce() -> tuple[str, ReplayStats, float]:
        topic = new_topic(settings, f"bench-{wire}")
        settle(broker)
        started = time.perf_counter()
        stats = replay(data, settings, topic, speed=0, wire=wire)
        return topic, stats, time.perf_counter() - started

    topic, stats, ours_produce_1 = ours_produce()
    topics = [topic]
    settle(broker)
    held, bare_consume_1, bare_fetch_1 = bare_consume(settings, topic, stats.messages + 2, batch)
    bare_topic = new_topic(settings, f"bare-{wire}")
    topics.append(bare_topic)
    settle(broker)
    bare_produce_s = bare_produce(settings, bare_topic, held)
    del held
    second_topic, _, ours_produce_2 = ours_produce()
    topics.append(second_topic)
    settle(broker)
    result = consume_replay(settings, topic, group=uuid.uuid4().hex, idle_timeout=30, levels=1)
    if result.stats.rows_received != stats.rows or not result.stats.complete:
        raise RuntimeError(f"our consumer read {result.stats.rows_received} of {stats.rows} rows")
    settle(broker)
    _, bare_consume_2, bare_fetch_2 = bare_consume(settings, topic, stats.messages + 2, batch)
    drop_topics(settings, topics)
    return {
        "messages": stats.messages + 2,
        "rows": stats.rows,
        "ours_produce": (ours_produce_1 + ours_produce_2) / 2,
        "bare_produce": bare_produce_s,
        "bare_consume": (bare_consume_1 + bare_consume_2) / 2,
        "ours_consume": result.stats.ingest_seconds,
        "ours_consume_frame": result.stats.ingest_seconds + result.stats.assembly_seconds,
        "bare_fetch": (bare_fetch_1 + bare_fetch_2) / 2,
        "ours_fetch": (result.stats.last_message_at or 0.0) - (result.stats.assigned_at or 0.0),
    }


def summarise(tag: str, rounds: list[dict[str, float]]) -> list[Figure]:
    """Median rates of both sides, and the median and range of the per-round ratios."""
    messages, rows = rounds[0]["messages"], rounds[0]["rows"]

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    def ratio(bare: str, ours: str, goal: float | None, what: str) -> Figure:
        ratios = sorted(r[bare] / r[ours] for r in rounds)
        spread = f"{ratios[0]:.2f}-{ratios[-1]:.2f}" + (f"; goal >= {goal}" if goal else "")
        return (
            f"{tag} {what} / bare, median of {len(rounds)} ({spread})",
            statistics.median(ratios),
            "ratio",
        )

    figures: list[Figure] = [
        (f"{tag} messages ({rows:.0f} rows, {rows / (messages - 2):.1f} rows/message)", messages, "msgs")
    ]
    for key, label in (
        ("bare_produce", "bare produce loop"),
        ("ours_produce", "our producer (replay, speed 0)"),
    ):
        figures += [
            (f"{tag} {label}", messages / median(key), "msg/s"),
            (f"{tag} {label}", rows / median(key), "rows/s"),
        ]
    figures.append(ratio("bare_produce", "ours_produce", 0.9, "producer"))
    for key, label in (
        ("bare_consume", "bare consume loop"),
        ("ours_consume", "our ingest (levels=1)"),
    ):
        figures += [
            (f"{tag} {label}", messages / median(key), "msg/s"),
            (f"{tag} {label}", rows / median(key), "rows/s"),
        ]
    figures.append(ratio("bare_consume", "ours_consume", 0.8, "ingest"))
    label = "our ingest incl. the final frame"
    figures += [(f"{tag} {label}", messages / median("ours_consume_frame"), "msg/s")]
    figures += [(f"{tag} {label}", rows / median("ours_consume_frame"), "rows/s")]
    figures.append(ratio("bare_consume", "ours_consume_frame", None, "ingest incl. the final frame"))
    figures += [
        (
            f"{tag} bare consume loop from the assignment (fetch included)",
            rows / median("bare_fetch"),
            "rows/s",
        ),
        (f"{tag} our ingest from the assignment (fetch included)", rows / median("ours_fetch"), "rows/s"),
        ratio("bare_fetch", "ours_fetch", None, "ingest from the assignment"),
    ]
    return figures


def pacing(settings: dict[str, str], data: MarketData, wire: str) -> list[Figure]:
    """A 30 s window at 1×: wall time against the data's span, and how late messages went out."""
    topic = new_topic(settings, f"pace-{wire}")
    started = time.perf_counter()
    paced = replay(data, settings, topic, speed=1.0, wire=wire)
    wall = time.perf_counter() - started
    drop_topics(settings, [topic])
    span = (data.frame["ts_event"].max() - data.frame["ts_event"].min()) / 1e9
    tag = f"[tansu/{wire}] pacing 1x:"
    return [
        (f"{tag} data span of the 30 s window", span, "s"),
        (f"{tag} replay wall time (incl. final flush)", wall, "s"),
        (f"{tag} wall time / data span", wall / span, "ratio"),
        (f"{tag} p99 lateness", paced.lateness_p99() * 1000, "ms"),
        (f"{tag} max lateness", paced.max_lateness_s * 1000, "ms"),
        (f"{tag} rows in {paced.messages} messages", paced.rows, "rows"),
    ]


def run() -> list[Figure]:
    figures: list[Figure] = []
    full = load(DATASET)
    thirty = load(DATASET, WindowSpec("13:40:00", "13:40:29"))
    for kind in ("tansu", "noida"):
        with EmbeddedBroker(kind=kind) as broker:
            settings: dict[str, Any] = {"bootstrap.servers": broker.bootstrap}
            for wire in WIRE_FORMATS:
                rounds = [one_round(broker, full, wire) for _ in range(REPEATS)]
                figures += summarise(f"[{kind}/{wire}]", rounds)
            if kind == "tansu":
                for wire in WIRE_CHOICES:
                    figures += pacing(settings, thirty, wire)
    return figures
