"""Replay several symbols into one partitioned topic at once: one replay per symbol, one clock for all.

Each symbol is a replay of its own (start, rows, end, docs/wire.md), keyed by the symbol, and all of a
symbol's messages go to one partition, so they stay in order there and a consumer group can split the
symbols between its members by partition. Which partition: the symbol's place in the sorted list of
the replayed symbols, modulo the partition count. That spreads a few symbols evenly (a key hash put
AAPL, MSFT and NVDA into only two of three partitions with every librdkafka partitioner) and is the
same on every replay of the same file. The symbols' messages are interleaved by ts_event and paced
on one schedule (`speed` as for one replay): what a feed handler carrying several symbols would see.
A symbol's end message follows its last row at once, so its consumer can route it while others still run.

The messages are those of `allocator.kafka.producer.replay` for the same rows (the same start document,
row encoding, message boundaries and timestamps); what differs is that one idempotent producer carries
every symbol. A fatally failed producer is replaced by the rule a single replay follows
(`producer.ProducerSession`): a new session sends every symbol's replay again from its start message, and
consumers drop the rows they already have by replay index. Encoding is lazy, a chunk of messages per
symbol at a time, so memory stays bounded.
"""

from __future__ import annotations

import functools
import heapq
import logging
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from confluent_kafka import KafkaError

from allocator.data.loader import MarketData
from allocator.data.window import NS_PER_SECOND
from allocator.errors import BrokerError, SettingError
from allocator.kafka.codec import (
    KIND_END,
    KIND_ROW,
    KIND_START,
    WIRE_ARROW,
    WIRE_AUTO,
    WIRE_CHOICES,
    WIRE_JSON,
    control_message,
    encode_arrow_table,
    encode_json_table,
    message_starts,
    rows_per_message,
    string_widths,
)
from allocator.kafka.producer import (
    ENCODE_MESSAGES,
    FatalProducerError,
    Pacing,
    ProducerSession,
    ReplayRows,
    ReplayStats,
    check_speed,
    deferred_interrupts,
    first_json_message,
    interrupted,
    replay_rows,
    start_document,
)
from allocator.kafka.settings import redact

log = logging.getLogger(__name__)
POLL_MESSAGES = 1000
# Encoded at a time per symbol, a chunk ahead on a worker thread: JSON messages, and rows (Arrow), so
# that memory stays bounded with many symbols (about 2 chunks of ≤ 3 MB each per symbol).
JSON_MESSAGES = 1000
CHUNK_ROWS = 4096
PROGRESS_SECONDS = 2.0


@dataclass
class SymbolReplay:
    """One symbol's replay: its rows in sending order, message boundaries and delivery accounting."""

    symbol: str
    rows: ReplayRows
    stats: ReplayStats
    start_message: bytes
    bounds: list[int]  # message k holds rows bounds[k]:bounds[k+1] of the sending order
    json_from: int  # messages from this one on are JSON, those before Arrow
    first_paced: int  # rows before it are calibration history, sent unpaced
    partition: int = 0  # the partition all its messages go to
    framing: set[bytes] = field(default_factory=set)  # control messages confirmed
    pool: ThreadPoolExecutor | None = None  # encodes the next chunk while this one is sent
    _chunk: tuple[int, list[bytes]] = (0, [])
    _ahead: tuple[int, Future[list[bytes]]] | None = None
    _prev_seq: np.ndarray | None = None

    @property
    def key(self) -> bytes:
        return self.symbol.encode()

    @property
    def messages(self) -> int:
        return len(self.bounds) - 1

    def message(self, k: int) -> tuple[bytes, str]:
        """Message k's value and format. Messages are taken in order: the chunk holding k was encoded
        ahead on the worker thread (Arrow does that without the GIL), and the next one is started."""
        first, values = self._chunk
        if not first <= k < first + len(values):
            if self._ahead is not None and self._ahead[0] == k:
                values = self._ahead[1].result()
            else:
                if self._prev_seq is None:
                    self._prev_seq = self.rows.previous_sequence()
                values = self._encode(k)
            self._chunk, self._ahead = (k, values), None
            first = k
            following = k + len(values)
            if self.pool is not None and following < self.messages:
                self._ahead = (following, self.pool.submit(self._encode, following))
        return values[k - first], WIRE_JSON if k >= self.json_from else WIRE_ARROW

    def _encode(self, lo: int) -> list[bytes]:
        assert self._prev_seq is not None
        json = lo >= self.json_from
        limit = self.messages if json else min(self.json_from, self.messages)
        hi = min(lo + (JSON_MESSAGES if json else ENCODE_MESSAGES), limit)
        while hi > lo + 1 and self.bounds[hi] - self.bounds[lo] > CHUNK_ROWS:
            hi = lo + max(1, (hi - lo) // 2)
        b = self.bounds
        columns = self.rows.take_arrow(b[lo], b[hi])
        prev = self._prev_seq[b[lo] : b[hi]]
        if json:
            return encode_json_table(columns, b[lo], prev, self.stats.run_id)
        return encode_arrow_table(
            columns, [x - b[lo] for x in b[lo : hi + 1]], b[lo], prev, self.stats.run_id
        )


@dataclass
class MultiReplayStats:
    """What a multi-symbol replay did, for its JSON summary."""

    replays: list[SymbolReplay]
    elapsed_s: float = 0.0
    failed: int = 0
    first_error: str = ""
    max_lateness_s: float = 0.0
    lateness: list[float] = field(default_factory=list)

    def summary(self, topic: str, partitions: int, speed: float) -> dict[str, Any]:
        rows = sum(r.stats.rows for r in self.replays)
        sent = sum(r.stats.sent for r in self.replays)
        return {
            "topic": topic,
            "partitions": partitions,
            "speed": speed,
            "symbols": [
                {
                    "symbol": r.symbol,
                    "run_id": r.stats.run_id,
                    "partition": r.partition,
                    "rows": r.stats.rows,
                    "history_rows": r.stats.history_rows,
                    "rows_delivered": r.stats.delivered,
                    "wire": r.stats.wire,
                    "messages_sent": r.stats.messages,
                }
                for r in self.replays
            ],
            "rows": rows,
            "rows_sent": sent,
            "rows_delivered": sum(r.stats.delivered for r in self.replays),
            "elapsed_seconds": round(self.elapsed_s, 3),
            "rate_rows_per_second": round(sent / self.elapsed_s, 1) if self.elapsed_s else None,
            "max_lateness_ms": round(self.max_lateness_s * 1000, 3),
            "p99_lateness_ms": round(float(np.percentile(self.lateness, 99)) * 1000, 3)
            if self.lateness
            else 0.0,
        }


def symbol_replay(
    data: MarketData, symbol: str, wire: str, speed: float, calibration_ns: int
) -> SymbolReplay:
    """The replay of one symbol's data, framed exactly as `producer.replay` frames a replay."""
    rows = replay_rows(data)
    frame = rows.frame
    stats = ReplayStats(run_id=uuid.uuid4().hex, rows=len(frame), history_rows=rows.history_rows, wire=wire)
    stats.rows_per_message = rows_per_message(
        list(frame.columns), wire, string_widths(frame), len(stats.run_id)
    )
    first_paced = rows.history_rows
    paced_per_message = 1 if wire == WIRE_AUTO else None
    starts = message_starts(
        rows.ts, stats.rows_per_message, first_paced if speed > 0 else None, paced_per_message
    )
    return SymbolReplay(
        symbol=symbol,
        rows=rows,
        stats=stats,
        start_message=control_message(KIND_START, **start_document(data, frame, stats, calibration_ns)),
        bounds=np.r_[starts, len(frame)].tolist(),
        json_from=first_json_message(wire, starts, first_paced if speed > 0 else None),
        first_paced=first_paced,
    )


def replay_symbols(
    datasets: dict[str, MarketData],
    settings: dict[str, str],
    topic: str,
    *,
    partitions: int = 1,
    speed: float = 1.0,
    flush_timeout: float = 30.0,
    calibration_ns: int = 0,
    wire: str = WIRE_AUTO,
) -> MultiReplayStats:
    """Replay every symbol's data (symbol → its MarketData) into `topic`, interleaved on one clock.

    As in `producer.replay`, a fatally failed idempotent producer is replaced and a new session sends
    everything again (the window's clock keeps running: what is already due goes at once)."""
    check_speed(speed)
    if wire not in WIRE_CHOICES:
        raise SettingError.not_one_of(wire, WIRE_CHOICES, "wire")
    replays = [
        symbol_replay(datasets[symbol], symbol, wire, speed, calibration_ns) for symbol in sorted(datasets)
    ]
    for index, replay in enumerate(replays):
        replay.partition = index % partitions
    result = MultiReplayStats(replays)
    sender = _MultiSender(settings, topic, result)
    started = time.perf_counter()
    pacing = Pacing()  # the window's clock, kept across producer sessions
    try:
        with (
            deferred_interrupts(sender),
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode") as pool,
        ):
            for replay in replays:
                replay.pool = pool
            try:
                while True:
                    try:
                        _send(sender, replays, speed, result, pacing)
                        left = sender.flush(flush_timeout)
                        break
                    except FatalProducerError:
                        sender.new_session()  # every symbol again, from its start message
            finally:
                for replay in replays:
                    replay.pool = None
                    if replay._ahead is not None:
                        replay._ahead[1].cancel()
    except KeyboardInterrupt:
        delivered, rows = sender.progress()
        raise interrupted(sender, sum(r.stats.sent for r in replays), rows, delivered) from None
    result.elapsed_s = time.perf_counter() - started
    _check(sender, result, left, flush_timeout)
    return result


def _schedule(replays: list[SymbolReplay]) -> Iterator[tuple[int, int, int, int]]:
    """(phase, ts_event, symbol, message) of every row message in sending order: each symbol's history
    (phase 0) first, then the windows (phase 1), merged across symbols by their first row's ts_event."""

    def one(index: int, replay: SymbolReplay) -> Iterator[tuple[int, int, int, int]]:
        ts = replay.rows.ts.tolist()
        for k in range(replay.messages):
            row = replay.bounds[k]
            yield (0 if row < replay.first_paced else 1), ts[row], index, k

    return heapq.merge(*(one(i, r) for i, r in enumerate(replays)))


def _send(
    sender: _MultiSender, replays: list[SymbolReplay], speed: float, result: MultiReplayStats, pacing: Pacing
) -> None:
    """Starts, then every row message on the shared schedule, each symbol's end right after its last row."""
    for replay in replays:
        sender.send(
            replay, replay.start_message, KIND_START, int(replay.rows.ts[0] // 1_000_000), WIRE_JSON, 0, 0
        )
    paced = [int(r.rows.ts[r.first_paced]) for r in replays if r.first_paced < len(r.rows.ts)]
    paced_t0 = min(paced) if paced else 0
    last_progress = time.perf_counter()
    for count, (phase, ts, index, k) in enumerate(_schedule(replays), 1):
        replay = replays[index]
        value, wire = replay.message(k)  # encoded before the clock starts or the wait is measured
        if speed > 0 and phase == 1:
            if pacing.origin is None:
                pacing.origin = time.perf_counter()
            wait = (ts - paced_t0) / NS_PER_SECOND / speed - (time.perf_counter() - pacing.origin)
            if wait > 0:
                sender.sleep(wait)
            else:
                result.max_lateness_s = max(result.max_lateness_s, -wait)
                result.lateness.append(-wait)
        lo, hi = replay.bounds[k], replay.bounds[k + 1]
        sender.send(replay, value, KIND_ROW, ts // 1_000_000, wire, lo, hi - lo)
        replay.stats.sent = hi
        replay.stats.messages += 1
        if k == replay.messages - 1:
            end = control_message(KIND_END, run_id=replay.stats.run_id, rows=replay.stats.rows)
            sender.send(replay, end, KIND_END, int(replay.rows.ts[-1] // 1_000_000), WIRE_JSON, 0, 0)
        if count % POLL_MESSAGES == 0:
            sender.poll(0)
            if (now := time.perf_counter()) - last_progress >= PROGRESS_SECONDS:
                last_progress = now
                log.info(
                    "sent %d/%d rows of %d symbols",
                    sum(r.stats.sent for r in replays),
                    sum(r.stats.rows for r in replays),
                    len(replays),
                )


def _check(sender: _MultiSender, result: MultiReplayStats, left: int, flush_timeout: float) -> None:
    """Every row and control message of every symbol acknowledged, or one line saying what is not."""
    delivered = sum(r.stats.delivered for r in result.replays)
    total = sum(r.stats.rows for r in result.replays)
    if left:
        raise BrokerError(
            f"{left} message(s) still undelivered after waiting {flush_timeout:g} s ({delivered} of {total} "
            "rows confirmed); is the broker still up?"
        )
    unframed = [r.symbol for r in result.replays if r.framing != {KIND_START, KIND_END}]
    if result.failed or unframed or delivered != total:
        raise BrokerError(
            f"{result.failed} message(s) failed delivery to {sender.topic!r} (first: "
            f"{result.first_error or 'a control message of ' + ', '.join(unframed)}); {delivered} of {total} "
            "rows delivered; run kafka_producer.py again"
        )


class _MultiSender(ProducerSession):
    """One idempotent producer for every symbol; delivery reports are counted per symbol."""

    def __init__(self, settings: dict[str, str], topic: str, result: MultiReplayStats) -> None:
        self.result = result
        super().__init__(settings, topic)

    def send(
        self, replay: SymbolReplay, value: bytes, kind: bytes, ts_ms: int, wire: str, row: int, rows: int
    ) -> None:
        self.produce(
            value=value,
            key=replay.key,
            partition=replay.partition,
            headers=self.headers[kind, wire],
            timestamp=ts_ms,
            on_delivery=functools.partial(self._delivered, self.generation, replay, kind, rows),
        )

    def _delivered(
        self, generation: int, replay: SymbolReplay, kind: bytes, rows: int, err: KafkaError | None, _msg: Any
    ) -> None:
        if err is not None:
            if self.current(generation) and not err.fatal():
                self.result.failed += 1
                self.result.first_error = self.result.first_error or redact(str(err), self.settings)
        elif kind == KIND_ROW:
            replay.stats.delivered += rows
        else:
            replay.framing.add(kind)

    def progress(self) -> tuple[int, int]:
        replays = self.result.replays
        return sum(r.stats.delivered for r in replays), sum(r.stats.rows for r in replays)

    def reset_deliveries(self) -> None:
        self.result.failed = 0
        self.result.first_error = ""
        for replay in self.result.replays:
            replay.stats.delivered = 0
            replay.framing.clear()
