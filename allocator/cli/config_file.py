"""`--config run.toml`: every setting of a command from a TOML file, with the command line taking precedence.

Keys are the long flag names, with dashes or underscores (`order-size = 5000`, `lambda_over = [0, 0.2]`);
a table is just a namespace for readability (`[model] horizon = 10` sets `--horizon`). The file is turned
into the flags it stands for and parsed with them, ahead of the real command line, so each value goes
through the same validation as the flag and the same message names it. Precedence: flags on the command
line, then the environment (KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC), then the file, then the defaults.
"""

from __future__ import annotations

import argparse
import difflib
import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from allocator.errors import UserError
from allocator.kafka.settings import BOOTSTRAP_ENV, TOPIC_ENV

CONFIG_FLAG = "--config"
# Settings that an environment variable also gives: the variable wins over the file.
ENVIRONMENT_OF = {"bootstrap_servers": BOOTSTRAP_ENV, "topic": TOPIC_ENV}


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    """--config FILE.toml on a command's parser (read by `parse_with_config`)."""
    parser.add_argument(
        CONFIG_FLAG,
        metavar="FILE.toml",
        help="read settings from a TOML file, keys named like the flags (order-size = 5000, "
        "lambda-over = [0, 0.2]); flags on the command line override it",
    )


def parse_with_config(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """Parse `argv` (default sys.argv[1:]) with the flags of its --config file, if any, in front."""
    import sys

    given = list(sys.argv[1:] if argv is None else argv)
    path = _config_path(given)
    if path is None:
        return parser.parse_args(given)
    return parser.parse_args(config_arguments(parser, path) + given)


def config_arguments(parser: argparse.ArgumentParser, path: Path) -> list[str]:
    """The command-line flags a config file stands for, in the file's order."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise UserError(f"--config {path}: no such file; give the path of a TOML file") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(
            f"--config {path}: not a readable TOML file ({exc}); fix it or drop --config"
        ) from None
    actions = {
        option.lstrip("-").replace("-", "_"): action
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--")
    }
    arguments: list[str] = []
    for key, value in _flatten(document):
        name = key.replace("-", "_")
        action = actions.get(name)
        if action is None or name in ("config", "help", "version"):
            known = sorted(k.replace("_", "-") for k in actions if k not in ("config", "help", "version"))
            close = difflib.get_close_matches(key.replace("_", "-"), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(f"--config {path}: {key!r} is not a setting of this command; {hint}see --help")
        if name in ENVIRONMENT_OF and os.environ.get(ENVIRONMENT_OF[name]):
            continue
        arguments += _as_flags(action, value, key, path)
    return arguments


def _config_path(argv: list[str]) -> Path | None:
    """The --config value in argv (`--config F` or `--config=F`); a bare `--config` is left to argparse."""
    for i, word in enumerate(argv):
        if word == "--":
            return None
        if word.startswith(CONFIG_FLAG + "="):
            return Path(word.split("=", 1)[1])
        if word == CONFIG_FLAG and i + 1 < len(argv):
            return Path(argv[i + 1])
    return None


def _flatten(document: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Top-level keys and the keys of tables (tables only group settings; their names are not part of keys)."""
    items: list[tuple[str, Any]] = []
    for key, value in document.items():
        if isinstance(value, dict):
            items += _flatten(value, key)
        else:
            items.append((key, value))
    return items


def _as_flags(action: argparse.Action, value: Any, key: str, path: Path) -> list[str]:
    """One setting as the flags that give it: `true` for a switch, a list for a comma-separated or a
    repeatable flag, anything else as its text."""
    flag = next(o for o in action.option_strings if o.startswith("--"))
    if isinstance(action, argparse._CountAction):  # -v: `verbose = 2` is -vv
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UserError(f"--config {path}: {key} counts; give a whole number such as 1")
        return [flag] * value
    if action.nargs == 0:  # a switch: `true` gives the flag
        if not isinstance(value, bool):
            raise UserError(f"--config {path}: {key} is a switch; give true or false")
        return [flag] if value else []
    if isinstance(action, argparse._AppendAction):
        values = value if isinstance(value, list) else [value]
        return [part for item in values for part in (flag, _text(item))]
    if isinstance(value, list):
        return [flag, ",".join(_text(v) for v in value)]
    return [flag, _text(value)]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
