"""Consume a replay from Kafka into the loader's frame, proving along the way that it is complete.

The consumer reads in batches, decodes row messages column-wise, drops rows it has already seen (by
their replay index `n`), and stops at the replay's `end` message once every row has arrived — or
after the idle timeout's seconds of silence, saying so. Gaps are reported, never papered over. What the
messages do is the state machine in allocator.kafka.replay_state; this module is its Kafka side
(assignment, polling, commits) and the conversion of the result into `MarketData`.

With a named consumer group the progress survives a crash: after each batch the decoded rows are
appended to a local checkpoint (allocator.kafka.checkpoint) and only then are the offsets committed, so
a restarted consumer resumes exactly where the checkpoint ends and no row is counted twice.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from allocator.data.loader import STRING_COLUMNS, MarketData, history_start
from allocator.data.window import NS_PER_SECOND, Window, WindowSpec, format_ns
from allocator.errors import BrokerError, SettingError
from allocator.kafka.checkpoint import Checkpoint
from allocator.kafka.codec import WireError
from allocator.kafka.error_log import ErrorSummary
from allocator.kafka.replay_state import (
    Phase,
    ReplayState,
    RowListener,
    StopRules,
    StreamResult,
)
from allocator.kafka.settings import consumer_settings, new_client, redact
from allocator.kafka.stream_progress import ReplayProgress

log = logging.getLogger(__name__)
BATCH = 50_000  # rows per poll: a poll asks for BATCH // rows_per_message messages (ReplayState.poll_size)
# consume() waits this long unless the batch is full (docs/brokers.md: always the whole timeout otherwise)
POLL_SECONDS = 0.1
END_GRACE_SECONDS = 0.5  # after a complete replay, how long to look for a newer replay behind it
ASSIGN_RETRY_SECONDS = 0.5


def default_group() -> str:
    return f"order-allocator-{uuid.uuid4().hex[:12]}"


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
    symbol: str | None = None,
    progress: ReplayProgress | None = None,
    listener: RowListener | None = None,
    commit: Callable[[Consumer, list[TopicPartition]], None] | None = None,
) -> StreamResult:
    """Read one complete replay from `topic` (the latest one if several follow each other).

    `levels` limits the book levels decoded (1 = top of book, all the faithful mode needs). `on_rows`
    gets each batch of new window rows as it arrives (never the calibration history before the window),
    only those of `symbol` if one is given; the result holds every row (completeness is the replay's).
    `progress` is told about every poll (rows, lag, the data's clock).
    `listener` gets every row as it arrives, and the end (the streaming router: allocator.kafka.live);
    `commit`, when given, commits each poll's offsets instead of the consumer (a transaction).
    """
    if on_rows is not None and symbol is not None:
        on_rows = functools.partial(_deliver_symbol, on_rows, symbol)
    state = ReplayState(
        StopRules(idle_timeout=idle_timeout, stop_after_rows=stop_after_rows),
        levels=levels,
        on_rows=on_rows,
        checkpoint=Checkpoint(state_dir) if state_dir is not None else None,
        listener=listener,
    )
    consumer = ReplayConsumer(settings, topic, group, state, progress)
    consumer.commit = commit
    return consumer.run()


class ReplayConsumer:
    """The Kafka side of a ReplayState: assignment at the checkpoint's offsets, polls, commits."""

    def __init__(
        self,
        settings: dict[str, str],
        topic: str,
        group: str,
        state: ReplayState,
        progress: ReplayProgress | None = None,
    ) -> None:
        self.settings, self.topic, self.group, self.state = settings, topic, group, state
        self.progress = progress
        self.commit: Callable[[Consumer, list[TopicPartition]], None] | None = None
        checkpoint = state.checkpoint
        meta = checkpoint.load() if checkpoint is not None else None
        if checkpoint is not None and meta is not None:
            state.resume(meta, checkpoint.batches(meta))
            log.info(
                "resuming group %s from its checkpoint: %d rows already processed",
                group,
                state.stats.rows_received,
            )

    def run(self) -> StreamResult:
        """Poll until a stop rule fires (or Ctrl-C), commit the final offsets, return the replay."""
        errors = ErrorSummary(log, lambda err: redact(str(err), self.settings))
        consumer = new_client(
            Consumer, {"error_cb": errors} | consumer_settings(self.group, self.settings), self.settings
        )
        interrupted = _InterruptFlag()
        try:
            self._attach(consumer, interrupted)
            self.state.stats.stop_reason = self._poll_until_stopped(consumer, interrupted)
        except KafkaException as exc:
            raise BrokerError(f"consuming {self.topic!r} failed: {redact(str(exc), self.settings)}") from None
        except WireError as exc:
            raise WireError(f"topic {self.topic!r}: {exc}") from None
        finally:
            interrupted.restore()
            if self.progress is not None:
                self.progress.close()
            self._commit_final(consumer)
            consumer.close()
            errors.flush()
        return self.state.result()

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The checkpoint, not the broker's committed offset, says where processing ended.
        for tp in partitions:
            stored = self.state.meta["offsets"].get(str(tp.partition))
            tp.offset = int(stored) if stored is not None else OFFSET_BEGINNING
        consumer.assign(partitions)
        if self.state.stats.assigned_at is None:
            self.state.stats.assigned_at = time.perf_counter()

    def _attach(self, consumer: Consumer, interrupted: _InterruptFlag) -> None:
        if self.state.checkpoint is None:
            consumer.subscribe([self.topic], on_assign=self._on_assign)
        else:
            # A resumable run takes its partitions directly, at the checkpoint's offsets, and commits them
            # to the group without joining it: no rebalance to wait for, and no dead predecessor can
            # hold the group (noida-db keeps a SIGKILLed member as leader forever).
            self._assign_when_ready(consumer, self.state.rules.idle_timeout, interrupted)

    def _assign_when_ready(self, consumer: Consumer, timeout: float, interrupted: _InterruptFlag) -> None:
        """Wait (up to `timeout`) for the topic to exist, then assign all its partitions."""
        deadline = time.monotonic() + timeout
        while not interrupted.is_set():
            metadata = consumer.list_topics(self.topic, timeout=2)
            info = metadata.topics.get(self.topic)
            if info is not None and info.error is None and info.partitions:
                self._on_assign(consumer, [TopicPartition(self.topic, p) for p in sorted(info.partitions)])
                return
            if time.monotonic() > deadline:
                return  # the poll loop then stops on its idle timeout and says no replay arrived
            time.sleep(ASSIGN_RETRY_SECONDS)

    def _poll_until_stopped(self, consumer: Consumer, interrupted: _InterruptFlag) -> str:
        """The loop: poll, apply, checkpoint then commit, check the stop rules. Returns the stop reason."""
        state = self.state
        state.start_clock(time.monotonic())
        while not interrupted.is_set():
            wait = END_GRACE_SECONDS if state.phase is Phase.DRAINING else POLL_SECONDS
            size = state.poll_size(BATCH, takes_what_is_ready=state.listener is not None)
            events = self._consume(consumer, size, wait)
            now = time.monotonic()
            next_offsets = state.take(self._data_messages(events), now, events=bool(events))
            if next_offsets:
                # Asynchronous: the checkpoint, written first, is what a restart trusts.
                offsets = [TopicPartition(self.topic, int(p), o) for p, o in next_offsets.items()]
                if self.commit is not None:
                    self.commit(consumer, offsets)
                else:
                    consumer.commit(offsets=offsets, asynchronous=True)
            if self.progress is not None and state.start:
                self._show_progress(consumer)
            if (reason := state.stop_reason(now, bool(events))) is not None:
                return reason
        return "interrupted"

    def _show_progress(self, consumer: Consumer) -> None:
        """Rows of the replay followed, messages still on the topic past our position (from the last
        fetch's high watermark: no request), and the newest row's time."""
        state = self.state
        lag = 0
        for partition, offset in state.meta["offsets"].items():
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(self.topic, int(partition)), cached=True
            )
            if high < 0:  # not known before the first fetch response
                lag = -1
                break
            lag += max(high - int(offset), 0)
        newest = state.batches[-1].column("ts_event") if state.batches else None
        assert self.progress is not None
        self.progress.update(
            str(state.start["run_id"]),
            int(state.start["rows"]),
            state.stats.rows_received,
            lag_messages=lag if lag >= 0 and state.meta["offsets"] else None,
            data_ns=pc.max(newest).as_py() if newest is not None else None,
            window_end_ns=int(state.start["window_end_ns"]),
        )

    def _consume(self, consumer: Consumer, messages: int, wait: float) -> list[Message]:
        """One poll. consume() waits out its whole timeout unless `messages` are ready (docs/brokers.md),
        which would hold a paced stream's ticks back by up to `wait`; a streaming router (a listener) takes
        what is there, and otherwise waits only for the first message to come."""
        if self.state.listener is None:
            return list(consumer.consume(num_messages=messages, timeout=wait))
        events = list(consumer.consume(num_messages=messages, timeout=0))
        if not events and (first := consumer.poll(wait)) is not None:
            events = [first]
            if messages > 1:
                events += consumer.consume(num_messages=messages - 1, timeout=0)
        return events

    def _data_messages(self, events: Sequence[Message]) -> list[Message]:
        return data_messages(events, self.topic, self.settings)

    def _commit_final(self, consumer: Consumer) -> None:
        offsets = self.state.meta["offsets"]
        if not offsets:
            return
        try:
            final = [TopicPartition(self.topic, int(p), int(o)) for p, o in offsets.items()]
            consumer.commit(offsets=final, asynchronous=False)
        except KafkaException as exc:
            kept = "; the checkpoint still holds them" if self.state.checkpoint is not None else ""
            log.warning("could not commit final offsets (%s)%s", redact(str(exc), self.settings), kept)


def _deliver_symbol(on_rows: Callable[[pd.DataFrame], None], symbol: str, batch: pd.DataFrame) -> None:
    """Live routing of one symbol sees only its rows."""
    if "symbol" in batch.columns:
        batch = batch.loc[np.asarray(batch["symbol"] == symbol)]
    if len(batch):
        on_rows(batch)


def symbol_rows(rows: pd.DataFrame, symbol: str, topic: str) -> pd.DataFrame:
    """The rows of one symbol, as the loader's `symbol` keeps them; one line when the replay has none."""
    if "symbol" not in rows.columns:
        raise SettingError(
            f"the replay on {SettingError.literal(repr(topic))} has no symbol column to select "
            f"{SettingError.literal(repr(symbol))} from; drop {{symbol}}",
            symbol="symbol",
        )
    keep = np.asarray(rows["symbol"] == symbol)
    if not keep.any():
        held = sorted({str(s) for s in rows["symbol"].dropna().astype(object).unique()})
        raise SettingError(
            f"the replay on {SettingError.literal(repr(topic))} holds no rows of symbol "
            f"{SettingError.literal(repr(symbol))} (symbols there: {SettingError.literal(', '.join(held) or 'none')}); "
            "change or drop {symbol}",
            symbol="symbol",
        )
    return _drop_unused_categories(rows.loc[keep].reset_index(drop=True))


def stream_market_data(
    result: StreamResult,
    topic: str,
    window: WindowSpec | None,
    calibration_ns: int = 0,
    symbol: str | None = None,
) -> MarketData:
    """The consumed rows as the loader would have returned them, with the producer's window.

    An explicit --start/--end on the consumer narrows the rows further (on the data's date). Rows
    before the window start are calibration history: `frame` never holds them (they are not traded);
    with `calibration_ns` > 0 those in [start − calibration_ns, start) become `history`, as the loader
    with the same span would give. `symbol` keeps only that symbol's rows, as the loader's does.
    """
    start, rows = result.start, result.frame
    if symbol is not None:
        rows = symbol_rows(rows, symbol, topic)
    ts = rows["ts_event"].to_numpy()
    replay_window = _narrowed_window(start, ts, window)
    history: pd.DataFrame | None = None
    if calibration_ns > 0:
        history, frame = _history_and_window(rows, start, replay_window, calibration_ns)
    else:
        frame = _window_rows(rows, start, replay_window, narrowed=window is not None)
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


def _narrowed_window(start: dict[str, Any], ts: np.ndarray, window: WindowSpec | None) -> Window:
    """The producer's window, narrowed by the consumer's own --start/--end if it gave them."""
    replay_window = Window(int(start["window_start_ns"]), int(start["window_end_ns"]))
    if window is None or not len(ts):
        return replay_window
    # Times of day resolve on the date of the first window row, as before history was streamed
    # (a history row may lie on the previous day).
    streamed_history = ts < replay_window.start_ns
    first_window_row = int(np.argmin(streamed_history)) if not streamed_history.all() else 0
    own = window.resolve(int(ts[first_window_row]))
    return Window(max(own.start_ns, replay_window.start_ns), min(own.end_ns, replay_window.end_ns))


def _history_and_window(
    rows: pd.DataFrame, start: dict[str, Any], replay_window: Window, calibration_ns: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The calibration history [start − calibration_ns, start) and the window rows, as the loader splits them."""
    ts = rows["ts_event"].to_numpy()
    first = history_start(replay_window, calibration_ns)
    sent_from = int(start.get("history_start_ns", start["window_start_ns"]))
    if first < sent_from:
        log.warning(
            "the replay carries calibration history from %s only (the producer sent less before the window); "
            "asked for %g s before %s",
            format_ns(sent_from),
            calibration_ns / NS_PER_SECOND,
            format_ns(replay_window.start_ns),
        )
    before = (ts >= first) & (ts < replay_window.start_ns)
    return _split_shared_categories(rows, before, replay_window.contains(ts))


def _window_rows(
    rows: pd.DataFrame, start: dict[str, Any], replay_window: Window, *, narrowed: bool
) -> pd.DataFrame:
    """Exactly the frame of a replay without history: its rows, then the consumer's narrowing."""
    ts = rows["ts_event"].to_numpy()
    streamed_history = ts < int(start["window_start_ns"])  # what the producer sent before its window
    in_window = replay_window.contains(ts)
    frame = rows
    if streamed_history.any():
        frame = _drop_unused_categories(rows.loc[~streamed_history].reset_index(drop=True))
        in_window = in_window[~streamed_history]
    if narrowed and len(frame):
        frame = frame.loc[in_window].reset_index(drop=True)
    return frame


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


class _InterruptFlag:
    """Ctrl-C during consumption ends the loop cleanly (the batch in hand is finished and committed)."""

    def __init__(self) -> None:
        self._set = False
        self._previous: Any = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def data_messages(events: Sequence[Message], topic: str, settings: dict[str, str]) -> list[Message]:
    """A poll's messages without its end-of-partition and topic-not-there-yet events; any other error
    event ends the run as a BrokerError (the replay consumer's and a group member's one rule)."""
    messages = []
    for msg in events:
        error = msg.error()
        if error is None:
            messages.append(msg)
        elif error.code() not in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
            # UNKNOWN_TOPIC_OR_PART: the producer has not created the topic yet, keep waiting.
            raise BrokerError(f"consuming {topic!r} failed: {redact(str(error), settings)}")
    return messages
