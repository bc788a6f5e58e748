"""A consumer-group member's bookkeeping without a broker: per-partition replay states, safe commit offsets,
revocation, and a replay read twice (re-delivery after a takeover)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka import TopicPartition

from allocator.kafka.group import GroupMember, GroupSettings
from allocator.kafka.replay_state import StreamResult
from tests.kafka.test_replay_state import FakeMessage, end, rows, start


@dataclass
class KeyedMessage(FakeMessage):
    """A fake message with a key (the symbol) and a partition, as the group member reads them."""

    symbol: bytes = b""

    def key(self) -> bytes:
        return self.symbol


def keyed(messages: list[FakeMessage], symbol: str, partition: int = 0) -> list[KeyedMessage]:
    return [KeyedMessage(m.payload, m.kind, partition, 0, symbol.encode()) for m in messages]


def replay(symbol: str, run_id: str, *indices: int, with_end: bool = True) -> list[KeyedMessage]:
    """A replay's messages (start, the given rows, end) keyed by `symbol`."""
    messages = [start(run_id), *rows(*indices, run_id=run_id)] + ([end(run_id)] if with_end else [])
    return keyed(messages, symbol)


def numbered(messages: list[KeyedMessage], first: int = 0) -> list[KeyedMessage]:
    for i, msg in enumerate(messages):
        msg.at_offset = first + i
    return messages


class FakeConsumer:
    def __init__(self) -> None:
        self.commits: list[list[tuple[int, int]]] = []

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append([(tp.partition, tp.offset) for tp in offsets])


def member(symbols: set[str] | None = None) -> tuple[GroupMember, list[tuple[str, int, StreamResult]]]:
    handed: list[tuple[str, int, StreamResult]] = []

    def on_complete(symbol: str, partition: int, result: StreamResult) -> dict[str, Any]:
        handed.append((symbol, partition, result))
        return {}

    settings = GroupSettings(topic="t", group="g", symbols=frozenset(symbols) if symbols else None)
    m = GroupMember({"bootstrap.servers": "x"}, settings, on_complete, lambda: False)
    m._on_assign(None, [TopicPartition("t", 0)])  # type: ignore[arg-type]
    return m, handed


def test_the_commit_never_passes_the_start_of_a_replay_that_is_not_reported():
    m, handed = member()
    a = replay("AAPL", "ra", 0, 1, 2, 3, 4, 5)
    b = replay("MSFT", "rb", 0, 1, 2, with_end=False)
    # Interleaved as the producer sends them: both starts first, then rows.
    messages = numbered([a[0], b[0], *a[1:4], *b[1:], *a[4:]])
    m._take(messages[:5])  # AAPL's start, MSFT's start, 3 AAPL rows
    assert m.partitions[0].safe_offset() == 0  # AAPL's start
    m._take(messages[5:])  # the rest: AAPL complete, MSFT still missing rows
    assert [(s, p) for s, p, _ in handed] == [("AAPL", 0)]
    assert handed[0][2].stats.complete and len(handed[0][2].frame) == 6
    assert m.partitions[0].safe_offset() == 1  # MSFT's start: AAPL no longer holds the commit back
    rest = numbered(keyed([*rows(3, 4, 5, run_id="rb"), end("rb")], "MSFT"), first=len(messages))
    m._take(rest)
    assert [s for s, _, _ in handed] == ["AAPL", "MSFT"]
    assert m.partitions[0].safe_offset() == rest[-1].at_offset + 1  # everything reported: past the end


def test_revocation_commits_the_safe_offset_and_drops_the_partition():
    m, _ = member()
    m._take(numbered(replay("AAPL", "ra", 0, 1, with_end=False), first=7))
    consumer = FakeConsumer()
    m._on_revoke(consumer, [TopicPartition("t", 0)])  # type: ignore[arg-type]
    assert consumer.commits == [[(0, 7)]]
    assert m.partitions == {}


def test_a_replay_read_again_after_a_takeover_is_handed_over_again_with_the_same_rows():
    first, handed_first = member()
    messages = numbered(replay("NVDA", "rn", 0, 1, 2, 3, 4, 5))
    first._take(messages)
    # The first member is killed before its commit goes out; the next one reads from the start again.
    second, handed_second = member()
    second._take(numbered(replay("NVDA", "rn", 0, 1, 2, 3, 4, 5)))
    assert handed_first[0][2].frame.equals(handed_second[0][2].frame)
    assert handed_first[0][2].start["run_id"] == handed_second[0][2].start["run_id"] == "rn"


def test_duplicated_rows_count_once_and_other_symbols_are_skipped():
    m, handed = member(symbols={"AAPL"})
    a = replay("AAPL", "ra", 0, 1, 1, 2, 3, 3, 4, 5)
    other = replay("TSLA", "rt", 0, 1, 2, 3, 4, 5)
    m._take(numbered([*a, *other]))
    assert [s for s, _, _ in handed] == ["AAPL"]
    assert handed[0][2].stats.duplicates == 2
    assert "TSLA" not in m.partitions[0].streams
    assert m.partitions[0].safe_offset() == len(a) + len(other)


def test_rows_of_an_already_reported_replay_seen_without_their_start_are_not_routed():
    m, handed = member()
    # Re-read from a committed offset past AAPL's start (AAPL was reported) but before MSFT's.
    m._take(
        numbered([*keyed(rows(4, 5, run_id="ra"), "AAPL"), *replay("MSFT", "rb", 0, 1, 2, 3, 4, 5)], first=10)
    )
    assert [s for s, _, _ in handed] == ["MSFT"]
