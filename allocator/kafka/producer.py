"""Replay rows into Kafka on the original clock: absolute schedule, idempotent producer, every delivery checked.

Row i is sent at wall_start + (ts_i − ts_0) / speed, computed from the start each time, so sleeping
errors never accumulate (no drift); when the producer falls behind it sends at once and reports how
late it is. The replay is framed by `start` and `end` control messages so a consumer knows when the
stream is complete and can check that every row arrived.

Calibration history (the rows just before the window, `MarketData.history`) goes first and unpaced,
as a real router would load it from a store at start-up; its replay indices come before the window's,
so deduplication and gap checks cover it like any other row. The window is then paced as always.

Rows travel in the wire format chosen (codec, docs/wire.md): JSON, one row per message, or Arrow, up
to `rows_per_message` rows per message. In the paced window an Arrow message holds only rows of one
instant, so it is sent exactly when they are due; unpaced (history, --speed 0) it is simply full. The
default, auto, sends full messages as Arrow and the paced window's as JSON, a row each: Arrow's
per-message metadata makes a message of one instant slower to encode than JSON.
Messages are encoded a chunk ahead on a worker thread (Arrow does that work without the GIL) while
the main thread hands the previous chunk to librdkafka.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from confluent_kafka import KafkaError, KafkaException, Producer

from allocator.config import check_non_negative
from allocator.data.loader import MarketData, history_start
from allocator.data.window import NS_PER_SECOND
from allocator.errors import EXIT_INTERRUPTED_PRODUCER, BrokerError, SettingError, UserError

# Before a replay, callers (order_allocator.py, the benches) check the broker and topic from here too.
from allocator.kafka.codec import (
    DEFAULT_WIRE,
    HEADER_FORMAT,
    HEADER_KIND,
    HEADER_SCHEMA,
    KIND_END,
    KIND_ROW,
    KIND_START,
    SCHEMA_VERSION,
    WIRE_ARROW,
    WIRE_AUTO,
    WIRE_CHOICES,
    WIRE_FORMATS,
    WIRE_JSON,
    arrow_columns,
    control_message,
    encode_arrow_table,
    encode_json_table,
    message_starts,
    previous_sequence,
    rows_per_message,
    string_widths,
)
from allocator.kafka.settings import new_client, producer_settings, redact
from allocator.snapshots.rule import event_order

log = logging.getLogger(__name__)
ENCODE_CHUNK = 20_000  # rows encoded at a time: bounded memory, vectorised work
# Arrow messages encoded at a time: a chunk of one-instant messages (~0.1 ms each) stays short.
ENCODE_MESSAGES = 64
# JSON rows encoded at a time in the paced window: the encoder holds the GIL for the last step of a chunk,
# and 20,000 rows at once stalled the sends due meanwhile by ~0.3 s under load (p99 lateness 181 ms at 1×).
PACED_JSON_CHUNK = 256
POLL_ROWS = 1000  # serve delivery reports after about this many rows
WARM_UP_SECONDS = 2.0  # at most, for the metadata request that brings a new producer's connection up
PROGRESS_SECONDS = 2.0
Clock = Callable[[], float]


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
    history_rows: int = 0  # of `rows`, the unpaced calibration rows sent first
    wire: str = DEFAULT_WIRE
    rows_per_message: int = 1  # the most rows one row message holds (codec.rows_per_message)
    messages: int = 0  # row messages handed to librdkafka (a re-sending session counts its own too)

    def lateness_p99(self) -> float:
        return float(np.percentile(self.lateness_samples, 99)) if self.lateness_samples else 0.0


MAX_PRODUCER_SESSIONS = 5  # fresh idempotent sessions after fatal errors before giving up


class FatalProducerError(Exception):
    """librdkafka declared the idempotent producer unusable (e.g. the broker lost acknowledged data)."""


def replay(
    data: MarketData,
    settings: dict[str, str],
    topic: str,
    *,
    speed: float = 1.0,
    flush_timeout: float = 30.0,
    clock: Clock = time.perf_counter,
    calibration_ns: int = 0,
    wire: str = DEFAULT_WIRE,
) -> ReplayStats:
    """Publish every row of `data` (in event order) with pacing; return what was delivered.

    `speed` is replay speed (1 = real time, 0 = unpaced). The history rows (if `data` has them;
    `calibration_ns` is the span they were loaded with, for the start message) are sent first without
    pacing; the window's pacing starts when they are handed over. `wire` is the row format, "arrow" or
    "json" or "auto" (codec.WIRE_CHOICES).

    If the idempotent producer becomes fatally broken (a broker restart can do that), a new producer
    session re-sends everything not yet acknowledged; the consumer drops the rows it sees twice by
    their replay index, so the result is unchanged.
    """
    check_speed(speed)
    if wire not in WIRE_CHOICES:
        raise SettingError.not_one_of(wire, WIRE_CHOICES, "wire")
    rows = replay_rows(data)
    frame = rows.frame
    symbol = str(frame["symbol"].iloc[rows.order[0]]) if "symbol" in frame.columns and len(frame) else ""
    stats = ReplayStats(run_id=uuid.uuid4().hex, rows=len(frame), history_rows=rows.history_rows, wire=wire)
    stats.rows_per_message = rows_per_message(
        list(frame.columns), wire, string_widths(frame), len(stats.run_id)
    )
    sender = _Sender(settings, topic, symbol.encode() or b"all", stats)
    start_message = control_message(KIND_START, **start_document(data, frame, stats, calibration_ns))
    started = clock()
    try:
        with deferred_interrupts(sender):
            left = _send_all(sender, rows, start_message, speed, started, clock, flush_timeout)
    except KeyboardInterrupt:
        raise interrupted(sender, stats.sent, stats.rows, stats.delivered) from None
    stats.elapsed_s = clock() - started
    _progress(stats, stats.elapsed_s, speed)
    _check_delivered(sender, left, flush_timeout)
    return stats


def check_speed(speed: float) -> None:
    check_non_negative(speed, "speed", "1 = real time, 0 = as fast as possible")


def start_document(
    data: MarketData, frame: pd.DataFrame, stats: ReplayStats, calibration_ns: int
) -> dict[str, Any]:
    """The `start` message: what the consumer needs to rebuild the loader's frame and prove it complete."""
    venue_rows = frame.groupby("publisher_id", observed=True).size()
    return {
        "run_id": stats.run_id,
        "rows": stats.rows,
        "columns": list(frame.columns),
        "source": data.source,
        "window_start_ns": data.window.start_ns,
        "window_end_ns": data.window.end_ns,
        "levels": data.levels,
        "price_format": data.price_format,
        "schema": SCHEMA_VERSION,
        "wire": stats.wire,
        "rows_per_message": stats.rows_per_message,
        "venue_rows": {
            str(int(k)): int(v)
            for k, v in zip(venue_rows.index.to_numpy(), venue_rows.to_numpy(), strict=True)
        },
        # The first `history_rows` of `rows` are calibration history from `history_start_ns` on.
        "history_rows": stats.history_rows,
        "history_start_ns": history_start(data.window, calibration_ns),
    }


def _send_all(
    sender: _Sender,
    rows: ReplayRows,
    start_message: bytes,
    speed: float,
    started: float,
    clock: Clock,
    flush_timeout: float,
) -> int:
    """start, the paced rows, end, flush; a fatally failed session is replaced and everything re-sent.
    Returns how many messages were still unconfirmed after `flush_timeout`."""
    ts = rows.ts
    first_ms, last_ms = int(ts[0] // 1_000_000), int(ts[-1] // 1_000_000)
    pacing = Pacing(sender.stats.history_rows)
    paced_per_message = 1 if sender.stats.wire == WIRE_AUTO else None
    starts = message_starts(
        ts, sender.stats.rows_per_message, pacing.first_paced if speed > 0 else None, paced_per_message
    )
    while True:
        try:
            sender.send(start_message, KIND_START, first_ms, _START)
            _paced_loop(rows, speed, sender, started, clock, 0, pacing, starts)
            end_message = control_message(KIND_END, run_id=sender.stats.run_id, rows=sender.stats.rows)
            sender.send(end_message, KIND_END, last_ms, _END)
            return sender.flush(flush_timeout)
        except FatalProducerError:
            sender.new_session()  # everything again, from the start message (see ProducerSession)


def interrupted(sender: ProducerSession, sent: int, rows: int, delivered: int) -> UserError:
    """Ctrl-C: flush what was handed over (briefly), then say how far the replay got."""
    try:
        left = sender.flush(10)
    except (FatalProducerError, BrokerError):
        left = len(sender.producer)
    return UserError(
        f"interrupted: {sent} of {rows} rows sent, {delivered} delivered"
        + (f", {left} message(s) still unconfirmed" if left else ""),
        exit_code=EXIT_INTERRUPTED_PRODUCER,
    )


def _check_delivered(sender: _Sender, left: int, flush_timeout: float) -> None:
    """Every row and both control messages must be acknowledged; otherwise one line says what is not."""
    stats = sender.stats
    if left:
        raise BrokerError(
            f"{left} message(s) still undelivered after waiting {flush_timeout:g} s "
            f"({stats.delivered} of {stats.rows} rows confirmed); is the broker still up?"
        )
    if stats.failed and sender.topic_vanished:
        raise BrokerError(
            f"the broker no longer has topic {sender.topic!r}: after confirming {stats.delivered} of {stats.rows} "
            f"rows it refused {stats.failed} with 'Unknown topic or partition' (a broker that keeps data in memory "
            "only, such as Tansu, loses its topics when it restarts); run kafka_producer.py again to replay from "
            "the start"
        )
    if stats.failed or sender.framing != {_START, _END}:
        raise BrokerError(
            f"{stats.failed} message(s) failed delivery to {sender.topic!r} "
            f"(first: {stats.first_error or 'control message'}); {stats.delivered} of {stats.rows} rows delivered"
        )


_START, _END = -1, -2  # delivery-report tags of the control messages


def is_fatal(exc: BaseException) -> bool:
    """Whether a librdkafka error (or the exception carrying it) says the producer is unusable."""
    error = exc if isinstance(exc, KafkaError) else (exc.args[0] if exc.args else None)
    return isinstance(error, KafkaError) and (error.fatal() or error.code() == KafkaError._FATAL)


@contextlib.contextmanager
def deferred_interrupts(sender: ProducerSession) -> Iterator[None]:
    """Ctrl-C sets a flag that the sender turns into KeyboardInterrupt between librdkafka calls.

    Why: a KeyboardInterrupt raised inside a delivery callback comes out of confluent-kafka's poll() as a
    SystemError (or a TypeError from produce()), which looks like a fatal producer and made the replay
    start a new session and run to the end instead of stopping. A second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(_signum: int, _frame: object) -> None:
        if sender.interrupted:
            raise KeyboardInterrupt
        sender.interrupted = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sender.interrupted = False  # the caller's clean-up flush may poll again


class ProducerSession:
    """One idempotent producer at a time for `topic`, replaced by a fresh one (a new session) when
    librdkafka declares it fatally failed: the rule the single- and the multi-symbol replay share.

    librdkafka declares the idempotent producer fatal when the broker lost messages it had already
    acknowledged, so acknowledgements cannot be trusted either: after `new_session` the caller sends
    everything again from its first message, and consumers drop what they already have by replay index.
    Subclasses keep the delivery accounting and forget it in `reset_deliveries`.
    """

    def __init__(self, settings: dict[str, str], topic: str) -> None:
        self.config = producer_settings(settings)
        self.settings, self.topic = settings, topic
        self.generation = 0
        self.fatal = False
        self.interrupted = False  # set by Ctrl-C (see deferred_interrupts), acted on between calls
        self.headers: dict[tuple[bytes, str], list[tuple[str, str | bytes | None]]] = {
            (kind, wire): [
                (HEADER_SCHEMA, SCHEMA_VERSION.encode()),
                (HEADER_FORMAT, wire.encode()),
                (HEADER_KIND, kind),
            ]
            for kind in (KIND_START, KIND_ROW, KIND_END)
            for wire in WIRE_FORMATS
        }
        self.producer = self._new_producer()

    def _new_producer(self) -> Producer:
        """A producer whose broker connection is up. librdkafka's idempotent producer asks for its producer
        id on a 500 ms timer unless a connection comes up right away, and holds every message until it
        has one: without the metadata request here the first delivery waits 0.5 or 1 s (docs/brokers.md)."""
        producer = new_client(Producer, self.config | {"error_cb": self._on_error}, self.settings)
        with contextlib.suppress(KafkaException):  # an unreachable broker is reported by the sends
            producer.list_topics(self.topic, timeout=WARM_UP_SECONDS)
        return producer

    def _on_error(self, err: KafkaError) -> None:
        log.warning("kafka: %s", redact(str(err), self.settings))
        if err.fatal():
            self.fatal = True

    def produce(self, **message: Any) -> None:
        """Hand one message to librdkafka, waiting while its local queue is full; FatalProducerError once
        this session is unusable."""
        while True:
            if self.interrupted:
                raise KeyboardInterrupt
            if self.fatal:
                raise FatalProducerError
            try:
                self.producer.produce(self.topic, **message)
                return
            except BufferError:  # local queue full: let deliveries drain, then retry
                self.poll(0.05)
            except KafkaException as exc:
                if is_fatal(exc):
                    self.fatal = True
                    continue
                raise BrokerError(
                    f"producing to {self.topic!r} failed: {redact(str(exc), self.settings)}"
                ) from None

    def flush(self, timeout: float) -> int:
        """Wait for outstanding deliveries; return how many are left after `timeout`.

        A poll loop rather than Producer.flush(): when the idempotent producer turns fatal during
        flush(), confluent-kafka 2.16 raises an error object that no `except` clause can catch
        (observed on noida-db restarts), while poll() lets error_cb mark the session fatal first.
        """
        deadline = time.monotonic() + timeout
        while len(self.producer) and time.monotonic() < deadline:
            self.poll(0.1)
        self.poll(0)
        return len(self.producer)

    def poll(self, timeout: float) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        try:
            self.producer.poll(timeout)
        except SystemError:  # as in flush(): a fatal error surfacing without a Python exception
            raise FatalProducerError from None
        except KafkaException as exc:
            if not (self.fatal or is_fatal(exc)):
                raise
            raise FatalProducerError from None
        if self.interrupted:
            raise KeyboardInterrupt
        if self.fatal:
            raise FatalProducerError

    def sleep(self, seconds: float) -> None:
        """Wait while serving delivery reports; the final stretch is a plain sleep for precision."""
        deadline = time.perf_counter() + seconds
        while (left := deadline - time.perf_counter()) > 0.002:
            self.poll(min(left - 0.001, 0.05))
        if (left := deadline - time.perf_counter()) > 0:
            time.sleep(left)

    def current(self, generation: int) -> bool:
        """Whether a delivery report of session `generation` still counts (an abandoned session's
        failures are expected: its messages are sent again by the next one)."""
        return generation == self.generation and not self.fatal

    def new_session(self) -> None:
        """Replace a fatally failed producer and forget what it reported (see the class docstring)."""
        delivered, rows = self.progress()
        if self.generation + 1 >= MAX_PRODUCER_SESSIONS:
            raise BrokerError(
                f"the producer failed fatally {MAX_PRODUCER_SESSIONS} times ({delivered} of {rows} rows "
                "delivered); check the broker's health"
            )
        self.generation += 1
        with contextlib.suppress(KafkaException):
            self.producer.purge()
        self.fatal = False
        self.producer = self._new_producer()
        # Everything is sent again, so what the abandoned session reported (including the failures
        # librdkafka reports just before it declares the producer fatal) no longer counts.
        self.reset_deliveries()
        log.warning(
            "the producer failed fatally (the broker may have lost data); session %d re-sends every row",
            self.generation,
        )

    def progress(self) -> tuple[int, int]:
        """(rows delivered, rows in all), for messages."""
        raise NotImplementedError

    def reset_deliveries(self) -> None:
        raise NotImplementedError


class _Sender(ProducerSession):
    """One replay's sends, with delivery accounting per row."""

    def __init__(self, settings: dict[str, str], topic: str, key: bytes, stats: ReplayStats):
        self.key, self.stats = key, stats
        self.confirmed = np.zeros(stats.rows, dtype=bool)
        self.framing: set[int] = set()
        self.topic_vanished = False  # a delivery was refused because the broker no longer knows the topic
        super().__init__(settings, topic)

    def _delivered(self, generation: int, index: int, rows: int, err: KafkaError | None, _msg: Any) -> None:
        if err is None:
            if index < 0:
                self.framing.add(index)
            elif rows == 1:
                if not self.confirmed[index]:
                    self.confirmed[index] = True
                    self.stats.delivered += 1
            else:
                confirmed = self.confirmed[index : index + rows]
                self.stats.delivered += rows - int(np.count_nonzero(confirmed))
                confirmed[:] = True
        elif self.current(generation) and not err.fatal():
            self.stats.failed += 1
            self.topic_vanished |= err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
            self.stats.first_error = self.stats.first_error or redact(str(err), self.settings)

    def send(
        self, value: bytes, kind: bytes, timestamp_ms: int, index: int, rows: int = 0, wire: str = WIRE_JSON
    ) -> None:
        """Hand one message to librdkafka; its delivery report confirms rows index..index+rows-1 (a
        control message: `index` is its negative tag and `rows` 0). `wire`: how `value` is encoded."""
        self.produce(
            value=value,
            key=self.key,
            headers=self.headers[kind, wire],
            timestamp=timestamp_ms,
            on_delivery=functools.partial(self._delivered, self.generation, index, rows),
        )

    def progress(self) -> tuple[int, int]:
        return self.stats.delivered, self.stats.rows

    def reset_deliveries(self) -> None:
        self.confirmed[:] = False
        self.stats.delivered = self.stats.failed = 0
        self.stats.first_error = ""
        self.framing.clear()


@dataclass
class Pacing:
    """Rows before `first_paced` (the history) go unpaced; the window's schedule starts at `origin`,
    the clock when its first row is reached, kept across producer sessions like `started` was."""

    first_paced: int = 0
    origin: float | None = None


def _paced_loop(
    rows: ReplayRows,
    speed: float,
    sender: _Sender,
    started: float,
    clock: Clock,
    resume: int = 0,
    pacing: Pacing | None = None,
    starts: np.ndarray | None = None,
) -> None:
    """Hand each message to librdkafka at its scheduled instant (that of its first row), the next chunk
    being encoded meanwhile. `starts` holds each message's first row (default: a row per message)."""
    pacing = pacing if pacing is not None else Pacing()
    starts = starts if starts is not None else np.arange(len(rows.order), dtype=np.int64)
    bounds = np.r_[starts, len(rows.order)].tolist()
    if pacing.origin is None and pacing.first_paced == 0:
        pacing.origin = started  # no history: exactly the schedule of a plain replay
    paced_from = pacing.first_paced if speed > 0 else None
    json_from = first_json_message(sender.stats.wire, starts, paced_from)
    paced_message = len(starts) if paced_from is None else int(np.searchsorted(starts, paced_from))
    chunks = _encoded(
        rows, bounds, sender.stats, int(np.searchsorted(starts, resume)), json_from, paced_message
    )
    with contextlib.closing(chunks):  # on an exception too: stop the worker thread before going on
        _send_messages(chunks, bounds, rows.ts, speed, sender, started, clock, pacing)


def first_json_message(wire: str, starts: np.ndarray, paced_from: int | None) -> int:
    """The first message encoded as JSON (all after it are too): every one for json, none for arrow, the
    paced window's for auto."""
    if wire == WIRE_JSON:
        return 0
    if wire == WIRE_AUTO and paced_from is not None:
        return int(np.searchsorted(starts, paced_from))
    return len(starts)


def _send_messages(
    chunks: Iterator[tuple[int, list[bytes], str]],
    bounds: list[int],
    ts: np.ndarray,
    speed: float,
    sender: _Sender,
    started: float,
    clock: Clock,
    pacing: Pacing,
) -> None:
    """The paced send loop over encoded chunks (see _paced_loop)."""
    stats = sender.stats
    last_progress = started
    first_paced = pacing.first_paced
    paced_ts0 = ts[first_paced] if first_paced < len(ts) else 0
    due = ((ts - paced_ts0) / NS_PER_SECOND / speed).tolist() if speed > 0 else None
    ms = (ts // 1_000_000).tolist()
    polled = 0
    for first_message, values, wire in chunks:
        for k, value in enumerate(values):
            row, end = bounds[first_message + k], bounds[first_message + k + 1]
            if due is not None and row >= first_paced:
                if pacing.origin is None:
                    pacing.origin = clock()
                wait = due[row] - (clock() - pacing.origin)
                if wait > 0:
                    sender.sleep(wait)
                else:
                    stats.max_lateness_s = max(stats.max_lateness_s, -wait)
                    stats.lateness_samples.append(-wait)
            sender.send(value, KIND_ROW, ms[row], row, end - row, wire)
            stats.sent = max(stats.sent, end)
            stats.messages += 1
            if end - polled >= POLL_ROWS:
                polled = end
                sender.poll(0)
                now = clock()
                if now - last_progress >= PROGRESS_SECONDS:
                    last_progress = now
                    _progress(stats, now - started, speed)


def _encoded(
    rows: ReplayRows,
    bounds: list[int],
    stats: ReplayStats,
    first: int,
    json_from: int,
    paced_message: int | None = None,
) -> Generator[tuple[int, list[bytes], str], None, None]:
    """(index of its first message, encoded values, their format) per chunk of messages from message
    `first` on, messages from `json_from` on as JSON and those before as Arrow; the next chunk is taken in
    sending order and encoded on a worker thread while the caller sends this one. From `paced_message`
    on (the paced window) JSON chunks are short, so the encoder never delays a due send for long."""
    paced_message = len(bounds) - 1 if paced_message is None else paced_message
    prev_seq = rows.previous_sequence()
    chunks: list[tuple[int, int]] = []
    lo = first
    while lo < len(bounds) - 1:
        paced_json = PACED_JSON_CHUNK if lo >= paced_message else ENCODE_CHUNK
        per_chunk = ENCODE_MESSAGES if lo < json_from else paced_json
        # The first chunk is one message, so that sending starts at once; no chunk spans both formats, and
        # none spans the unpaced history and the paced window.
        limit = len(bounds) - 1 if lo >= json_from else min(json_from, len(bounds) - 1)
        if lo < paced_message:
            limit = min(limit, paced_message)
        hi = min(lo + (per_chunk if chunks else 1), limit)
        while hi > lo + 1 and bounds[hi] - bounds[lo] > ENCODE_CHUNK:  # bounded rows per chunk too
            hi = lo + max(1, (hi - lo) // 2)
        chunks.append((lo, hi))
        lo = hi

    def encode(lo: int, hi: int) -> list[bytes]:
        prev = prev_seq[bounds[lo] : bounds[hi]]
        columns = rows.take_arrow(bounds[lo], bounds[hi])
        if lo >= json_from:
            return encode_json_table(columns, bounds[lo], prev, stats.run_id)
        offsets = [b - bounds[lo] for b in bounds[lo : hi + 1]]
        return encode_arrow_table(columns, offsets, bounds[lo], prev, stats.run_id)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode") as pool:
        ahead: Future[list[bytes]] | None = pool.submit(encode, *chunks[0]) if chunks else None
        for index, (lo, _hi) in enumerate(chunks):
            assert ahead is not None
            values = ahead.result()
            ahead = pool.submit(encode, *chunks[index + 1]) if index + 1 < len(chunks) else None
            yield lo, values, WIRE_JSON if lo >= json_from else WIRE_ARROW


def _progress(stats: ReplayStats, elapsed: float, speed: float) -> None:
    rate = stats.sent / elapsed if elapsed > 0 else 0.0
    pacing = f", max lateness {stats.max_lateness_s * 1000:.1f} ms" if speed > 0 else ""
    log.info(
        "sent %d/%d rows (%.0f msg/s, %d confirmed%s)", stats.sent, stats.rows, rate, stats.delivered, pacing
    )


@dataclass
class ReplayRows:
    """A replay's rows and the order they are sent in. The frame is not reordered up front (a copy of
    every column): each chunk is taken in order where it is encoded, on the worker thread."""

    frame: pd.DataFrame  # history (if any) then window rows, each in file order
    order: np.ndarray  # frame.iloc[order] is the sending order
    history_rows: int  # the first `history_rows` sent are calibration history

    def __post_init__(self) -> None:
        self.ts = self.frame["ts_event"].to_numpy(dtype=np.int64)[self.order]
        self._columns: pa.Table | None = None

    def take_arrow(self, start: int, end: int) -> pa.Table:
        """Rows start..end-1 of the sending order as Arrow columns of the wire types: the frame is
        converted once (mostly without a copy) and each chunk taken by Arrow, which is cheaper than a
        pandas take and needs no GIL."""
        if self._columns is None:
            self._columns = arrow_columns(self.frame)
        return self._columns.take(self.order[start:end])

    def previous_sequence(self) -> np.ndarray:
        """codec.previous_sequence of the rows in sending order (from the two columns it reads)."""
        needed = [c for c in ("publisher_id", "sequence") if c in self.frame.columns]
        return previous_sequence(self.frame[needed].iloc[self.order])


def replay_rows(data: MarketData) -> ReplayRows:
    """The rows sent and their order (see replay_frame)."""
    window = event_order(data.frame["ts_event"].to_numpy(dtype=np.int64))
    if data.history is None or not data.history_rows:
        return ReplayRows(data.frame, window, 0)
    history = data.history
    order = np.r_[event_order(history["ts_event"].to_numpy(dtype=np.int64)), len(history) + window]
    return ReplayRows(pd.concat([history, data.frame], ignore_index=True), order, len(history))


def replay_frame(data: MarketData) -> tuple[pd.DataFrame, int]:
    """The rows in the order they are sent, and how many of them (first) are calibration history.

    Without history this is `event_frame(data.frame)` itself, so such a replay is unchanged. History
    and window are ordered separately: every history row precedes the window however the file is ordered.
    """
    rows = replay_rows(data)
    return rows.frame.iloc[rows.order].reset_index(drop=True), rows.history_rows


def event_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows in the order they are streamed (stable by ts_event): what the consumer will rebuild."""
    return frame.iloc[event_order(frame["ts_event"].to_numpy(dtype=np.int64))].reset_index(drop=True)
