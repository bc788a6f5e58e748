"""One member of a consumer group that reads many symbols' replays from a partitioned topic.

Each partition holds the replays (start, rows, end; docs/wire.md) of the symbols whose key hashes to it,
interleaved. The member follows, per partition and symbol, one `ReplayState` (the single-replay state
machine: dedupe by replay index, foreign runs, bounds checks) and hands a replay to `on_complete` as
soon as every row of it has arrived. `on_complete` routes it and writes its reports; only after it
returns does the replay count as done.

Why the commits are safe (nothing lost, nothing routed twice into two different reports): a partition's
committed offset is the start offset of the earliest replay in it that is not done yet, or the offset
after the last message read when every replay seen there is done. So the committed offset never passes
the start of a replay whose reports are not written; a member that takes the partition over (after a
rebalance, a SIGKILL, a restart) re-reads every such replay from its start. A replay that was done but
whose commit had not gone out is read again and handed over again: its reports are rewritten with the
same content, or skipped by the caller (`on_complete` decides). On revocation the partition's offsets are
committed synchronously and its in-memory state dropped; on loss (the group moved on without us) it is
dropped without a commit.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from allocator.errors import BrokerError
from allocator.kafka.codec import KIND_START, WireError
from allocator.kafka.consumer import POLL_SECONDS, data_messages
from allocator.kafka.error_log import ErrorSummary
from allocator.kafka.replay_state import ReplayState, StopRules, StreamResult, message_headers
from allocator.kafka.settings import consumer_settings, new_client, redact

log = logging.getLogger(__name__)
DONE_CHECK_SECONDS = 0.5  # how often `is_done` (a directory listing, say) is asked
MAX_POLL_MESSAGES = 10_000
IDLE_POLL = 100  # messages per poll while no replay is in hand (other symbols' messages are skipped)


@dataclass
class SymbolStream:
    """One symbol's replay in one partition: the state machine, where its start message is, and which
    run was already handed over (done)."""

    state: ReplayState
    start_offset: int | None = None
    done_run: str | None = None

    @property
    def run_id(self) -> str | None:
        run = self.state.start.get("run_id")
        return str(run) if run is not None else None

    @property
    def pending(self) -> bool:
        """Started and not yet done: its start offset bounds the partition's commit."""
        return self.run_id is not None and self.run_id != self.done_run

    @property
    def complete(self) -> bool:
        state = self.state
        return (
            self.pending
            and state.end_rows is not None
            and state.stats.rows_received >= state.end_rows
            and state.stats.rows_received >= int(state.start["rows"])
        )


@dataclass
class PartitionState:
    """What a member knows of one assigned partition; dropped when the partition is revoked."""

    next_offset: int | None = None  # after the last message read
    streams: dict[str, SymbolStream] = field(default_factory=dict)

    def safe_offset(self) -> int | None:
        """The offset to commit: never past the start of a replay that is not done."""
        starts = [s.start_offset for s in self.streams.values() if s.pending and s.start_offset is not None]
        return min(starts) if starts else self.next_offset


@dataclass
class GroupStats:
    """This member's run, for its JSON summary on stdout."""

    stop_reason: str = ""
    assignments: list[list[int]] = field(default_factory=list)  # every assignment received, in order
    revocations: int = 0
    lost: int = 0
    replays_done: list[dict[str, Any]] = field(default_factory=list)
    messages: int = 0
    duplicates: int = 0
    undecodable: int = 0
    pending_at_stop: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class GroupSettings:
    topic: str
    group: str
    instance_id: str | None = None  # group.instance.id: static membership (docs/brokers.md)
    symbols: frozenset[str] | None = None  # only these symbols' replays are read (None: every one)
    levels: int | None = None
    idle_timeout: float = 30.0


OnComplete = Callable[[str, int, StreamResult], dict[str, Any]]


class GroupMember:
    """subscribe(), rebalance callbacks, per-partition replay states, safe commits (see the module doc)."""

    def __init__(
        self,
        settings: dict[str, str],
        group: GroupSettings,
        on_complete: OnComplete,
        is_done: Callable[[], bool],
    ) -> None:
        self.settings, self.group, self.on_complete, self.is_done = settings, group, on_complete, is_done
        self.partitions: dict[int, PartitionState] = {}
        self.stats = GroupStats()
        self._committed: dict[int, int] = {}
        self._closing = False  # the revocation close() makes is not counted

    def run(self) -> GroupStats:
        """Poll until `is_done()` says every report is written, or idle_timeout of silence, or a signal."""
        errors = ErrorSummary(log, lambda err: redact(str(err), self.settings))
        conf = {"error_cb": errors} | consumer_settings(self.group.group, self.settings)
        if self.group.instance_id:
            conf["group.instance.id"] = self.group.instance_id
        consumer = new_client(Consumer, conf, self.settings)
        stop = _StopFlag()
        try:
            consumer.subscribe(
                [self.group.topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
            self.stats.stop_reason = self._loop(consumer, stop)
        except KafkaException as exc:
            raise BrokerError(
                f"consuming {self.group.topic!r} failed: {redact(str(exc), self.settings)}"
            ) from None
        except WireError as exc:
            raise WireError(f"topic {self.group.topic!r}: {exc}") from None
        finally:
            stop.restore()
            self._record_pending()
            self._commit(consumer, list(self.partitions), asynchronous=False)
            self._closing = True
            consumer.close()  # leaves the group: the others rebalance at once
            errors.flush()
        return self.stats

    # ------------------------------------------------------------------------------ rebalances

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        held = sorted(tp.partition for tp in partitions)
        log.info("group %s: assigned partitions %s of %s", self.group.group, held, self.group.topic)
        self.stats.assignments.append(held)
        for tp in partitions:
            self.partitions[tp.partition] = PartitionState()
        self._last_activity = time.monotonic()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = sorted(tp.partition for tp in partitions)
        log.info("group %s: partitions %s revoked: committing, dropping their state", self.group.group, gone)
        self.stats.revocations += not self._closing
        self._commit(consumer, gone, asynchronous=False)
        for p in gone:
            self.partitions.pop(p, None)
            self._committed.pop(p, None)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = sorted(tp.partition for tp in partitions)
        log.warning(
            "group %s: partitions %s lost (session expired): dropping their state", self.group.group, gone
        )
        self.stats.lost += 1
        for p in gone:
            self.partitions.pop(p, None)
            self._committed.pop(p, None)

    # ------------------------------------------------------------------------------ the loop

    def _loop(self, consumer: Consumer, stop: _StopFlag) -> str:
        self._last_activity = time.monotonic()
        next_done_check = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_done_check:
                next_done_check = now + DONE_CHECK_SECONDS
                if self.is_done():
                    return "all_reported"
            events = consumer.consume(num_messages=self._poll_size(), timeout=POLL_SECONDS)
            messages = self._data_messages(events)
            if messages:
                self._last_activity = time.monotonic()
                self._take(messages)
                self._commit(consumer, list(self.partitions), asynchronous=True)
            elif time.monotonic() - self._last_activity > self.group.idle_timeout:
                return "idle_timeout"
        return "interrupted"

    def touch(self) -> None:
        """Something happened elsewhere (another member wrote a report): not idle."""
        self._last_activity = time.monotonic()

    def _poll_size(self) -> int:
        """As many messages as the replays in hand can still send (their missing rows and end messages:
        a message holds at least one row), at most MAX_POLL_MESSAGES; IDLE_POLL while none is in hand.
        Not ReplayState.poll_size's rows-per-message estimate: a paced `auto` replay sends its window a row
        per message, and polls sized for full Arrow messages made catching up on a backlog 5× slower."""
        left = 0
        for part in self.partitions.values():
            for stream in part.streams.values():
                if stream.pending:
                    state = stream.state
                    left += max(0, int(state.start["rows"]) - state.stats.rows_received) + (
                        state.end_rows is None
                    )
        return max(1, min(MAX_POLL_MESSAGES, left or IDLE_POLL))

    def _data_messages(self, events: Sequence[Message]) -> list[Message]:
        return data_messages(events, self.group.topic, self.settings)

    def _take(self, messages: list[Message]) -> None:
        """Hand each (partition, symbol)'s messages of this poll to its state machine, in order."""
        by_stream: dict[tuple[int, str], list[Message]] = defaultdict(list)
        for msg in messages:
            p = msg.partition() or 0
            part = self.partitions.get(p)
            if part is None:  # a message fetched before a revocation
                continue
            part.next_offset = (msg.offset() or 0) + 1
            self.stats.messages += 1
            key = (msg.key() or b"").decode("utf-8", errors="replace")
            if self.group.symbols is None or key in self.group.symbols:
                by_stream[p, key].append(msg)
        now = time.monotonic()
        for (p, key), group in by_stream.items():
            stream = self.partitions[p].streams.get(key)
            if stream is None:
                stream = self.partitions[p].streams[key] = SymbolStream(self._new_state())
            before = stream.run_id
            duplicates, undecodable = stream.state.stats.duplicates, stream.state.stats.undecodable
            stream.state.take(group, now, events=True)
            self.stats.duplicates += stream.state.stats.duplicates - duplicates
            self.stats.undecodable += stream.state.stats.undecodable - undecodable
            if stream.run_id != before and stream.run_id is not None:
                stream.start_offset = _start_offset(group, stream.run_id)
                log.info(
                    "partition %d: replay of %s (run %s) from offset %s",
                    p,
                    key,
                    stream.run_id,
                    stream.start_offset,
                )
            if stream.complete:
                self._hand_over(p, key, stream)

    def _new_state(self) -> ReplayState:
        return ReplayState(StopRules(idle_timeout=self.group.idle_timeout), levels=self.group.levels)

    def _hand_over(self, partition: int, symbol: str, stream: SymbolStream) -> None:
        """A complete replay: route it (the caller), then mark it done, then let the commit move on."""
        run_id = stream.run_id
        assert run_id is not None
        stream.state.stats.stop_reason = "end_of_stream"  # what a single-replay consumer would say
        result = stream.state.result()
        outcome = self.on_complete(symbol, partition, result)
        self.stats.replays_done.append({"symbol": symbol, "partition": partition, "run_id": run_id} | outcome)
        stream.state = self._new_state()  # frees the rows
        stream.done_run, stream.start_offset = run_id, None

    # ------------------------------------------------------------------------------ commits

    def _commit(self, consumer: Consumer, partitions: list[int], *, asynchronous: bool) -> None:
        offsets = []
        for p in partitions:
            part = self.partitions.get(p)
            offset = part.safe_offset() if part is not None else None
            if offset is not None and self._committed.get(p) != offset:
                offsets.append(TopicPartition(self.group.topic, p, offset))
        if not offsets:
            return
        try:
            if asynchronous:
                consumer.commit(offsets=offsets, asynchronous=True)
            else:
                consumer.commit(offsets=offsets, asynchronous=False)
            for tp in offsets:
                self._committed[tp.partition] = tp.offset
        except KafkaException as exc:
            # Not fatal: a later commit (or the re-read of an uncommitted replay) covers it.
            log.warning("could not commit %s: %s", [(tp.partition, tp.offset) for tp in offsets], exc)

    def _record_pending(self) -> None:
        for p, part in sorted(self.partitions.items()):
            for symbol, stream in sorted(part.streams.items()):
                if stream.pending:
                    stats = stream.state.stats
                    self.stats.pending_at_stop.append(
                        {
                            "symbol": symbol,
                            "partition": p,
                            "run_id": stream.run_id,
                            "rows_received": stats.rows_received,
                            "rows_expected": stream.state.end_rows or stream.state.start.get("rows"),
                        }
                    )


def _start_offset(messages: list[Message], run_id: str) -> int | None:
    """The offset of the start message of `run_id` among `messages` (the last one, if repeated)."""
    found = None
    for msg in messages:
        kind, _wire, _schema = message_headers(msg)
        if kind != KIND_START:
            continue
        try:
            doc = json.loads(msg.value() or b"")
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("run_id") == run_id:
            found = msg.offset()
    return found


class _StopFlag:
    """SIGINT and SIGTERM end the loop cleanly: commit, leave the group (the others rebalance at once)."""

    def __init__(self) -> None:
        self._set = False
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}
