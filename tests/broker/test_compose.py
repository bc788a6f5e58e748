"""docker-compose.yml cannot run here (no Docker engine): check that it describes a working KRaft Kafka."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_compose_runs_a_single_kraft_kafka_on_9092():
    doc = yaml.safe_load(COMPOSE.read_text())
    (_name, service), *others = doc["services"].items()
    assert not others, "one service only"
    assert service["image"].startswith("apache/kafka:")
    assert "9092:9092" in service["ports"]
    env = service["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "ZOOKEEPER" not in " ".join(env), "KRaft only"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@localhost:9093"
    assert "PLAINTEXT://localhost:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in env["KAFKA_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1  # a single node cannot replicate 3 ways
    health = service["healthcheck"]
    assert "localhost:9092" in " ".join(health["test"])
    assert health["retries"] >= 3
