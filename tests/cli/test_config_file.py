"""--config run.toml: settings from a file, flags override it, the environment overrides it, mistakes are
one line naming the file and the key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import kafka_producer
import order_allocator
from allocator.cli import study
from allocator.cli.config_file import config_arguments, parse_with_config
from allocator.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
DATA = str(ROOT / "data" / "l1_day.csv.gz")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_keys_become_the_flags_they_name(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        'mode = "cont-kukanov"\norder_size = 3000\n[grid]\nlambda-over = [0, 0.2]\n'
        "[model]\nhorizon = 10\n[output]\nlive = false\nverbose = true\n",
    )
    parser = order_allocator.build_parser()
    assert config_arguments(parser, config) == [
        "--mode",
        "cont-kukanov",
        "--order-size",
        "3000",
        "--lambda-over",
        "0,0.2",
        "--horizon",
        "10",
        "--verbose",
    ]
    args = parse_with_config(parser, ["--config", str(config), "--csv", DATA])
    assert (args.mode, args.order_size, args.lambda_over, args.horizon) == (
        "cont-kukanov",
        3000,
        "0,0.2",
        "10",
    )


def test_flags_on_the_command_line_win(tmp_path: Path) -> None:
    config = write(tmp_path, 'side = "sell"\norder-size = 3000\n')
    args = parse_with_config(order_allocator.build_parser(), [f"--config={config}", "--side", "buy"])
    assert (args.side, args.order_size) == ("buy", 3000)


def test_the_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path, 'topic = "from-file"\nbootstrap-servers = "file:1"\n')
    parser = kafka_producer.build_parser()
    assert config_arguments(parser, config) == ["--topic", "from-file", "--bootstrap-servers", "file:1"]
    monkeypatch.setenv("KAFKA_TOPIC", "from-env")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env:1")
    assert config_arguments(parser, config) == []


def test_repeatable_flags_take_lists(tmp_path: Path) -> None:
    config = write(tmp_path, 'X = ["linger.ms=5", "acks=all"]\n')
    # -X has no long name, so it is not a config key; the study's --sides takes a list
    with pytest.raises(UserError, match="'X' is not a setting of this command"):
        config_arguments(kafka_producer.build_parser(), config)
    config = write(tmp_path, 'sides = ["buy", "sell"]\nsynthetic = 2\n')
    assert config_arguments(study.build_parser(), config) == ["--sides", "buy,sell", "--synthetic", "2"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("order_sise = 5000\n", "'order_sise' is not a setting of this command; did you mean 'order-size'?"),
        ("live = 1\n", "live is a switch; give true or false"),
        ("order-size = \n", "not a readable TOML file"),
        ("config = 'other.toml'\n", "'config' is not a setting of this command"),
    ],
)
def test_mistakes_are_one_line_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    config = write(tmp_path, text)
    with pytest.raises(UserError) as caught:
        config_arguments(order_allocator.build_parser(), config)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"--config {config}: ")
    assert "\n" not in str(caught.value)


def test_a_config_run_prints_what_the_same_flags_print(tmp_path: Path) -> None:
    config = write(
        tmp_path, 'side = "sell"\n[grid]\nlambda-over = [0.2]\nlambda-under = [0.5]\ntheta-queue = [0]\n'
    )

    def report(*flags: str) -> dict:
        command = [sys.executable, "order_allocator.py", "--csv", DATA, "--jobs", "1", *flags]
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        result = json.loads(out.stdout)
        result.pop("run")
        return result

    flags = ["--side", "sell", "--lambda-over", "0.2", "--lambda-under", "0.5", "--theta-queue", "0"]
    assert report("--config", str(config)) == report(*flags)


def test_a_bad_value_gets_the_flags_own_message(tmp_path: Path) -> None:
    config = write(tmp_path, "order-size = 250\n")
    command = [sys.executable, "order_allocator.py", "--csv", DATA, "--config", str(config)]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == [
        "order_allocator.py: error: --order-size 250 is not a multiple of --step 100: orders go out in whole "
        "steps; give --order-size 200 or 300, or a --step that divides it"
    ]
    missing = subprocess.run(
        [*command[:-1], str(tmp_path / "nope.toml")], cwd=ROOT, capture_output=True, text=True
    )
    assert "Traceback" not in missing.stderr
    assert f"--config {tmp_path / 'nope.toml'}: no such file" in missing.stderr
