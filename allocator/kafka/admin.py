"""Broker administration before a replay: is a broker there, and does the topic exist as we need it."""

from __future__ import annotations

import contextlib
import math
import socket
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from allocator.errors import BrokerError, BrokerSettingError, SettingError
from allocator.kafka.settings import LIBRDKAFKA_LOG, new_client, redact

MIN_CONNECT_MS = 1000  # librdkafka's lower bound for socket.connection.setup.timeout.ms
TOPIC_CONFIG = {"retention.ms": "-1"}  # historical timestamps must not be expired by retention


def admin_client(settings: dict[str, str], extra: dict[str, Any] | None = None) -> AdminClient:
    """An admin client on the user's settings (plus `extra`), logging through the librdkafka logger."""
    conf: dict[str, Any] = {**settings, **(extra or {}), "logger": LIBRDKAFKA_LOG}
    return new_client(AdminClient, conf, settings)


def check_reachable(settings: dict[str, str], timeout: float) -> None:
    """Fail fast with one line when no broker answers (librdkafka would otherwise retry forever), telling
    a broker that is there but refuses our security settings apart from one that is not there at all."""
    # librdkafka takes whole milliseconds, at least MIN_CONNECT_MS: a shorter timeout is still honoured
    # by the deadline below, and at least one attempt is made whatever the timeout.
    connect_ms = max(MIN_CONNECT_MS, math.ceil(max(timeout, 0.0) * 1000))
    refusals: list[KafkaError] = []
    extra = {"socket.connection.setup.timeout.ms": str(connect_ms), "error_cb": refusals.append}
    admin = admin_client(settings, extra)
    deadline = time.monotonic() + timeout
    last = ""
    attempts = 0
    while attempts == 0 or time.monotonic() < deadline:
        attempts += 1
        try:
            admin.list_topics(timeout=max(0.5, min(2.0, deadline - time.monotonic())))
            return
        except KafkaException as exc:
            last = redact(str(exc.args[0] if exc.args else exc), settings)
            admin.poll(0.2)  # serves error_cb: authentication and SSL failures arrive there
    if (security := security_problem(settings, refusals)) is not None:
        raise security
    where = (
        f"cannot reach Kafka at {settings['bootstrap.servers']} within {timeout:g} s ({last or 'no answer'})"
    )
    raise BrokerSettingError(
        SettingError.literal(where)
        + "; start one with `make broker` or `docker compose up -d`, or pass {bootstrap_servers}",
        bootstrap_servers="bootstrap_servers",
    )


def security_problem(settings: dict[str, str], refusals: list[KafkaError]) -> SettingError | None:
    """Why a broker that did not answer is likely there but refusing our security settings, or None.

    Authentication and SSL failures are librdkafka error codes. A TLS client talking to a plaintext
    broker gets neither (the broker waits for a Kafka request that never comes), so with SSL on, a
    bootstrap port that accepts TCP connections means the handshake, not the broker, is the problem.
    """
    where = settings["bootstrap.servers"]
    for error in refusals:
        reason = SettingError.literal(redact(error.str(), settings))
        if error.code() == KafkaError._AUTHENTICATION:
            return SettingError(
                f"Kafka at {SettingError.literal(where)} refused to authenticate us ({reason}); check "
                "{kafka_settings} sasl.mechanism, sasl.username and sasl.password (or KAFKA_SASL_*)",
                kafka_settings="kafka_settings",
            )
        if error.code() == KafkaError._SSL:
            return SettingError(
                f"the SSL handshake with Kafka at {SettingError.literal(where)} failed ({reason}); check "
                "{kafka_settings} security.protocol and ssl.ca.location (or KAFKA_SSL_CA_LOCATION)",
                kafka_settings="kafka_settings",
            )
    protocol = settings.get("security.protocol", "PLAINTEXT").upper()
    if protocol in ("SSL", "SASL_SSL") and _accepts_tcp(where):
        return SettingError(
            f"Kafka at {SettingError.literal(where)} accepts connections but never completed an SSL handshake: "
            "it may be a plaintext broker; check {kafka_settings} "
            f"security.protocol={SettingError.literal(protocol)} (SASL_PLAINTEXT or PLAINTEXT for one without TLS)",
            kafka_settings="kafka_settings",
        )
    return None


def _accepts_tcp(bootstrap: str) -> bool:
    """Whether any bootstrap address accepts a TCP connection (something listens there)."""
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        host = host.strip("[]") or "localhost"
        if "://" in host:
            host = host.split("://", 1)[1]
        if not port.isdigit():
            continue
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=1.0):
            return True
    return False


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
