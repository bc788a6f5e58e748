"""Settings librdkafka refuses, security settings a broker refuses, and --symbol on a replay: one line each."""

from __future__ import annotations

import socket
import time

import pytest
from confluent_kafka import KafkaError

from allocator.cli.common import flag_for
from allocator.errors import EXIT_BAD_INPUT, BrokerSettingError, SettingError
from allocator.kafka.admin import check_reachable, security_problem
from allocator.kafka.consumer import stream_market_data
from allocator.kafka.replay_state import ReplayState, StopRules
from tests.kafka.test_replay_state import ROWS, SENT, end, rows, start
from tests.kafka_helpers import script

SASL = ["-X", "sasl.mechanism=PLAIN", "-X", "sasl.username=u", "-X", "sasl.password=hunter2"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _allocate(*flags: str, bootstrap: str = "127.0.0.1:1") -> tuple[int, list[str]]:
    result = script(
        "order_allocator.py",
        "--bootstrap-servers",
        bootstrap,
        "--order-size",
        "100",
        "--connect-timeout",
        "2",
        "--idle-timeout",
        "2",
        *flags,
        check=False,
    )
    assert "Traceback" not in result.stderr
    return result.returncode, result.stderr.strip().splitlines()


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (
            ["-X", "foo.bar=1"],
            "order_allocator.py: error: -X foo.bar=1: librdkafka has no such property "
            "(its CONFIGURATION.md lists them)",
        ),
        (
            ["-X", "security.protocol=SASL_SSL"],
            "order_allocator.py: error: -X security.protocol=SASL_SSL needs -X sasl.mechanism=PLAIN (or "
            "SCRAM-SHA-256, SCRAM-SHA-512) and sasl.username/sasl.password "
            "(or KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD)",
        ),
        (
            ["-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanism=PLAIN"],
            "order_allocator.py: error: -X security.protocol=SASL_SSL with sasl.mechanism=PLAIN needs sasl.username "
            "and sasl.password: pass them with -X or KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD",
        ),
        (
            ["-X", "security.protocol=BOGUS"],
            "order_allocator.py: error: -X security.protocol=BOGUS: librdkafka refused it: Invalid value "
            '"BOGUS" for configuration property "security.protocol"',
        ),
        (
            ["-X", "sasl.password=hunter2", "-X", "linger.ms=x"],
            "order_allocator.py: error: -X: librdkafka refused it: "
            'Invalid value for configuration property "queue.buffering.max.ms"',
        ),
    ],
)
def test_settings_librdkafka_refuses_are_one_line_naming_the_key(flags, line):
    code, lines = _allocate(*flags)
    assert (code, lines) == (EXIT_BAD_INPUT, [line])


def test_a_connect_timeout_below_librdkafkas_minimum_still_times_out_cleanly():
    port = _closed_port()
    started = time.perf_counter()
    with pytest.raises(
        BrokerSettingError, match=rf"^cannot reach Kafka at 127\.0\.0\.1:{port} within 0\.3 s "
    ):
        check_reachable({"bootstrap.servers": f"127.0.0.1:{port}"}, 0.3)
    with pytest.raises(BrokerSettingError, match=r"within 0 s"):
        check_reachable({"bootstrap.servers": f"127.0.0.1:{port}"}, 0.0)  # still one attempt
    assert time.perf_counter() - started < 5


def test_a_broker_refusing_our_credentials_is_not_called_unreachable():
    refused = KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error: bad password hunter2")
    settings = {"bootstrap.servers": "h:1", "sasl.password": "hunter2"}
    error = security_problem(settings, [refused])
    assert isinstance(error, SettingError)
    assert error.render(flag_for) == (
        "Kafka at h:1 refused to authenticate us (SASL authentication error: bad password ***); check "
        "-X sasl.mechanism, sasl.username and sasl.password (or KAFKA_SASL_*)"
    )
    ssl = KafkaError(KafkaError._SSL, "SSL handshake failed: certificate verify failed")
    assert security_problem(settings, [ssl]).render(flag_for) == (  # type: ignore[union-attr]
        "the SSL handshake with Kafka at h:1 failed (SSL handshake failed: certificate verify failed); check "
        "-X security.protocol and ssl.ca.location (or KAFKA_SSL_CA_LOCATION)"
    )
    assert security_problem(settings, []) is None  # plaintext settings, no refusal: plainly unreachable


@pytest.mark.kafka
def test_sasl_ssl_against_a_plaintext_broker_says_so(broker):
    code, lines = _allocate("-X", "security.protocol=SASL_SSL", *SASL, bootstrap=broker.bootstrap)
    assert (code, lines) == (
        EXIT_BAD_INPUT,
        [
            f"order_allocator.py: error: Kafka at {broker.bootstrap} accepts connections but never completed an "
            "SSL handshake: it may be a plaintext broker; check -X security.protocol=SASL_SSL "
            "(SASL_PLAINTEXT or PLAINTEXT for one without TLS)"
        ],
    )


def _replayed() -> ReplayState:
    s = ReplayState(StopRules(), now=0.0)
    s.take([start(), *rows(*range(ROWS)), end()], 1.0, events=True)
    return s


def test_symbol_keeps_the_replays_rows_of_that_symbol():
    data = stream_market_data(_replayed().result(), "t", None, symbol="AAPL")
    assert data.symbols == ["AAPL"] and len(data.frame) == ROWS
    assert data.frame["ts_event"].tolist() == SENT["ts_event"].tolist()


def test_a_symbol_the_replay_does_not_hold_is_one_line():
    with pytest.raises(SettingError) as caught:
        stream_market_data(_replayed().result(), "t", None, symbol="MSFT")
    assert caught.value.render(flag_for) == (
        "the replay on 't' holds no rows of symbol 'MSFT' (symbols there: AAPL); change or drop --symbol"
    )
