"""Broker administration before a replay: is a broker there, and does the topic exist as we need it."""

from __future__ import annotations

import contextlib
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from allocator.errors import BrokerError, BrokerSettingError, SettingError
from allocator.kafka.settings import LIBRDKAFKA_LOG, redact

TOPIC_CONFIG = {"retention.ms": "-1"}  # historical timestamps must not be expired by retention


def admin_client(settings: dict[str, str], extra: dict[str, str] | None = None) -> AdminClient:
    """An admin client on the user's settings (plus `extra`), logging through the librdkafka logger."""
    conf: dict[str, str | int | float | bool] = {**settings, **(extra or {})}
    return AdminClient(conf, logger=LIBRDKAFKA_LOG)


def check_reachable(settings: dict[str, str], timeout: float) -> None:
    """Fail fast with one line when no broker answers (librdkafka would otherwise retry forever)."""
    admin = admin_client(settings, {"socket.connection.setup.timeout.ms": str(int(timeout * 1000))})
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=max(0.5, min(2.0, deadline - time.monotonic())))
            return
        except KafkaException as exc:
            last = redact(str(exc.args[0] if exc.args else exc), settings)
            time.sleep(0.2)
    where = (
        f"cannot reach Kafka at {settings['bootstrap.servers']} within {timeout:g} s ({last or 'no answer'})"
    )
    raise BrokerSettingError(
        SettingError.literal(where)
        + "; start one with `make broker` or `docker compose up -d`, or pass {bootstrap_servers}",
        bootstrap_servers="bootstrap_servers",
    )


def ensure_topic(
    settings: dict[str, str],
    topic: str,
    partitions: int = 1,
    config: dict[str, str] | None = None,
    timeout: float = 10.0,
    exact_partitions: bool = False,
) -> bool:
    """Create `topic` (unlimited retention by default) if it is missing and wait until it is visible.

    Returns True when it was created. Retention matters: noida-db, like Kafka, expires messages by
    their timestamps, so historical market data in a default-retention topic disappears within
    seconds. `exact_partitions` refuses an existing topic with another partition count (a restarted
    Tansu auto-creates topics with 4 partitions, which would break per-partition ordering).
    """
    admin = admin_client(settings)
    new = NewTopic(
        topic, num_partitions=partitions, replication_factor=1, config=dict(config or TOPIC_CONFIG)
    )
    created = True
    try:
        admin.create_topics([new], request_timeout=timeout)[topic].result(timeout=timeout)
    except KafkaException as exc:
        error = exc.args[0]
        if not (isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS):
            raise BrokerError(f"cannot create topic {topic!r}: {redact(str(error), settings)}") from None
        created = False
    _wait_until_visible(admin, topic, partitions if exact_partitions else None, timeout)
    return created


def _wait_until_visible(admin: AdminClient, topic: str, partitions: int | None, timeout: float) -> None:
    """Metadata can lag the CreateTopics answer (producers would see UNKNOWN_TOPIC): wait for it, and
    check the partition count if one is required."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(KafkaException):
            meta = admin.list_topics(topic=topic, timeout=min(2.0, timeout)).topics.get(topic)
            if meta is not None and meta.error is None and meta.partitions:
                if partitions is not None and len(meta.partitions) != partitions:
                    raise BrokerError(
                        f"topic {topic!r} has {len(meta.partitions)} partitions, expected {partitions}; "
                        "delete it (or restart the broker) and retry"
                    )
                return
        if time.monotonic() > deadline:
            raise BrokerError(f"topic {topic!r} is not visible after {timeout:g} s; is the broker healthy?")
        time.sleep(0.1)
