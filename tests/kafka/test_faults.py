"""Faults on real brokers: late broker, killed broker, killed consumer, Ctrl-C, secrets in output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from allocator.broker.embedded import EmbeddedBroker, free_port
from tests.kafka_helpers import ORDER, REPO, WINDOW, consume, finish, popen, start_producer
from tests.kafka_helpers import offline_report as offline

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def offline_report() -> dict:
    return offline()


@pytest.mark.parametrize("kind", ["tansu", "noida"])
def test_producer_waits_for_a_broker_that_starts_late(kind, offline_report):
    port = free_port()
    topic = f"late-{uuid.uuid4().hex[:8]}"
    producer = popen(
        "kafka_producer.py",
        "--bootstrap-servers",
        f"127.0.0.1:{port}",
        "--topic",
        topic,
        "--connect-timeout",
        "40",
        "--speed",
        "0",
        *WINDOW,
    )
    time.sleep(3)
    assert producer.poll() is None, "the producer must still be waiting for the broker"
    with EmbeddedBroker(kind=kind, port=port) as broker:
        code, out, err = finish(producer)
        assert code == 0, err
        assert json.loads(out)["rows_delivered"] > 10_000
        code, report, err = consume(broker.bootstrap, topic)
    assert code == 0, err
    report.pop("run")
    assert report == offline_report


def _wait_for_checkpoint(directory: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for meta in directory.glob("*/checkpoint.json"):
            try:
                if json.loads(meta.read_text())["segments"]:
                    return
            except (ValueError, KeyError):
                pass
        time.sleep(0.02)
    raise AssertionError("the consumer never checkpointed")


def test_consumer_killed_mid_stream_resumes_in_its_group(broker, offline_report, tmp_path):
    topic = f"kill-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    state = ["--group", group, "--state-dir", str(tmp_path)]
    consumer = popen(
        "order_allocator.py",
        "--bootstrap-servers",
        broker.bootstrap,
        "--topic",
        topic,
        "--idle-timeout",
        "20",
        *ORDER,
        *state,
    )
    producer = start_producer(broker.bootstrap, topic, "10")
    _wait_for_checkpoint(tmp_path)
    consumer.send_signal(signal.SIGKILL)
    consumer.wait()
    assert finish(producer)[0] == 0
    code, report, err = consume(broker.bootstrap, topic, *state)
    assert code == 0, err
    run = report.pop("run")
    assert report == offline_report
    assert run["stream"]["resumed_from_checkpoint"] is True
    assert run["stream"]["duplicates_dropped"] == 0


@pytest.mark.parametrize("after", [0.5, 2.0], ids=["during-history", "during-window"])
def test_ctrl_c_on_the_producer_flushes_and_says_how_much(broker, after):
    # 0.5 s lands in the unpaced burst of calibration history, where delivery callbacks run constantly: a
    # KeyboardInterrupt raised inside one used to surface as a "fatal" producer and a full re-send (exit 0)
    topic = f"int-{uuid.uuid4().hex[:8]}"
    producer = start_producer(broker.bootstrap, topic, "1")
    seen = []
    while not any("replaying" in line for line in seen):  # streaming has begun (start-up time varies)
        line = producer.stderr.readline()
        assert line, "the producer exited before streaming"
        seen.append(line)
    time.sleep(after)
    producer.send_signal(signal.SIGINT)
    code, out, err = finish(producer)
    err = "".join(seen) + err
    assert code == 130
    assert out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("kafka_producer.py: error: interrupted: ")
    assert "rows sent" in last and "delivered" in last
    assert "Traceback" not in err


def test_ctrl_c_on_the_consumer_prints_a_partial_report(broker):
    topic = f"int-{uuid.uuid4().hex[:8]}"
    producer = start_producer(broker.bootstrap, topic, "2")
    consumer = popen("order_allocator.py", "--bootstrap-servers", broker.bootstrap, "--topic", topic, *ORDER)
    seen = [consumer.stderr.readline()]  # "consuming …": it is up (start-up time varies under load)
    assert "consuming" in seen[0]
    time.sleep(8)  # joined the group and took part of the 30 s replay
    consumer.send_signal(signal.SIGINT)
    code, out, err = finish(consumer)
    err = "".join(seen) + err
    producer.send_signal(signal.SIGINT)
    finish(producer)
    assert code == 131, err
    report = json.loads(out)
    assert report["status"] == "incomplete"
    assert report["run"]["stream"]["stop_reason"] == "interrupted"
    assert 0 < report["run"]["stream"]["rows_received"] < report["run"]["stream"]["rows_expected"]
    assert "Traceback" not in err


def _restart_mid_replay(kind: str, down) -> tuple[int, tuple[int, dict | None, str], str]:
    """Replay at 15x, take the broker down 1 s into the replay with `down(broker)`, start it again, then
    consume. The second counts from the producer's "replaying" line, not from its launch: under load its
    start-up alone can take 2.5 s, and a broker killed before the topic exists loses nothing."""
    with EmbeddedBroker(kind=kind) as broker:
        topic = f"restart-{uuid.uuid4().hex[:8]}"
        producer = start_producer(broker.bootstrap, topic, "15")
        assert producer.stderr is not None
        seen = []
        while not (line := producer.stderr.readline()).startswith("replaying") and line:
            seen.append(line)
        seen.append(line)
        time.sleep(1.0)
        down(broker)
        time.sleep(1)
        broker.start()
        code, _out, err = finish(producer)
        return code, consume(broker.bootstrap, topic, "--idle-timeout", "5", "--strict"), "".join(seen) + err


def test_persistent_broker_restarted_mid_replay_gives_the_same_report(offline_report):
    # SIGTERM: noida-db shuts down cleanly and keeps its log on disk.
    produced, (code, report, err), producer_err = _restart_mid_replay("noida", EmbeddedBroker.stop)
    assert produced == 0, producer_err
    assert code == 0, err
    run = report.pop("run")
    assert report == offline_report
    assert run["stream"]["missing_rows"] == 0


def test_memory_broker_restarted_mid_replay_is_detected_not_hidden():
    # SIGKILL on the memory-only broker: everything stored so far is gone.
    produced, (code, report, err), producer_err = _restart_mid_replay("tansu", EmbeddedBroker.kill)
    if produced != 0:  # the producer saw the topic vanish: it must say so, not only count failures
        last = producer_err.strip().splitlines()[-1]
        assert last.startswith("kafka_producer.py: error: the broker no longer has topic 'restart-"), last
        assert "loses its topics when it restarts); run kafka_producer.py again" in last
    assert code != 0
    if report is not None:  # the end of the replay survived: the loss is in the counts
        assert report["status"] == "incomplete"
        assert report["run"]["stream"]["missing_rows"] > 0
    else:  # the start of the replay was lost with the broker: no report pretends otherwise
        assert "no replay arrived" in err or "incomplete" in err


def test_secrets_never_appear_in_any_output(broker):
    """Tansu rejects SASL on its plaintext listener; noida-db accepts any PLAIN credentials and runs the
    whole replay. Either way no output may contain the password, from -X or from the environment."""
    secret = "Sup3rSecret-" + uuid.uuid4().hex
    env = os.environ | {"KAFKA_SASL_USERNAME": "alice", "KAFKA_SASL_PASSWORD": secret + "-env"}
    topic = f"sasl-{uuid.uuid4().hex[:8]}"
    common = [
        "--bootstrap-servers",
        broker.bootstrap,
        "--topic",
        topic,
        "--connect-timeout",
        "3",
        "-v",
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanism=PLAIN",
        "-X",
        f"sasl.password={secret}",
    ]
    outputs = []
    for name, extra in [
        ("kafka_producer.py", [*WINDOW, "--speed", "0", "--flush-timeout", "5"]),
        ("order_allocator.py", ["--idle-timeout", "3", *ORDER]),
    ]:
        result = subprocess.run(
            [sys.executable, str(REPO / name), *common, *extra],
            capture_output=True,
            text=True,
            env=env,
            timeout=90,
            check=False,
        )
        outputs += [result.stdout, result.stderr]
    bad = subprocess.run(
        [sys.executable, str(REPO / "kafka_producer.py"), "-X", f"sasl.password{secret}"],
        capture_output=True,
        text=True,
        check=False,
    )
    outputs += [bad.stdout, bad.stderr]
    text = "\n".join(outputs)
    assert secret not in text
    assert "sasl.password***" in bad.stderr  # the bad -X is named, its value is not
