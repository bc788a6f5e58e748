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
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from allocator.errors import BrokerError
from allocator.kafka.admin import ensure_topic
from allocator.kafka.settings import new_client, producer_settings, redact
from allocator.stream.events import ROUTING_SCHEMA, DecisionEvent, Fill

log = logging.getLogger(__name__)
FLUSH_SECONDS = 30.0
TXN_SECONDS = 30.0


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
        if self.transactional:
            try:
                self.producer.init_transactions(TXN_SECONDS)
                self.producer.begin_transaction()
            except KafkaException as exc:
                raise BrokerError(
                    f"the broker refused transactions ({redact(str(exc.args[0]), settings)}); "
                    "drop --transactional-id"
                ) from None

    def _on_error(self, err: KafkaError) -> None:
        log.warning("kafka (routing topics): %s", redact(str(err), self.settings))

    def _delivered(self, err: KafkaError | None, _msg: Any) -> None:
        if err is None:
            self.delivered += 1
        elif len(self.failed) < 5:
            self.failed.append(redact(str(err), self.settings))

    def _send(self, topic: str, key: str, kind: str, doc: dict[str, Any]) -> None:
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

    # ------------------------------------------------------------------ Sink

    def decision(self, event: DecisionEvent) -> None:
        if self.orders_topic:
            for order in event.orders:
                self._send(self.orders_topic, order.parent_id, "order", order.message())
                self.orders += 1
        self.fills(event.fills)

    def fills(self, fills: list[Fill]) -> None:
        if self.fills_topic:
            for fill in fills:
                self._send(self.fills_topic, fill.parent_id, "fill", fill.message())
                self.fills_sent += 1

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
        }
