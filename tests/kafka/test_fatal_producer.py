"""A fatally failed idempotent producer is replaced, by one rule (producer.ProducerSession), in the single-
and the multi-symbol replay: without a broker, a fake librdkafka producer turns fatal part-way (through
error_cb, as librdkafka reports a broker that lost acknowledged messages, or by produce() raising), the
broker loses a message, no delivery report comes for the others, and the replay must still complete with
every row counted as delivered once. Read back through the consumer's own state machine (dropping copies
by replay index), each partition then holds every row of its symbols exactly once, in order.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from confluent_kafka import KafkaError, KafkaException

from allocator.data.loader import MarketData, load
from allocator.data.window import WindowSpec
from allocator.errors import BrokerError
from allocator.kafka import producer as producer_module
from allocator.kafka.codec import HEADER_KIND, KIND_ROW, KIND_START, REPLAY_INDEX
from allocator.kafka.multi import replay_symbols
from allocator.kafka.producer import MAX_PRODUCER_SESSIONS, replay, replay_frame
from allocator.kafka.replay_state import ReplayState, StopRules, message_headers
from tests.kafka_helpers import DATASET, REPO

MULTI = REPO / "data" / "multi_symbol.csv.gz"
WINDOW = WindowSpec("13:36:32", "13:37:00")  # 3-4 Arrow messages a symbol at speed 0
SETTINGS = {"bootstrap.servers": "fake:9092"}
# (row messages before the session turns fatal, how librdkafka says so), wire
CASES = [((150, "error_cb"), "json"), ((150, "produce"), "json"), ((2, "error_cb"), "arrow")]
CASE_IDS = ["error_cb-json", "produce-json", "error_cb-arrow"]


def fatal() -> KafkaError:
    return KafkaError(KafkaError._FATAL, "test: idempotent producer fenced", fatal=True)


class FakeBroker:
    """What the fake producers write to: a log per partition, appended to as messages are produced (their
    delivery reports come with the next poll). The first `fatal_sessions` sessions turn fatal at their
    row message after the first `fail_after`, and the broker loses the last message it had."""

    def __init__(self, fail_after: int, how: str, fatal_sessions: int = 1) -> None:
        self.fail_after, self.how, self.fatal_sessions = fail_after, how, fatal_sessions
        self.log: dict[int, list[Message]] = defaultdict(list)
        self.sessions = 0

    def producer(self, conf: dict[str, Any]) -> FakeProducer:
        assert conf["enable.idempotence"] is True
        self.sessions += 1
        return FakeProducer(self, conf["error_cb"], fails=self.sessions <= self.fatal_sessions)


@dataclass
class Message:
    """The parts of a consumed message the replay state machine reads, and its key."""

    at: int  # partition
    position: int  # offset
    key: bytes
    payload: bytes
    header_list: list

    def value(self) -> bytes:
        return self.payload

    def headers(self) -> list:
        return self.header_list

    def partition(self) -> int:
        return self.at

    def offset(self) -> int:
        return self.position


class FakeProducer:
    """confluent_kafka.Producer as the replays use it: produce, poll (delivery reports), len, purge."""

    def __init__(self, broker: FakeBroker, error_cb: Any, *, fails: bool) -> None:
        self.broker, self.error_cb, self.fails = broker, error_cb, fails
        self.queue: list[tuple[int, Any]] = []  # partition and delivery callback, until the next poll
        self.rows = 0  # row messages handed over
        self.fatal = False

    def list_topics(self, topic: str, timeout: float) -> None:
        return None

    def produce(
        self, topic: str, *, value: bytes, key: bytes, headers: list, on_delivery: Any, **kw: Any
    ) -> None:
        if self.fatal:
            raise KafkaException(fatal())
        row = dict(headers)[HEADER_KIND] == KIND_ROW
        if self.fails and row and self.rows == self.broker.fail_after:
            self.fatal = True
            if self.queue:  # the broker lost the last message it had (and said nothing)
                self.broker.log[self.queue[-1][0]].pop()
            self.queue.clear()  # no delivery report will ever come
            if self.broker.how == "produce":
                raise KafkaException(fatal())
            return  # "error_cb": librdkafka says so at the next poll; this message is dropped too
        self.rows += row
        partition = kw.get("partition") or 0
        log = self.broker.log[partition]
        log.append(Message(partition, len(log), key, value, headers))
        self.queue.append((partition, on_delivery))

    def poll(self, timeout: float = 0) -> int:
        if self.fatal:
            self.error_cb(fatal())
            return 0
        served = len(self.queue)
        for _partition, on_delivery in self.queue:
            on_delivery(None, None)
        self.queue.clear()
        return served

    def purge(self) -> None:
        self.queue.clear()

    def __len__(self) -> int:
        return len(self.queue)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> FakeBroker:
    broker = FakeBroker(*request.param)
    monkeypatch.setattr(producer_module, "Producer", broker.producer)
    return broker


def read_back(messages: list[Message], data: MarketData) -> ReplayState:
    """One symbol's messages through the consumer's state machine; its rows must be the replay's, each
    once and (keeping the first copy of each) in the order sent."""
    state = ReplayState(StopRules())
    assert message_headers(messages[0])[0] == KIND_START
    state.take(messages, 0.0, events=True)
    result = state.result()
    sent, _history = replay_frame(data)
    assert result.stats.missing_rows == 0 and result.stats.rows_received == len(sent) == state.end_rows
    np.testing.assert_array_equal(result.frame["ts_event"].to_numpy(), sent["ts_event"].to_numpy())
    first_copies = [int(n) for n in np.concatenate([b[REPLAY_INDEX].to_numpy() for b in state.batches])]
    assert first_copies == sorted(first_copies) == list(range(len(sent)))
    return state


@pytest.mark.parametrize(("fake", "wire"), CASES, ids=CASE_IDS, indirect=["fake"])
def test_multi_symbol_replay_replaces_a_fatal_producer(fake: FakeBroker, wire: str):
    datasets = {symbol: load(MULTI, WINDOW, symbol=symbol) for symbol in ("AAPL", "MSFT", "NVDA")}
    stats = replay_symbols(datasets, SETTINGS, "multi", partitions=2, speed=0, wire=wire)
    assert fake.sessions == 2  # one replacement, then the replay ran to the end
    summary = stats.summary("multi", 2, 0)
    assert (
        summary["rows_delivered"]
        == summary["rows"]
        == sum(len(replay_frame(d)[0]) for d in datasets.values())
    )
    duplicates = 0
    for row in summary["symbols"]:
        assert row["rows_delivered"] == row["rows"]  # counted once, not once per session
        log = [m for m in fake.log[row["partition"]] if m.key == row["symbol"].encode()]
        state = read_back(log, datasets[row["symbol"]])
        assert state.start["run_id"] == row["run_id"]  # the same replay, sent again
        duplicates += state.stats.duplicates
    assert duplicates > 0  # the first session's rows did reach the log: the copies were dropped


@pytest.mark.parametrize(("fake", "wire"), CASES, ids=CASE_IDS, indirect=["fake"])
def test_single_replay_replaces_a_fatal_producer(fake: FakeBroker, wire: str):
    data = load(DATASET, WINDOW)
    stats = replay(data, SETTINGS, "single", speed=0, wire=wire)
    assert fake.sessions == 2
    assert stats.delivered == stats.rows == len(replay_frame(data)[0])
    assert read_back(fake.log[0], data).stats.duplicates > 0


@pytest.mark.parametrize("fake", [(10, "error_cb", MAX_PRODUCER_SESSIONS)], indirect=True)
def test_a_producer_that_keeps_failing_gives_up_with_one_line(fake: FakeBroker):
    datasets = {symbol: load(MULTI, WINDOW, symbol=symbol) for symbol in ("AAPL", "MSFT")}
    with pytest.raises(BrokerError, match=f"failed fatally {MAX_PRODUCER_SESSIONS} times") as raised:
        replay_symbols(datasets, SETTINGS, "multi", partitions=2, speed=0, wire="json")
    assert "\n" not in str(raised.value) and "check the broker's health" in str(raised.value)
    assert fake.sessions == MAX_PRODUCER_SESSIONS
