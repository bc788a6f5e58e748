"""The consumer's state machine, without a broker: what a poll's messages do to the replay being read.

Phases and their transitions (`ReplayState.phase`):

    WAITING    --start message-->                         RECEIVING
    RECEIVING  --every row of the end message arrived-->  DRAINING  (one more poll, for a newer replay)
    any        --start message of another run-->          RECEIVING (everything read so far is dropped)

The consumer follows exactly one run: rows carry their run id (codec.RUN_ID), and rows or end messages
of any other run read while following one (a second producer writing to the topic at the same time)
are counted as foreign, per run id, never mixed in.

and the stop rules, checked after each poll in this order (`ReplayState.stop_reason`): `stopped_early`
(the caller's row limit), `end_of_stream` (DRAINING and a poll brought nothing), `idle_timeout` /
`idle_timeout_no_replay` (silence longer than the idle timeout). The Kafka side (allocator.kafka.consumer)
polls, commits and adds `interrupted`.

Rows are deduplicated by their replay index `n` (a producer retry or a doubled replay repeats them), so
each row counts once; with a checkpoint, the decoded rows are saved before their offsets are returned
for committing.

Each message's headers say what it is (`kind`), how its value is encoded (`format`: json or arrow) and in
which layout version (`schema`, docs/wire.md). A start message of another version stops the consumer
with one line (it cannot follow that replay); other messages of another version are undecodable.
Messages without headers (kcat -P) are recognised by their first bytes.
"""

from __future__ import annotations

import enum
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from allocator.data.schema import REQUIRED_COLUMNS
from allocator.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED_CONSUMER, EXIT_OK
from allocator.kafka.checkpoint import Checkpoint, CheckpointMeta, empty_meta, seen_rows
from allocator.kafka.codec import (
    ARROW_CONTINUATION,
    HEADER_FORMAT,
    HEADER_KIND,
    HEADER_SCHEMA,
    KIND_END,
    KIND_ROW,
    KIND_START,
    PREVIOUS_SEQUENCE,
    REPLAY_INDEX,
    ROW_PREFIX,
    SCHEMA_VERSION,
    WIRE_ARROW,
    WIRE_FORMATS,
    WIRE_JSON,
    WireError,
    control_problem,
    decode_arrow_table,
    decode_rows_table,
    frame_from_tables,
    plain_table,
)

log = logging.getLogger(__name__)
MAX_EXAMPLES = 3  # undecodable messages quoted in the report
MAX_FOREIGN_RUNS = 10  # run ids of foreign messages named in the report
MAX_RUN_ID_SHOWN = 64


@dataclass
class StreamStats:
    """Counts the report shows about the stream itself."""

    messages: int = 0
    rows_received: int = 0
    duplicates: int = 0
    undecodable: int = 0
    undecodable_examples: list[str] = field(default_factory=list)
    foreign_messages: int = 0  # rows and end messages of runs other than the one followed
    foreign_runs: dict[str, int] = field(default_factory=dict)
    replays_seen: int = 0
    stop_reason: str = ""
    expected_rows: int | None = None
    missing_rows: int = 0
    missing_ranges: list[tuple[int, int]] = field(default_factory=list)
    resumed_from_checkpoint: bool = False
    missing_by_venue: dict[str, int] = field(default_factory=dict)
    venue_gaps: list[dict[str, int | None]] = field(default_factory=list)
    # perf_counter when the first poll with messages returned, and when the last one was processed
    first_message_at: float | None = None
    last_message_at: float | None = None
    assembly_seconds: float = 0.0  # result(): building the one frame of all rows after the last poll
    assigned_at: float | None = (
        None  # perf_counter when the partitions were first assigned (the fetch starts)
    )
    wire: str = ""  # the row format of the replay followed (its start message's `wire`)

    @property
    def ingest_seconds(self) -> float:
        """From the first message's arrival to the end of processing the last (group join excluded)."""
        if self.first_message_at is None or self.last_message_at is None:
            return 0.0
        return self.last_message_at - self.first_message_at

    @property
    def ingest_rate(self) -> float:
        """Messages per second over ingest_seconds (an Arrow message holds many rows: see ingest_row_rate)."""
        span = self.ingest_seconds
        return self.messages / span if span > 0 else 0.0

    @property
    def ingest_row_rate(self) -> float:
        """Rows kept per second over ingest_seconds."""
        span = self.ingest_seconds
        return self.rows_received / span if span > 0 else 0.0

    @property
    def complete(self) -> bool:
        return self.stop_reason == "end_of_stream" and self.missing_rows == 0

    @property
    def interrupted(self) -> bool:
        return self.stop_reason == "interrupted"

    def exit_code(self, *, strict: bool) -> int:
        """The consumer's exit code after a report: Ctrl-C, or (with --strict) an incomplete stream, else 0."""
        if self.interrupted:
            return EXIT_INTERRUPTED_CONSUMER
        return EXIT_INCOMPLETE if strict and not self.complete else EXIT_OK

    @property
    def failure_exit_code(self) -> int:
        """The exit code when this stream left nothing to report: Ctrl-C, or incomplete whatever --strict says."""
        return self.exit_code(strict=True) or EXIT_INCOMPLETE

    def why(self) -> str:
        """Why the stream ended, in words, with what was missing."""
        text = self.stop_reason.replace("_", " ")
        if self.missing_rows:
            text += f", {self.missing_rows} of {self.expected_rows} rows missing"
        return text

    def report(self) -> dict[str, Any]:
        """The report's `run.stream` section."""
        return {
            "stop_reason": self.stop_reason,
            "messages": self.messages,
            "rows_expected": self.expected_rows,
            "rows_received": self.rows_received,
            "duplicates_dropped": self.duplicates,
            "undecodable_skipped": self.undecodable,
            "undecodable_examples": self.undecodable_examples,
            "foreign_messages": self.foreign_messages,
            "foreign_run_ids": sorted(self.foreign_runs)[:MAX_FOREIGN_RUNS],
            "missing_rows": self.missing_rows,
            "missing_ranges": self.missing_ranges,
            "missing_by_venue": self.missing_by_venue,
            "venue_gaps": self.venue_gaps,
            "resumed_from_checkpoint": self.resumed_from_checkpoint,
            "replays_seen": self.replays_seen,
            "wire": self.wire,
            "ingest_msgs_per_second": round(self.ingest_rate, 1),
            "ingest_rows_per_second": round(self.ingest_row_rate, 1),
        }


@dataclass
class StreamResult:
    frame: pd.DataFrame
    start: dict[str, Any]
    stats: StreamStats


class Message(Protocol):
    """What the state machine reads of a consumed message (confluent_kafka.Message has it)."""

    def value(self) -> bytes | None: ...
    def headers(self) -> Any: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...


class RowListener(Protocol):
    """Gets the replay as it arrives (the streaming router's Kafka edge, allocator.kafka.live): every new
    row, calibration history included, as the decoded Arrow table (no pandas conversion per poll: it
    costs milliseconds, and a paced stream brings a row a poll), with the time its poll returned
    (time.monotonic())."""

    def replay_started(self, start: dict[str, Any]) -> None: ...

    def rows_arrived(self, rows: pa.Table, polled_at: float) -> None: ...

    def replay_ended(self, polled_at: float) -> None: ...


class Phase(enum.Enum):
    WAITING = "waiting for a replay's start message"
    RECEIVING = "receiving a replay's rows"
    DRAINING = "every row arrived; one more poll for a newer replay"


@dataclass(frozen=True)
class StopRules:
    idle_timeout: float = 30.0  # seconds of silence before giving up
    stop_after_rows: int | None = None  # stop once this many rows arrived (tests, benches)


class ReplayState:
    """One consumer's view of the replay it reads: phase, rows kept, dedupe set, checkpoint metadata."""

    def __init__(
        self,
        rules: StopRules,
        *,
        levels: int | None = None,
        on_rows: Callable[[pd.DataFrame], None] | None = None,
        checkpoint: Checkpoint | None = None,
        now: float | None = None,
        listener: RowListener | None = None,
    ) -> None:
        self.rules, self.levels, self.on_rows, self.checkpoint = rules, levels, on_rows, checkpoint
        self.listener = listener
        self.polled_at = 0.0  # when the poll being applied returned (time.monotonic())
        self.told_end = False
        self.stats = StreamStats()
        self.phase = Phase.WAITING
        self.start: dict[str, Any] = {}
        self.batches: list[pa.Table] = []  # the rows kept, per poll, in Arrow until result()
        self.seen = np.zeros(0, dtype=bool)  # by replay index: has the row arrived
        self.end_rows: int | None = None
        self.meta: CheckpointMeta = empty_meta()
        self.last_message = time.monotonic() if now is None else now

    # ------------------------------------------------------------------------------ transitions

    def resume(self, meta: CheckpointMeta, batches: list[pa.Table]) -> None:
        """Continue from a checkpoint: its replay, rows and offsets, as if never interrupted."""
        self.meta, self.start, self.batches = meta, meta["start"], batches
        self.seen = seen_rows(batches, int(self.start["rows"]))
        self.stats.rows_received = int(self.seen.sum())
        self.end_rows = meta.get("end_rows")
        self.stats.resumed_from_checkpoint = True
        self.stats.wire = str(self.start.get("wire", WIRE_JSON))
        self.phase = Phase.RECEIVING
        if self.listener is not None:
            self.listener.replay_started(self.start)
            if batches:
                self.listener.rows_arrived(
                    pa.concat_tables([plain_table(b) for b in batches]), time.monotonic()
                )

    def begin_replay(self, doc: dict[str, Any]) -> None:
        """A start message of a run other than ours: read that replay from scratch."""
        if self.start:
            log.info("a newer replay (run %s) follows on the topic: starting over", doc["run_id"])
        self.phase = Phase.RECEIVING
        self.start, self.batches, self.end_rows = doc, [], None
        self.seen = np.zeros(int(doc["rows"]), bool)
        self.stats.rows_received = self.stats.duplicates = 0
        self.stats.replays_seen += 1
        self.stats.wire = str(doc.get("wire", WIRE_JSON))
        self.meta["start"], self.meta["segments"], self.meta["end_rows"] = doc, [], None
        if self.checkpoint:
            self.checkpoint.reset()
        self.told_end = False
        if self.listener is not None:
            self.listener.replay_started(doc)

    def count_foreign(self, runs: dict[str, int]) -> None:
        """Messages of other runs, read while following ours: counted, by run id, never kept."""
        for run, count in runs.items():
            self.stats.foreign_messages += count
            if run in self.stats.foreign_runs or len(self.stats.foreign_runs) < MAX_FOREIGN_RUNS:
                self.stats.foreign_runs[run] = self.stats.foreign_runs.get(run, 0) + count

    def end_replay(self, rows: int) -> None:
        """Our replay's end message: how many rows it holds."""
        self.end_rows = rows
        self.meta["end_rows"] = rows

    # ------------------------------------------------------------------------------ one poll

    def start_clock(self, now: float) -> None:
        """Polling begins (after partitions were assigned): the idle timeout counts from here."""
        self.last_message = now

    def poll_size(self, batch: int, *, takes_what_is_ready: bool = False) -> int:
        """How many messages to ask the next poll for. consume() returns early only once that many are
        ready, so: about `batch` rows' worth once the start says how many rows a message holds, but no
        more than the replay can still send (its missing rows and the end message: the last poll then
        returns as soon as they are in instead of after the timeout) or the stop rules still want; one
        while waiting for a start, so that the start is read, and the size set, as soon as it arrives.

        A caller that takes what is ready without waiting (the streaming router's polls) loses nothing by
        asking for more, so its polls count a row per message, which is what a paced `auto` replay sends:
        sized for full Arrow messages, they took ~35 rows a poll and a backlog (a resumed consumer) took
        ten times longer to catch up."""
        if not self.start:
            return 1
        per_message = 1 if takes_what_is_ready else int(self.start.get("rows_per_message", 1))
        left = int(self.start["rows"]) - self.stats.rows_received
        if self.rules.stop_after_rows is not None:
            left = min(left, self.rules.stop_after_rows - self.stats.rows_received)
        return max(1, min(batch // per_message, -(-left // per_message) + (self.end_rows is None)))

    def take(self, messages: Sequence[Message], now: float, *, events: bool) -> dict[str, int]:
        """Apply one poll's messages (error events already removed; `events`: whether the poll returned
        anything, EOF events included). Returns the next offset per partition, to commit once saved."""
        if events:
            self.last_message = now
        self.polled_at = now
        if messages and self.stats.first_message_at is None:
            self.stats.first_message_at = time.perf_counter()
        rows, next_offsets, new_run = self._sort(messages)
        batch = self._keep_rows(rows)
        if next_offsets or new_run:
            self.meta["offsets"].update(next_offsets)
            if self.checkpoint:
                self.checkpoint.save(batch, self.meta)
        if messages:
            self.stats.last_message_at = time.perf_counter()
        if self.listener is not None and not self.told_end and self._all_rows_arrived():
            self.told_end = True
            self.listener.replay_ended(now)
        return next_offsets

    def _sort(self, messages: Sequence[Message]) -> tuple[dict[str, list[bytes]], dict[str, int], bool]:
        """Control messages act at once; rows are collected by wire format (those before a newer start
        are dropped)."""
        rows: dict[str, list[bytes]] = {}
        next_offsets: dict[str, int] = {}
        new_run = False
        for msg in messages:
            self.stats.messages += 1
            next_offsets[str(msg.partition())] = (msg.offset() or 0) + 1
            value = msg.value()
            kind, wire, schema = message_headers(msg)
            if kind is None and value is not None and value.startswith((ROW_PREFIX, ARROW_CONTINUATION)):
                kind = KIND_ROW  # no headers (kcat -P): a row by its first bytes
            if schema not in (None, SCHEMA_VERSION):
                self._other_schema(kind, schema, value)
            elif kind == KIND_ROW and value is not None:
                wire = wire or (WIRE_ARROW if value.startswith(ARROW_CONTINUATION) else WIRE_JSON)
                if wire in WIRE_FORMATS:
                    rows.setdefault(wire, []).append(value)
                else:
                    self.stats.undecodable += 1
                    self._example(f"row message in unknown format {wire[:20]!r}")
            elif kind == KIND_START and (doc := self._control(value, KIND_START)) is not None:
                if (version := doc.get("schema", SCHEMA_VERSION)) != SCHEMA_VERSION:
                    self._other_schema(kind, str(version), value)
                if doc.get("run_id") != self.start.get("run_id"):
                    self.begin_replay(doc)
                    rows, new_run = {}, True
            elif kind == KIND_END and (doc := self._control(value, KIND_END)) is not None:
                if doc.get("run_id") == self.start.get("run_id"):
                    self.end_replay(int(doc["rows"]))
                elif self.start:
                    self.count_foreign({str(doc["run_id"]): 1})
            elif kind not in (KIND_START, KIND_END):
                self.stats.undecodable += 1
        return rows, next_offsets, new_run

    def _other_schema(self, kind: bytes | None, schema: str, value: bytes | None) -> None:
        """A message of another layout version: a start stops the consumer (it cannot follow that replay
        and must not wait for it in silence), anything else is undecodable."""
        if kind == KIND_START:
            doc, _problem = parse_control(value, KIND_START)
            run = f" (run {str(doc['run_id'])[:MAX_RUN_ID_SHOWN]})" if doc is not None else ""
            raise WireError(
                f"a replay{run} is written in wire schema {schema[:40]!r} but this consumer reads "
                f"{SCHEMA_VERSION!r}: replay it with this version's kafka_producer.py, or read it with the "
                "version that wrote it"
            )
        self.stats.undecodable += 1
        self._example(f"message of wire schema {schema[:40]!r} (this consumer reads {SCHEMA_VERSION!r})")

    def _control(self, value: bytes | None, kind: bytes) -> dict[str, Any] | None:
        """A start/end control document, or None (then it is counted as undecodable, never fatal): an
        end must also fit our replay's start."""
        doc, problem = parse_control(value, kind)
        if doc is not None and kind == KIND_END and doc["run_id"] == self.start.get("run_id"):
            announced = int(self.start["rows"])
            if doc["rows"] > announced:
                problem = f"end message: rows {doc['rows']} > the start's {announced}"
                doc = None
        if doc is None:
            self.stats.undecodable += 1
            self._example(problem)
        return doc

    def _example(self, *problems: str) -> None:
        """Keep the first few reasons for undecodable messages, for the report."""
        room = max(0, MAX_EXAMPLES - len(self.stats.undecodable_examples))
        self.stats.undecodable_examples += [p for p in problems if p][:room]

    def _keep_rows(self, rows: dict[str, list[bytes]]) -> pa.Table | None:
        """Decode the poll's rows (only the columns needed), drop those already seen, hand the new ones
        on; returns the new ones. They stay in Arrow: result() converts all of them at once."""
        if not rows:
            return None
        if not self.start:
            # rows of a replay whose start we never saw
            self.stats.undecodable += sum(len(values) for values in rows.values())
            return None
        replay_columns = list(self.start["columns"])
        columns = wanted_columns(replay_columns, self.levels)
        run_id = str(self.start["run_id"])
        tables = []
        for wire, values in rows.items():
            decoded = (
                decode_arrow_table(values, columns, replay_columns, run_id=run_id)
                if wire == WIRE_ARROW
                else decode_rows_table(values, columns, run_id=run_id)
            )
            self.stats.undecodable += decoded.undecodable
            self._example(*decoded.errors)
            self.count_foreign(decoded.foreign)
            tables.append(decoded.table)
        batch = drop_duplicates(
            pa.concat_tables(tables) if len(tables) > 1 else tables[0], self.seen, self.stats
        )
        if batch.num_rows:
            self.batches.append(batch)
            if self.on_rows is not None:
                deliver_window_rows(self.on_rows, frame_from_tables([batch], columns), self.start)
            if self.listener is not None:
                self.listener.rows_arrived(batch, self.polled_at)
        return batch

    # ------------------------------------------------------------------------------ stop rules

    def stop_reason(self, now: float, events: bool) -> str | None:
        """After a poll (`events`: it returned anything): why to stop, or None to keep polling."""
        if self.rules.stop_after_rows is not None and self.stats.rows_received >= self.rules.stop_after_rows:
            return "stopped_early"
        if self._all_rows_arrived():
            if self.phase is not Phase.DRAINING:
                self.phase = Phase.DRAINING  # look once more: a newer replay may be right behind
            elif not events:
                return "end_of_stream"
        if now - self.last_message > self.rules.idle_timeout:
            return "idle_timeout" if self.start else "idle_timeout_no_replay"
        return None

    def _all_rows_arrived(self) -> bool:
        return self.end_rows is not None and bool(self.start) and self.stats.rows_received >= self.end_rows

    # ------------------------------------------------------------------------------ the result

    def result(self) -> StreamResult:
        """The rows in replay order (loader columns), with the gaps found and attributed to venues."""
        stats, start = self.stats, self.start
        started = time.perf_counter()
        stats.expected_rows = (
            self.end_rows if self.end_rows is not None else (int(start["rows"]) if start else None)
        )
        if start:
            find_gaps(self.seen, stats)
        columns = wanted_columns(start.get("columns", list(REQUIRED_COLUMNS)), self.levels)
        frame = frame_from_tables(self.batches, columns)
        if len(frame):
            frame = frame.sort_values(REPLAY_INDEX, kind="stable").reset_index(drop=True)
        if start and stats.missing_rows:
            attribute_gaps(frame, start, stats)
        frame = frame.drop(columns=[REPLAY_INDEX, PREVIOUS_SEQUENCE])
        stats.assembly_seconds = time.perf_counter() - started
        return StreamResult(frame=frame, start=start, stats=stats)


# ---------------------------------------------------------------------------------- helpers


def deliver_window_rows(
    on_rows: Callable[[pd.DataFrame], None], batch: pd.DataFrame, start: dict[str, Any]
) -> None:
    """Live routing sees only the window: calibration history (ts_event before the window start) is
    for estimation, and a faithful --live router must print the decisions it printed without it."""
    if int(start.get("history_rows", 0)) > 0:
        batch = batch.loc[batch["ts_event"].to_numpy() >= int(start["window_start_ns"])]
        if not len(batch):
            return
    on_rows(batch)


def wanted_columns(columns: list[str], levels: int | None) -> list[str]:
    """The replay's columns down to `levels` book levels (None = all)."""
    if levels is None:
        return list(columns)
    return [c for c in columns if not re.search(r"_(\d\d)$", c) or int(c[-2:]) < levels]


def parse_control(value: bytes | None, kind: bytes) -> tuple[dict[str, Any] | None, str]:
    """A start/end control document, or None and why it is not one (codec.control_problem's bounds)."""
    try:
        doc = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError):
        return None, f"{kind.decode()} message: not JSON"
    problem = control_problem(doc, kind)
    return (None, f"{kind.decode()} message: {problem}") if problem else (doc, "")


def message_headers(msg: Message) -> tuple[bytes | None, str | None, str | None]:
    """The message's kind, format and schema headers (None for those it lacks)."""
    kind = wire = schema = None
    for name, value in msg.headers() or ():
        if name == HEADER_KIND:
            kind = value
        elif name == HEADER_FORMAT:
            wire = _text(value)
        elif name == HEADER_SCHEMA:
            schema = _text(value)
    return kind, wire, schema


def _text(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value or ""


def drop_duplicates(table: pa.Table, seen: np.ndarray, stats: StreamStats) -> pa.Table:
    """Keep rows whose replay index is new (a producer retry or a doubled replay would repeat them)."""
    index = table.column(REPLAY_INDEX).to_numpy()
    valid = (index >= 0) & (index < len(seen))
    fresh = valid.copy()
    fresh[valid] = ~seen[index[valid]]
    # Within the batch itself, only the first occurrence of an index counts (nothing to look for when
    # the indices increase, as a replay read in order has them).
    if len(index) > 1 and not bool(np.all(index[1:] > index[:-1])):
        _, first = np.unique(index, return_index=True)
        once = np.zeros(len(index), dtype=bool)
        once[first] = True
        fresh &= once
    keep = fresh
    stats.duplicates += int(np.count_nonzero(valid & ~keep))
    stats.undecodable += int(np.count_nonzero(~valid))
    seen[index[keep]] = True
    stats.rows_received += int(keep.sum())
    return table if keep.all() else table.filter(pa.array(keep))


def attribute_gaps(frame: pd.DataFrame, start: dict[str, Any], stats: StreamStats) -> None:
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
    for _, rows in frame.groupby("publisher_id", observed=True):
        sequences = np.sort(rows["sequence"].to_numpy())
        prev = rows[PREVIOUS_SEQUENCE].to_numpy()
        own = rows["sequence"].to_numpy()
        lost = (prev >= 0) & ~np.isin(prev, sequences)
        for before, predecessor in zip(own[lost], prev[lost], strict=True):
            earlier = sequences[sequences < predecessor]
            stats.venue_gaps.append(
                {
                    "publisher_id": int(rows["publisher_id"].iloc[0]),
                    "after_sequence": int(earlier[-1]) if len(earlier) else None,
                    "before_sequence": int(before),
                }
            )
    stats.venue_gaps = stats.venue_gaps[:50]


def find_gaps(seen: np.ndarray, stats: StreamStats) -> None:
    """The replay indices that never arrived: their count and (up to 20) ranges."""
    missing = np.flatnonzero(~seen)
    stats.missing_rows = len(missing)
    if len(missing):
        breaks = np.flatnonzero(np.diff(missing) > 1)
        starts = np.r_[missing[0], missing[breaks + 1]]
        ends = np.r_[missing[breaks], missing[-1]]
        stats.missing_ranges = [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)][:20]
