"""Conventions of the ecosystem: -b as kcat has it, --version, and KAFKA_* variables with flags taking
precedence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import kafka_producer
import order_allocator
from allocator import __version__
from allocator.cli import broker, study
from allocator.cli.common import LIBRDKAFKA_DEBUG_CONTEXTS, kafka_settings_from

REPO = Path(__file__).resolve().parents[2]
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


@pytest.mark.parametrize(
    "build", [order_allocator.build_parser, kafka_producer.build_parser, study.build_parser]
)
def test_v_counts_and_vv_turns_on_librdkafka_debug_contexts(build):
    assert build().parse_args([]).verbose == 0
    assert build().parse_args(["-v"]).verbose == 1
    assert build().parse_args(["-vv"]).verbose == 2


def test_vv_asks_librdkafka_for_its_debug_contexts_unless_x_debug_is_given():
    parse = order_allocator.build_parser().parse_args
    assert "debug" not in kafka_settings_from(parse(["-v"]))
    assert kafka_settings_from(parse(["-vv"]))["debug"] == LIBRDKAFKA_DEBUG_CONTEXTS
    assert kafka_settings_from(parse(["-vv", "-X", "debug=all"]))["debug"] == "all"


def test_vv_prints_librdkafka_debug_lines_and_v_its_log_lines():
    """Against a port nobody listens on: -v shows librdkafka's connection failures, -vv its state machine."""

    def producer(*flags: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "kafka_producer.py", "-b", "127.0.0.1:1", "--connect-timeout", "1", *flags]
        return subprocess.run(command, capture_output=True, text=True, cwd=REPO)

    quiet, verbose, debug = producer(), producer("-v"), producer("-vv")
    assert quiet.returncode == verbose.returncode == debug.returncode == 3
    assert "Connection refused" not in quiet.stderr and quiet.stderr.count("\n") == 1  # one line
    assert "Connection refused" in verbose.stderr and "Broker changed state" not in verbose.stderr
    assert "Broker changed state" in debug.stderr


def test_the_producer_checks_the_broker_before_it_reads_the_file(tmp_path):
    """A missing broker is reported first, even for a file that would take long to load (or is bad)."""
    bad = tmp_path / "bad.csv"
    bad.write_text("not,a,databento,file\n")
    done = subprocess.run(
        [
            sys.executable,
            "kafka_producer.py",
            "-b",
            "127.0.0.1:1",
            "--connect-timeout",
            "1",
            "--csv",
            str(bad),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 3 and "127.0.0.1:1" in done.stderr and "bad.csv" not in done.stderr
