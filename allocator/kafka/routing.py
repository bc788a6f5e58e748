"""Child orders and simulated fills on Kafka topics (--orders-topic, --fills-topic; docs/routing_topics.md).

A sink of the streaming engine: each decision's child orders go to the orders topic and its fills to the
fills topic as soon as they are known, keyed by the parent id (so one parent's messages stay in order on
one partition), as compact JSON with `schema` and `kind` headers. The producer is idempotent; every id is
deterministic, so a re-run or a resumed consumer writes the same ids and readers dedupe on them. With a
transactional id, each poll's messages and the consumer's offsets commit in one transaction
(exactly-once consume → produce where the broker honours transactions: docs/brokers.md).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from allocator.errors import BrokerError
from allocator.kafka.admin import ensure_topic
from allocator.kafka.settings import LIBRDKAFKA_LOG, new_client, producer_settings, redact
from allocator.stream.events import ROUTING_SCHEMA, DecisionEvent, Fill

log = logging.getLogger(__name__)
FLUSH_SECONDS = 30.0
TXN_SECONDS = 30.0
SCAN_SECONDS = 60.0  # reading the ids already committed on the routing topics (transactional mode)


class RoutingPublisher:
    """Writes orders and fills (a Sink of allocator.stream.engine)."""

    def __init__(
        self,
        settings: dict[str, str],
        orders_topic: str | None,
        fills_topic: str | None,
        *,
        transactional_id: str | None = None,
    ) -> None:
        self.settings, self.orders_topic, self.fills_topic = settings, orders_topic, fills_topic
        for topic in (orders_topic, fills_topic):
            if topic:
                ensure_topic(settings, topic)
        conf = producer_settings(settings) | {"error_cb": self._on_error}
        if transactional_id:
            conf |= {"transactional.id": transactional_id, "transaction.timeout.ms": 60_000}
        self.producer = new_client(Producer, conf, settings)
        self.transactional = bool(transactional_id)
        self.failed: list[str] = []
        self.orders = self.fills_sent = self.delivered = 0
        self.transactions = 0
        self.closed = False
        self.committed: set[str] = set()  # ids a predecessor with this transactional id committed
        self.skipped = 0
        if self.transactional:
            try:
                self.producer.init_transactions(TXN_SECONDS)
            except KafkaException as exc:
                raise BrokerError(
                    f"the broker refused transactions ({redact(str(exc.args[0]), settings)}); "
                    "drop --transactional-id"
                ) from None
            # After init_transactions: the predecessor is fenced and its open transaction aborted.
            self.committed = committed_ids(settings, [t for t in {orders_topic, fills_topic} if t])
            self.producer.begin_transaction()

    def _on_error(self, err: KafkaError) -> None:
        log.warning("kafka (routing topics): %s", redact(str(err), self.settings))

    def _delivered(self, err: KafkaError | None, _msg: Any) -> None:
        if err is None:
            self.delivered += 1
        elif len(self.failed) < 5:
            self.failed.append(redact(str(err), self.settings))

    def _send(self, topic: str, key: str, kind: str, doc_id: str, doc: dict[str, Any]) -> bool:
        """Hand one message to the producer; False when a predecessor already committed its id."""
        if doc_id in self.committed:
            self.skipped += 1
            return False
        value = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
        headers: list[tuple[str, str | bytes | None]] = [
            ("schema", ROUTING_SCHEMA.encode()),
            ("kind", kind.encode()),
        ]
        while True:
            try:
                self.producer.produce(
                    topic, value=value, key=key.encode(), headers=headers, on_delivery=self._delivered
                )
                break
            except BufferError:
                self.producer.poll(0.1)
        self.producer.poll(0)
        return True

    # ------------------------------------------------------------------ Sink

    def decision(self, event: DecisionEvent) -> None:
        if self.orders_topic:
            for order in event.orders:
                self.orders += self._send(
                    self.orders_topic, order.parent_id, "order", order.order_id, order.message()
                )
        self.fills(event.fills)

    def fills(self, fills: list[Fill]) -> None:
        if self.fills_topic:
            for fill in fills:
                self.fills_sent += self._send(
                    self.fills_topic, fill.parent_id, "fill", fill.fill_id, fill.message()
                )

    def commit_offsets(self, consumer: Consumer, offsets: list[TopicPartition]) -> None:
        """Transactional mode: this poll's messages and the consumer's next offsets, atomically."""
        if self.closed:
            consumer.commit(offsets=offsets, asynchronous=True)
            return
        self.producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), TXN_SECONDS)
        self.producer.commit_transaction(TXN_SECONDS)
        self.transactions += 1
        self.producer.begin_transaction()

    def close(self) -> None:
        """Flush (commit the open transaction) and fail loudly if anything was not delivered."""
        if self.closed:
            return
        self.closed = True
        if self.transactional:
            self.producer.commit_transaction(TXN_SECONDS)
            self.transactions += 1
        left = self.producer.flush(FLUSH_SECONDS)
        sent = self.orders + self.fills_sent
        if left or self.failed or self.delivered < sent:
            why = "; ".join(self.failed) or f"{left} still queued after {FLUSH_SECONDS:g} s"
            raise BrokerError(
                f"routing topics: {sent - self.delivered} of {sent} messages not delivered ({why})"
            )

    def report(self) -> dict[str, Any]:
        return {
            "orders_topic": self.orders_topic,
            "fills_topic": self.fills_topic,
            "orders_produced": self.orders,
            "fills_produced": self.fills_sent,
            "delivered": self.delivered,
            "transactions": self.transactions if self.transactional else None,
            "already_committed": self.skipped if self.transactional else None,
        }


def committed_ids(settings: dict[str, str], topics: list[str], timeout: float = SCAN_SECONDS) -> set[str]:
    """Every order and fill id on `topics` that a read_committed reader sees (all of each partition, up to
    its end): what a resumed transactional publisher must not send again."""
    consumer = new_client(
        Consumer,
        {
            "group.id": f"sor-routing-scan-{uuid.uuid4().hex[:12]}",  # never commits
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "logger": LIBRDKAFKA_LOG,
        }
        | settings,
        settings,
    )
    ids: set[str] = set()
    try:
        pending: set[tuple[str, int]] = set()
        for topic in topics:
            info = consumer.list_topics(topic, timeout=10).topics[topic]
            pending |= {(topic, p) for p in info.partitions}
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in sorted(pending)])
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"reading the ids already committed on {', '.join(topics)} took over {timeout:g} s "
                    f"({len(ids)} read so far); is another transaction on these topics left open?"
                )
            for msg in consumer.consume(num_messages=10_000, timeout=0.2):
                error = msg.error()
                if error is None:
                    ids.add(_message_id(msg.value()))
                elif error.code() == KafkaError._PARTITION_EOF:
                    pending.discard((msg.topic() or "", msg.partition() or 0))
                else:
                    raise BrokerError(
                        f"reading the routing topics failed: {redact(str(error), settings)}; is the broker up?"
                    )
    except KafkaException as exc:
        raise BrokerError(f"reading the routing topics failed: {redact(str(exc), settings)}") from None
    finally:
        consumer.close()
    ids.discard("")
    return ids


def _message_id(value: bytes | None) -> str:
    """An order's or a fill's id ('' for anything else on the topic)."""
    try:
        doc = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(doc, dict):
        return ""
    return str(doc.get("fill_id") or doc.get("order_id") or "")
