"""librdkafka client settings shared by the producer and the consumer, and keeping their secrets secret.

Settings come from the bootstrap address, then the environment (KAFKA_SASL_* …, so secrets stay out of
shell history), then explicit `key=value` overrides. Values of secret-looking keys never reach a log, an
error or the report: `redact` removes them from any text shown.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException

from allocator.errors import SettingError

DEFAULT_TOPIC = "mock_l1_stream"
DEFAULT_BOOTSTRAP = "localhost:9092"
BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
TOPIC_ENV = "KAFKA_TOPIC"  # the topic when --topic is not given
# Settings whose values must never reach a log, an error or the report.
_SECRET_KEY = re.compile(r"(password|secret|token|key\.pem|keystore|private|credentials|jaas)", re.IGNORECASE)
# Environment variables mapped to librdkafka settings, for secrets kept out of shell history.
ENV_SETTINGS = {
    "KAFKA_SECURITY_PROTOCOL": "security.protocol",
    "KAFKA_SASL_MECHANISM": "sasl.mechanism",
    "KAFKA_SASL_USERNAME": "sasl.username",
    "KAFKA_SASL_PASSWORD": "sasl.password",
    "KAFKA_SSL_CA_LOCATION": "ssl.ca.location",
}
# librdkafka's own log lines go here; the CLIs show them only with -v (allocator.cli.common.setup_logging).
LIBRDKAFKA_LOG = logging.getLogger("librdkafka")
Client = TypeVar("Client")


def bootstrap_servers(flag: str | None) -> str:
    return flag or os.environ.get(BOOTSTRAP_ENV) or DEFAULT_BOOTSTRAP


def client_settings(bootstrap: str, overrides: Sequence[str] | None) -> dict[str, str]:
    """librdkafka settings: bootstrap, then environment (KAFKA_SASL_* …), then `key=value` overrides
    (the `kafka_settings` setting, `-X` on the command line)."""
    settings = {"bootstrap.servers": bootstrap}
    for env, key in ENV_SETTINGS.items():
        if os.environ.get(env):
            settings[key] = os.environ[env]
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            shown = SettingError.literal(repr(redact_assignment(item)))
            raise SettingError(
                "{kafka_settings} "
                + shown
                + ": expected key=value, e.g. {kafka_settings} security.protocol=SASL_SSL",
                kafka_settings="kafka_settings",
            )
        settings[key.strip()] = value
    return settings


def new_client(
    factory: Callable[[dict[str, Any]], Client], conf: dict[str, Any], settings: dict[str, str]
) -> Client:
    """A librdkafka client built from `conf`; librdkafka refusing the user's settings (an unknown
    property, a bad value, SASL without a mechanism or credentials) becomes one line naming the key."""
    try:
        return factory(conf)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and error.code() == KafkaError._INVALID_ARG:
            raise refused_setting(error.str(), settings) from None
        raise


def refused_setting(reason: str, settings: dict[str, str]) -> SettingError:
    """librdkafka's refusal as a SettingError on the key it is about (rendered `-X key=value`)."""
    reason = redact(" ".join(reason.split()), settings)
    quoted = [name for name in re.findall(r'"([\w.-]+)"', reason) if name in settings]
    if "SASL mechanism" in reason or "sasl.username and sasl.password" in reason:
        key = "sasl.mechanism" if "SASL mechanism" in reason else "sasl.username"
        mechanism = settings.get("sasl.mechanism")
        given = f"security.protocol={settings.get('security.protocol', '')}" + (
            f" with sasl.mechanism={mechanism}" if mechanism else ""
        )
        fix = (
            "needs {kafka_settings} sasl.mechanism=PLAIN (or SCRAM-SHA-256, SCRAM-SHA-512) and "
            "sasl.username/sasl.password (or KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD)"
            if key == "sasl.mechanism"
            else "needs sasl.username and sasl.password: pass them with {kafka_settings} or "
            "KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD"
        )
        return SettingError(
            "{kafka_settings} " + SettingError.literal(given) + " " + fix, kafka_settings="kafka_settings"
        )
    if "No such configuration property" in reason:
        name = re.findall(r'"([^"]*)"', reason)
        shown = redact_assignment(f"{name[0]}={settings.get(name[0], '')}") if name else "?"
        return SettingError(
            "{kafka_settings} "
            + SettingError.literal(shown)
            + ": librdkafka has no such property (its CONFIGURATION.md lists them)",
            kafka_settings="kafka_settings",
        )
    shown = " " + redact_assignment(f"{quoted[0]}={settings[quoted[0]]}") if quoted else ""
    return SettingError(
        "{kafka_settings}" + SettingError.literal(f"{shown}: librdkafka refused it: {reason}"),
        kafka_settings="kafka_settings",
    )


def is_secret(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def redact_assignment(item: str) -> str:
    """An override's text safe to show: a secret's value is hidden even when the `=` is missing."""
    key, sep, _value = item.partition("=")
    if sep:
        return f"{key}=***" if is_secret(key) else item
    match = _SECRET_KEY.search(item)
    return item[: match.end()] + "***" if match else item


def redact(text: str, settings: dict[str, str]) -> str:
    """Remove every secret value from a message before it is shown."""
    for key, value in settings.items():
        if is_secret(key) and value:
            text = text.replace(value, "***")
    return text


def producer_settings(settings: dict[str, str]) -> dict[str, Any]:
    """Idempotent, ordered delivery with batching; the user's settings win."""
    return {
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 500_000,
        "message.timeout.ms": 60_000,
        "allow.auto.create.topics": False,  # a restarted broker must not recreate the topic its own way
        "logger": LIBRDKAFKA_LOG,
    } | settings


def consumer_settings(group: str, settings: dict[str, str]) -> dict[str, Any]:
    """A manually committing group member that notices new topics fast and fetches big; the user's settings win."""
    return {
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
        "logger": LIBRDKAFKA_LOG,
    } | settings
