"""Consume a replay from Kafka into the loader's frame, proving along the way that it is complete.

The consumer reads in batches, decodes row messages column-wise, drops rows it has already seen (by
their replay index `n`), and stops at the replay's `end` message once every row has arrived — or
after `--idle-timeout` seconds of silence, saying so. Gaps are reported, never papered over.

With a named consumer group the progress survives a crash: after each batch the decoded rows are
appended to a local checkpoint (`--state-dir`) and only then are the offsets committed, so a restarted
consumer resumes exactly where the checkpoint ends and no row is counted twice.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from allocator.data.loader import STRING_COLUMNS, MarketData, history_start
from allocator.data.schema import REQUIRED_COLUMNS
from allocator.data.window import NS_PER_SECOND, Window, WindowSpec, format_ns
from allocator.errors import BrokerError
from allocator.kafka.codec import (
    HEADER_KIND,
    KIND_END,
    KIND_ROW,
    KIND_START,
    PREVIOUS_SEQUENCE,
    REPLAY_INDEX,
    ROW_PREFIX,
    decode_rows,
    frame_from_batches,
    redact,
)

log = logging.getLogger(__name__)
BATCH = 5000
POLL_SECONDS = 0.5
END_GRACE_SECONDS = 0.5  # after a complete replay, how long to look for a newer replay behind it


@dataclass
class StreamStats:
    """Counts the report shows about the stream itself."""

    messages: int = 0
    rows_received: int = 0
    duplicates: int = 0
    undecodable: int = 0
    undecodable_examples: list[str] = field(default_factory=list)
    replays_seen: int = 0
    stop_reason: str = ""
    expected_rows: int | None = None
    missing_rows: int = 0
    missing_ranges: list[tuple[int, int]] = field(default_factory=list)
    resumed_from_checkpoint: bool = False
    missing_by_venue: dict[str, int] = field(default_factory=dict)
    venue_gaps: list[dict[str, int | None]] = field(default_factory=list)
    first_message_at: float | None = None  # perf_counter of the first and last message, for ingest rates
    last_message_at: float | None = None

    @property
    def ingest_rate(self) -> float:
        """Messages per second between the first and the last message (group join excluded)."""
        if self.first_message_at is None or self.last_message_at is None:
            return 0.0
        span = self.last_message_at - self.first_message_at
        return self.messages / span if span > 0 else 0.0

    @property
    def complete(self) -> bool:
        return self.stop_reason == "end_of_stream" and self.missing_rows == 0


@dataclass
class StreamResult:
    frame: pd.DataFrame
    start: dict[str, Any]
    stats: StreamStats


class _Checkpoint:
    """Decoded batches and the next offsets, written before offsets are committed (see module doc)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.meta_path = directory / "checkpoint.json"

    def load(self) -> dict[str, Any] | None:
        if not self.meta_path.exists():
            return None
        return json.loads(self.meta_path.read_text())

    def batches(self, meta: dict[str, Any]) -> list[pd.DataFrame]:
        frames = []
        for name in meta["segments"]:
            with pa.memory_map(str(self.directory / name)) as source:
                frames.append(pa.ipc.open_file(source).read_all().to_pandas())
        return frames

    def save(self, batch: pd.DataFrame | None, meta: dict[str, Any]) -> None:
        if batch is not None and len(batch):
            name = f"segment-{len(meta['segments']):06d}.arrow"
            table = pa.Table.from_pandas(batch, preserve_index=False)
            tmp = self.directory / (name + ".tmp")
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            os.replace(tmp, self.directory / name)
            meta["segments"].append(name)
        tmp = self.meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self.meta_path)

    def reset(self) -> None:
        for path in self.directory.glob("segment-*.arrow"):
            path.unlink()
        self.meta_path.unlink(missing_ok=True)


def default_group() -> str:
    return f"order-allocator-{uuid.uuid4().hex[:12]}"


def state_directory(root: str | Path, group: str, topic: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{group}--{topic}")
    return Path(root) / safe


def consume_replay(
    settings: dict[str, str],
    topic: str,
    *,
    group: str,
    idle_timeout: float = 30.0,
    state_dir: Path | None = None,
    on_rows: Callable[[pd.DataFrame], None] | None = None,
    stop_after_rows: int | None = None,
    levels: int | None = None,
) -> StreamResult:
    """Read one complete replay from `topic` (the latest one if several follow each other).

    `levels` limits the book levels decoded (1 = top of book, all the faithful mode needs). `on_rows`
    gets each batch of new window rows as it arrives (never the calibration history before the window).
    """
    checkpoint = _Checkpoint(state_dir) if state_dir is not None else None
    meta = checkpoint.load() if checkpoint else None
    stats = StreamStats()
    batches: list[pd.DataFrame] = []
    start: dict[str, Any] = {}
    seen = np.zeros(0, dtype=bool)
    end_rows: int | None = None
    if meta is not None:
        start = meta["start"]
        batches = checkpoint.batches(meta)
        seen = np.zeros(int(start["rows"]), dtype=bool)
        for b in batches:
            seen[b[REPLAY_INDEX].to_numpy()] = True
        stats.rows_received = int(seen.sum())
        end_rows = meta.get("end_rows")
        stats.resumed_from_checkpoint = True
        log.info(
            "resuming group %s from its checkpoint: %d rows already processed", group, stats.rows_received
        )
    else:
        meta = {"start": {}, "segments": [], "offsets": {}, "end_rows": None}

    def on_assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The checkpoint, not the broker's committed offset, says where processing ended.
        for tp in partitions:
            stored = meta["offsets"].get(str(tp.partition))
            tp.offset = int(stored) if stored is not None else OFFSET_BEGINNING
        consumer.assign(partitions)

    consumer = Consumer(
        {
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "enable.partition.eof": True,
            "fetch.max.bytes": 64 << 20,
            # Started before the producer, the consumer must notice the topic appear within a second.
            "topic.metadata.refresh.interval.ms": 1000,
            # Let librdkafka prefetch further ahead while a batch is being decoded (bounded: 256 MiB).
            "queued.max.messages.kbytes": 262144,
            # noida-db ignores fetch limits and answers with the whole log; allow large responses.
            "receive.message.max.bytes": (1 << 31) - 1,
            "logger": logging.getLogger("librdkafka"),
            "error_cb": lambda err: log.warning("kafka: %s", redact(str(err), settings)),
        }
        | settings
    )
    interrupted = _InterruptFlag()
    try:
        if checkpoint is None:
            consumer.subscribe([topic], on_assign=on_assign)
        else:
            # A resumable run takes its partitions directly, at the checkpoint's offsets, and commits them
            # to the group without joining it: no rebalance to wait for, and no dead predecessor can
            # hold the group (noida-db keeps a SIGKILLed member as leader forever).
            _assign_when_ready(consumer, topic, on_assign, idle_timeout, interrupted)
        last_message = time.monotonic()
        ended_at: float | None = None
        while True:
            if interrupted.is_set():
                stats.stop_reason = "interrupted"
                break
            wait = POLL_SECONDS if ended_at is None else END_GRACE_SECONDS
            messages = consumer.consume(num_messages=BATCH, timeout=wait)
            now = time.monotonic()
            rows: list[bytes] = []
            next_offsets: dict[str, int] = {}
            new_run = False
            if messages:
                stats.last_message_at = time.perf_counter()
                if stats.first_message_at is None:
                    stats.first_message_at = stats.last_message_at
            for msg in messages:
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                        continue  # the producer has not created the topic yet: keep waiting
                    raise BrokerError(f"consuming {topic!r} failed: {redact(str(error), settings)}")
                stats.messages += 1
                next_offsets[str(msg.partition())] = msg.offset() + 1
                value = msg.value()
                # Rows start with their replay index; only other messages need their headers read.
                kind = KIND_ROW if value is not None and value.startswith(ROW_PREFIX) else _kind(msg)
                if kind == KIND_ROW:
                    rows.append(value)
                elif kind == KIND_START:
                    doc = _control(value, ("run_id", "rows", "columns", "window_start_ns", "window_end_ns"))
                    if doc is None:
                        stats.undecodable += 1
                    elif doc.get("run_id") != start.get("run_id"):
                        if start:
                            log.info(
                                "a newer replay (run %s) follows on the topic: starting over", doc["run_id"]
                            )
                        batches, rows, seen, end_rows, ended_at = (
                            [],
                            [],
                            np.zeros(int(doc["rows"]), bool),
                            None,
                            None,
                        )
                        stats.rows_received = stats.duplicates = 0
                        start, new_run = doc, True
                        stats.replays_seen += 1
                        meta.update(start=doc, segments=[], end_rows=None)
                        if checkpoint:
                            checkpoint.reset()
                elif kind == KIND_END:
                    doc = _control(value, ("run_id", "rows"))
                    if doc is None:
                        stats.undecodable += 1
                    elif doc.get("run_id") == start.get("run_id"):
                        end_rows = int(doc["rows"])
                        meta["end_rows"] = end_rows
                else:
                    stats.undecodable += 1
            if messages:
                last_message = now
            batch_frame = None
            if rows and start:
                decoded = decode_rows(rows, _wanted_columns(start["columns"], levels))
                stats.undecodable += decoded.undecodable
                stats.undecodable_examples += decoded.errors[: max(0, 3 - len(stats.undecodable_examples))]
                batch_frame = _drop_duplicates(decoded.frame, seen, stats)
                if len(batch_frame):
                    batches.append(batch_frame)
                    if on_rows is not None:
                        _deliver_window_rows(on_rows, batch_frame, start)
            elif rows:
                stats.undecodable += len(rows)  # rows of a replay whose start we never saw
            if next_offsets or new_run:
                meta["offsets"].update(next_offsets)
                if checkpoint:
                    checkpoint.save(batch_frame, meta)
                if next_offsets:
                    # Asynchronous: the checkpoint, written first, is what a restart trusts.
                    consumer.commit(
                        offsets=[TopicPartition(topic, int(p), o) for p, o in next_offsets.items()],
                        asynchronous=True,
                    )
            if stop_after_rows is not None and stats.rows_received >= stop_after_rows:
                stats.stop_reason = "stopped_early"
                break
            if end_rows is not None and start and stats.rows_received >= end_rows:
                if ended_at is None:
                    ended_at = now
                elif not messages:
                    stats.stop_reason = "end_of_stream"
                    break
            if now - last_message > idle_timeout:
                stats.stop_reason = "idle_timeout" if start else "idle_timeout_no_replay"
                break
    except KafkaException as exc:
        raise BrokerError(f"consuming {topic!r} failed: {redact(str(exc), settings)}") from None
    finally:
        interrupted.restore()
        if meta["offsets"]:
            try:
                final = [TopicPartition(topic, int(p), int(o)) for p, o in meta["offsets"].items()]
                consumer.commit(offsets=final, asynchronous=False)
            except KafkaException as exc:
                log.warning(
                    "could not commit final offsets (%s); the checkpoint still holds them",
                    redact(str(exc), settings),
                )
        consumer.close()
    stats.expected_rows = end_rows if end_rows is not None else (int(start["rows"]) if start else None)
    if start:
        _find_gaps(seen, stats)
    columns = _wanted_columns(start.get("columns", list(REQUIRED_COLUMNS)), levels)
    frame = frame_from_batches(batches, columns)
    if len(frame):
        frame = frame.sort_values(REPLAY_INDEX, kind="stable").reset_index(drop=True)
    if start and stats.missing_rows:
        _attribute_gaps(frame, start, stats)
    return StreamResult(frame=frame.drop(columns=[REPLAY_INDEX, PREVIOUS_SEQUENCE]), start=start, stats=stats)


def stream_market_data(
    result: StreamResult, topic: str, window: WindowSpec | None, calibration_ns: int = 0
) -> MarketData:
    """The consumed rows as the loader would have returned them, with the producer's window.

    An explicit --start/--end on the consumer narrows the rows further (on the data's date). Rows
    before the window start are calibration history: `frame` never holds them (they are not traded);
    with `calibration_ns` > 0 those in [start − calibration_ns, start) become `history`, as the loader
    with the same span would give.
    """
    start = result.start
    rows = result.frame
    replay_window = Window(int(start["window_start_ns"]), int(start["window_end_ns"]))
    ts = rows["ts_event"].to_numpy()
    streamed_history = ts < replay_window.start_ns  # what the producer sent before its window
    if window is not None and len(rows):
        # Times of day resolve on the date of the first window row, as before history was streamed
        # (a history row may lie on the previous day).
        first_window_row = int(np.argmin(streamed_history)) if not streamed_history.all() else 0
        own = window.resolve(int(ts[first_window_row]))
        replay_window = Window(
            max(own.start_ns, replay_window.start_ns), min(own.end_ns, replay_window.end_ns)
        )
    in_window = replay_window.contains(ts)
    history: pd.DataFrame | None = None
    if calibration_ns > 0:
        first = history_start(replay_window, calibration_ns)
        sent_from = int(start.get("history_start_ns", start["window_start_ns"]))
        if first < sent_from:
            log.warning(
                "the replay carries calibration history from %s only (see the producer's --calibration); "
                "asked for %g s before %s",
                format_ns(sent_from),
                calibration_ns / NS_PER_SECOND,
                format_ns(replay_window.start_ns),
            )
        before = (ts >= first) & (ts < replay_window.start_ns)
        history, frame = _split_shared_categories(rows, before, in_window)
    else:
        # Exactly the frame of a replay without history: its rows, then the consumer's narrowing.
        frame = rows
        if streamed_history.any():
            frame = _drop_unused_categories(rows.loc[~streamed_history].reset_index(drop=True))
            in_window = in_window[~streamed_history]
        if window is not None and len(frame):
            frame = frame.loc[in_window].reset_index(drop=True)
    ts = frame["ts_event"].to_numpy()
    symbols = sorted({str(s) for s in frame["symbol"].astype(object).unique()}) if "symbol" in frame else []
    return MarketData(
        frame=frame,
        source=f"kafka:{topic}",
        window=replay_window,
        rows_total=int(start.get("rows", len(frame))),
        file_first_ts=int(ts.min()) if len(ts) else None,
        file_last_ts=int(ts.max()) if len(ts) else None,
        levels=int(start.get("levels", 1)),
        price_format=str(start.get("price_format", "decimal")),
        symbols=symbols,
        history=history,
    )


def _drop_unused_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """The categories of the rows kept, as if only they had been streamed (history rows aside)."""
    for name in STRING_COLUMNS:
        if name in frame.columns and isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].cat.remove_unused_categories()
    return frame


def _split_shared_categories(
    rows: pd.DataFrame, before: np.ndarray, in_window: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """History and window rows with the same categories (those either uses), like the loader's, so
    `pd.concat([history, frame])` keeps the category dtype."""
    both = _drop_unused_categories(rows.loc[before | in_window].reset_index(drop=True))
    window_rows = in_window[before | in_window]
    return (
        both.loc[~window_rows].reset_index(drop=True),
        both.loc[window_rows].reset_index(drop=True),
    )


def _deliver_window_rows(
    on_rows: Callable[[pd.DataFrame], None], batch: pd.DataFrame, start: dict[str, Any]
) -> None:
    """Live routing sees only the window: calibration history (ts_event before the window start) is
    for estimation, and a faithful --live router must print the decisions it printed without it."""
    if int(start.get("history_rows", 0)) > 0:
        batch = batch.loc[batch["ts_event"].to_numpy() >= int(start["window_start_ns"])]
        if not len(batch):
            return
    on_rows(batch)


def _assign_when_ready(consumer: Consumer, topic: str, on_assign, timeout: float, interrupted) -> None:
    """Wait (up to `timeout`) for the topic to exist, then assign all its partitions."""
    deadline = time.monotonic() + timeout
    while not interrupted.is_set():
        metadata = consumer.list_topics(topic, timeout=2)
        info = metadata.topics.get(topic)
        if info is not None and info.error is None and info.partitions:
            on_assign(consumer, [TopicPartition(topic, p) for p in sorted(info.partitions)])
            return
        if time.monotonic() > deadline:
            return  # the main loop then stops on its idle timeout and says no replay arrived
        time.sleep(0.5)


class _InterruptFlag:
    """Ctrl-C during consumption ends the loop cleanly (the batch in hand is finished and committed)."""

    def __init__(self) -> None:
        self._set = False
        self._previous: Any = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, _signum: int, _frame: Any) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def _wanted_columns(columns: list[str], levels: int | None) -> list[str]:
    if levels is None:
        return list(columns)
    return [c for c in columns if not re.search(r"_(\d\d)$", c) or int(c[-2:]) < levels]


def _control(value: bytes | None, required: tuple[str, ...]) -> dict[str, Any] | None:
    """A start/end control document, or None when it is not one (then it is counted, never fatal)."""
    try:
        doc = json.loads(value or b"")
        rows_ok = isinstance(doc.get("rows"), int) and doc["rows"] >= 0
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    return doc if rows_ok and all(key in doc for key in required) else None


def _kind(msg: Any) -> bytes | None:
    for name, value in msg.headers() or ():
        if name == HEADER_KIND:
            return value
    return None


def _drop_duplicates(frame: pd.DataFrame, seen: np.ndarray, stats: StreamStats) -> pd.DataFrame:
    """Keep rows whose replay index is new (a producer retry or a doubled replay would repeat them)."""
    index = frame[REPLAY_INDEX].to_numpy()
    valid = (index >= 0) & (index < len(seen))
    fresh = valid.copy()
    fresh[valid] = ~seen[index[valid]]
    # Within the batch itself, only the first occurrence of an index counts.
    _, first = np.unique(index, return_index=True)
    once = np.zeros(len(index), dtype=bool)
    once[first] = True
    keep = fresh & once
    stats.duplicates += int(np.count_nonzero(valid & ~keep))
    stats.undecodable += int(np.count_nonzero(~valid))
    seen[index[keep]] = True
    stats.rows_received += int(keep.sum())
    return frame.loc[keep]


def _attribute_gaps(frame: pd.DataFrame, start: dict[str, Any], stats: StreamStats) -> None:
    """Name the venues and Databento sequence ranges of missing rows.

    Each row carries its venue's previous sequence (`p`); a received row whose predecessor never
    arrived marks a gap after the last sequence received from that venue before it.
    """
    expected = {str(k): int(v) for k, v in start.get("venue_rows", {}).items()}
    received = frame.groupby("publisher_id", observed=True).size()
    stats.missing_by_venue = {
        pid: count - int(received.get(int(pid), 0))
        for pid, count in expected.items()
        if count > received.get(int(pid), 0)
    }
    if "sequence" not in frame.columns:
        return
    for pid, rows in frame.groupby("publisher_id", observed=True):
        sequences = np.sort(rows["sequence"].to_numpy())
        prev = rows[PREVIOUS_SEQUENCE].to_numpy()
        own = rows["sequence"].to_numpy()
        lost = (prev >= 0) & ~np.isin(prev, sequences)
        for before, predecessor in zip(own[lost], prev[lost], strict=True):
            earlier = sequences[sequences < predecessor]
            stats.venue_gaps.append(
                {
                    "publisher_id": int(pid),
                    "after_sequence": int(earlier[-1]) if len(earlier) else None,
                    "before_sequence": int(before),
                }
            )
    stats.venue_gaps = stats.venue_gaps[:50]


def _find_gaps(seen: np.ndarray, stats: StreamStats) -> None:
    missing = np.flatnonzero(~seen)
    stats.missing_rows = len(missing)
    if len(missing):
        breaks = np.flatnonzero(np.diff(missing) > 1)
        starts = np.r_[missing[0], missing[breaks + 1]]
        ends = np.r_[missing[breaks], missing[-1]]
        stats.missing_ranges = [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)][:20]
