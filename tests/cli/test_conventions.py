"""Conventions of the ecosystem: -b as kcat has it, --version, and KAFKA_* variables with flags taking
precedence."""

from __future__ import annotations

import pytest

import kafka_producer
import order_allocator
from allocator import __version__
from allocator.cli import broker, study

PARSERS = [order_allocator.build_parser, kafka_producer.build_parser, study.build_parser, broker.build_parser]


@pytest.mark.parametrize("build", PARSERS)
def test_every_command_prints_its_version(build, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build().parse_args(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.endswith(f" {__version__}\n") and __version__ == "0.1.0"


@pytest.mark.parametrize("build", [order_allocator.build_parser, kafka_producer.build_parser])
def test_b_is_bootstrap_servers_and_the_topic_comes_from_the_environment_unless_given(build, monkeypatch):
    assert build().parse_args(["-b", "h:1"]).bootstrap_servers == "h:1"
    assert build().parse_args([]).topic == "mock_l1_stream"
    monkeypatch.setenv("KAFKA_TOPIC", "from_env")
    assert build().parse_args([]).topic == "from_env"
    assert build().parse_args(["--topic", "flag"]).topic == "flag"  # the flag wins
