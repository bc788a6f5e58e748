"""Replay rows into Kafka on the original clock: absolute schedule, idempotent producer, every delivery checked.

Row i is sent at wall_start + (ts_i − ts_0) / speed, computed from the start each time, so sleeping
errors never accumulate (no drift); when the producer falls behind it sends at once and reports how
late it is. The replay is framed by `start` and `end` control messages so a consumer knows when the
stream is complete and can check that every row arrived.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from allocator.data import MarketData
from allocator.errors import EXIT_INTERRUPTED_PRODUCER, BrokerError, UserError
from allocator.snapshots import event_order
from allocator.stream import (
    HEADER_KIND,
    HEADER_SCHEMA,
    KIND_END,
    KIND_ROW,
    KIND_START,
    SCHEMA_VERSION,
    control_message,
    encode_rows,
    previous_sequence,
    redact,
)
from allocator.window import NS_PER_SECOND

log = logging.getLogger(__name__)
ENCODE_CHUNK = 20_000  # rows encoded at a time: bounded memory, vectorised work
PROGRESS_SECONDS = 2.0
TOPIC_CONFIG = {"retention.ms": "-1"}  # historical timestamps must not be expired by retention


@dataclass
class ReplayStats:
    """What the replay did, for the progress line, the final summary and the tests."""

    run_id: str
    rows: int
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    first_error: str = ""
    max_lateness_s: float = 0.0
    lateness_samples: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    def lateness_p99(self) -> float:
        return float(np.percentile(self.lateness_samples, 99)) if self.lateness_samples else 0.0


def check_reachable(settings: dict[str, str], timeout: float) -> None:
    """Fail fast with one line when no broker answers (librdkafka would otherwise retry forever)."""
    admin = AdminClient(
        settings
        | {
            "socket.connection.setup.timeout.ms": str(int(timeout * 1000)),
            "logger": logging.getLogger("librdkafka"),
        }
    )
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=max(0.5, min(2.0, deadline - time.monotonic())))
            return
        except KafkaException as exc:
            last = redact(str(exc.args[0] if exc.args else exc), settings)
            time.sleep(0.2)
    raise BrokerError(
        f"cannot reach Kafka at {settings['bootstrap.servers']} within {timeout:g} s ({last or 'no answer'}); "
        "start one with `make broker` or `docker compose up -d`, or pass --bootstrap-servers"
    )


def ensure_topic(settings: dict[str, str], topic: str, partitions: int = 1, timeout: float = 10.0) -> bool:
    """Create the topic with unlimited retention if it is missing; True when it was created."""
    admin = AdminClient(settings)
    metadata = admin.list_topics(timeout=timeout)
    if topic in metadata.topics and metadata.topics[topic].error is None:
        return False
    future = admin.create_topics([NewTopic(topic, num_partitions=partitions, config=TOPIC_CONFIG)])[topic]
    try:
        future.result(timeout=timeout)
    except KafkaException as exc:
        error = exc.args[0]
        if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return False
        raise BrokerError(f"cannot create topic {topic!r}: {redact(str(error), settings)}") from None
    return True


def producer_settings(settings: dict[str, str]) -> dict[str, Any]:
    """Idempotent, ordered delivery with batching; user -X settings win."""
    return {
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 500_000,
        "message.timeout.ms": 60_000,
        "logger": logging.getLogger("librdkafka"),
    } | settings


def replay(
    data: MarketData,
    settings: dict[str, str],
    topic: str,
    *,
    speed: float = 1.0,
    flush_timeout: float = 30.0,
    clock=time.perf_counter,
) -> ReplayStats:
    """Publish every row of `data` (in event order) with pacing; return what was delivered."""
    frame = event_frame(data.frame)
    ts = frame["ts_event"].to_numpy(dtype=np.int64)
    symbol = str(frame["symbol"].iloc[0]) if "symbol" in frame.columns and len(frame) else ""
    stats = ReplayStats(run_id=uuid.uuid4().hex, rows=len(frame))
    sender = _Sender(
        Producer(producer_settings(settings) | {"error_cb": _log_error(settings)}),
        topic,
        symbol.encode() or b"all",
        settings,
        stats,
    )
    start_doc = {
        "run_id": stats.run_id,
        "rows": stats.rows,
        "columns": list(frame.columns),
        "source": data.source,
        "window_start_ns": data.window.start_ns,
        "window_end_ns": data.window.end_ns,
        "levels": data.levels,
        "price_format": data.price_format,
        "schema": SCHEMA_VERSION,
        "venue_rows": {
            str(int(k)): int(v) for k, v in frame.groupby("publisher_id", observed=True).size().items()
        },
    }
    sender.send(control_message(KIND_START, **start_doc), KIND_START, int(ts[0] // 1_000_000))
    started = clock()
    try:
        _paced_loop(frame, ts, speed, sender, started, clock)
    except KeyboardInterrupt:
        left = sender.producer.flush(10)
        raise UserError(
            f"interrupted: {stats.sent} of {stats.rows} rows sent, {stats.delivered} delivered"
            + (f", {left} message(s) still unconfirmed" if left else ""),
            exit_code=EXIT_INTERRUPTED_PRODUCER,
        ) from None
    sender.send(
        control_message(KIND_END, run_id=stats.run_id, rows=stats.sent), KIND_END, int(ts[-1] // 1_000_000)
    )
    left = sender.producer.flush(flush_timeout)
    stats.elapsed_s = clock() - started
    _progress(stats, stats.elapsed_s, speed)
    if left:
        raise BrokerError(
            f"{left} message(s) still undelivered after waiting {flush_timeout:g} s "
            f"({stats.delivered} of {stats.rows} rows confirmed); is the broker still up?"
        )
    if stats.failed or not sender.framing_delivered == 2:
        raise BrokerError(
            f"{stats.failed} message(s) failed delivery to {topic!r} (first: {stats.first_error or 'control message'});"
            f" {stats.delivered} of {stats.rows} rows delivered"
        )
    return stats


class _Sender:
    """produce() with delivery accounting; retries locally when librdkafka's queue is full."""

    def __init__(
        self, producer: Producer, topic: str, key: bytes, settings: dict[str, str], stats: ReplayStats
    ):
        self.producer, self.topic, self.key, self.settings, self.stats = producer, topic, key, settings, stats
        self.framing_delivered = 0

    def _failed(self, err: KafkaError) -> None:
        self.stats.failed += 1
        self.stats.first_error = self.stats.first_error or redact(str(err), self.settings)

    def _row_delivered(self, err: KafkaError | None, _msg: Any) -> None:
        if err is None:
            self.stats.delivered += 1
        else:
            self._failed(err)

    def _control_delivered(self, err: KafkaError | None, _msg: Any) -> None:
        if err is None:
            self.framing_delivered += 1
        else:
            self._failed(err)

    def send(self, value: bytes, kind: bytes, timestamp_ms: int) -> None:
        headers = [(HEADER_SCHEMA, SCHEMA_VERSION.encode()), (HEADER_KIND, kind)]
        while True:
            try:
                self.producer.produce(
                    self.topic,
                    value=value,
                    key=self.key,
                    headers=headers,
                    timestamp=timestamp_ms,
                    on_delivery=self._row_delivered if kind == KIND_ROW else self._control_delivered,
                )
                return
            except BufferError:  # local queue full: let deliveries drain, then retry
                self.producer.poll(0.05)


def _paced_loop(
    frame: pd.DataFrame, ts: np.ndarray, speed: float, sender: _Sender, started: float, clock
) -> None:
    """Encode a chunk column-wise, then hand each row to librdkafka at its scheduled instant."""
    stats = sender.stats
    prev_seq = previous_sequence(frame)
    last_progress = started
    for chunk_start in range(0, len(frame), ENCODE_CHUNK):
        values = encode_rows(
            frame.iloc[chunk_start : chunk_start + ENCODE_CHUNK],
            first_index=chunk_start,
            prev_sequence=prev_seq[chunk_start : chunk_start + ENCODE_CHUNK],
        )
        chunk_ts = ts[chunk_start : chunk_start + ENCODE_CHUNK]
        due = (chunk_ts - ts[0]) / NS_PER_SECOND / speed if speed > 0 else None
        ms = chunk_ts // 1_000_000
        for i, value in enumerate(values):
            if due is not None:
                wait = due[i] - (clock() - started)
                if wait > 0:
                    _sleep_polling(sender.producer, wait)
                else:
                    stats.max_lateness_s = max(stats.max_lateness_s, -wait)
                    stats.lateness_samples.append(-wait)
            sender.send(value, KIND_ROW, int(ms[i]))
            stats.sent += 1
            if stats.sent % 1000 == 0:
                sender.producer.poll(0)
                now = clock()
                if now - last_progress >= PROGRESS_SECONDS:
                    last_progress = now
                    _progress(stats, now - started, speed)


def _sleep_polling(producer: Producer, seconds: float) -> None:
    """Wait while serving delivery reports; the final stretch is a plain sleep for precision."""
    deadline = time.perf_counter() + seconds
    while (left := deadline - time.perf_counter()) > 0.002:
        producer.poll(min(left - 0.001, 0.05))
    if (left := deadline - time.perf_counter()) > 0:
        time.sleep(left)


def _progress(stats: ReplayStats, elapsed: float, speed: float) -> None:
    rate = stats.sent / elapsed if elapsed > 0 else 0.0
    pacing = f", max lateness {stats.max_lateness_s * 1000:.1f} ms" if speed > 0 else ""
    log.info(
        "sent %d/%d rows (%.0f msg/s, %d confirmed%s)", stats.sent, stats.rows, rate, stats.delivered, pacing
    )


def _log_error(settings: dict[str, str]):
    def on_error(err: KafkaError) -> None:
        log.warning("kafka: %s", redact(str(err), settings))

    return on_error


def speed_value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(
            f"--speed {text!r} is not a number (1 = real time, 10 = ten times faster, 0 = no pacing)"
        ) from None
    if value < 0 or value != value:
        raise UserError(f"--speed {text}: must be ≥ 0 (0 = as fast as possible)")
    return value


def event_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows in the order they are streamed (stable by ts_event): what the consumer will rebuild."""
    return frame.iloc[event_order(frame["ts_event"].to_numpy(dtype=np.int64))].reset_index(drop=True)
