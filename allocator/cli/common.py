"""Flags and error handling shared by the two scripts, so they stay thin and consistent."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from allocator.data.window import DEFAULT_END, DEFAULT_START, WindowSpec
from allocator.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED_PRODUCER, SettingError, UserError
from allocator.kafka.settings import (
    BOOTSTRAP_ENV,
    DEFAULT_BOOTSTRAP,
    DEFAULT_TOPIC,
    TOPIC_ENV,
    bootstrap_servers,
    client_settings,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CSV = REPO_ROOT / "data" / "l1_day.csv.gz"


def add_version_flag(parser: argparse.ArgumentParser) -> None:
    """--version: the package's version, as every command-line tool has."""
    from allocator import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")


def add_data_flags(parser: argparse.ArgumentParser, *, csv_help: str) -> None:
    """--csv, the window, symbol, price format and fee-table flags (the data layer's inputs)."""
    group = parser.add_argument_group("data")
    group.add_argument("--csv", metavar="FILE", help=csv_help)
    group.add_argument(
        "--start",
        help=f"window start, UTC time of day (on the data's date) or ISO datetime (default {DEFAULT_START}); "
        "'all' = from the first row",
    )
    group.add_argument(
        "--end",
        help=f"window end, inclusive at its precision: {DEFAULT_END} keeps everything before 13:45:15 "
        f"(default {DEFAULT_END}); 'all' = to the last row",
    )
    group.add_argument("--symbol", help="keep only this symbol (needed when the file holds several)")
    group.add_argument(
        "--price-format",
        choices=("auto", "decimal", "fixed"),
        default="auto",
        help="prices as decimals or Databento fixed-point integers (1e-9); auto detects (default)",
    )
    fees = parser.add_argument_group("venues and fees")
    fees.add_argument("--venues", metavar="FILE", help="venue TOML (default allocator/data/venues.toml)")
    add_fee_flags(fees)


def add_fee_flags(group: argparse._ArgumentGroup) -> None:
    """--fee and --rebate: finite dollars per share (a rebate may be negative: inverted venues charge it)."""
    group.add_argument(
        "--fee",
        type=number_flag("--fee", "$/share, e.g. --fee 0.003; negative on inverted venues"),
        help="force this taker fee ($/share) on every venue",
    )
    group.add_argument(
        "--rebate",
        type=number_flag("--rebate", "$/share, e.g. --rebate 0.002; negative on inverted venues"),
        help="force this maker rebate ($/share) on every venue",
    )


def window_from(args: argparse.Namespace) -> WindowSpec:
    """The window flags, with the trial window for whichever bound was not given."""
    return WindowSpec(start=args.start or DEFAULT_START, end=args.end or DEFAULT_END)


def explicit_window(args: argparse.Namespace) -> WindowSpec | None:
    """The window flags only if the user gave one (the Kafka consumer otherwise uses the producer's)."""
    return window_from(args) if args.start or args.end else None


def number_flag(
    flag: str,
    hint: str,
    *,
    integer: bool = False,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
) -> Callable[[str], Any]:
    """The one validator of numeric flags: an argparse `type` that parses the text (a whole number when
    `integer`), requires it finite and within [minimum, maximum] (or > `above`), and otherwise raises a
    one-line UserError naming the flag and what to give. argparse lets a UserError through (it catches only
    ValueError and TypeError), so `run_main` prints it as the single line."""

    def parse(text: str) -> Any:
        value: float | int
        if integer:
            try:
                value = int(text.strip())
            except ValueError:
                raise UserError(f"{flag} {text!r} is not a whole number ({hint})") from None
        else:
            value = parse_number(text, flag, hint)
            if not math.isfinite(value):
                raise UserError(f"{flag} {text}: must be a finite number ({hint})")
        if minimum is not None and value < minimum:
            raise UserError(f"{flag} {text}: must be ≥ {minimum:g} ({hint})")
        if above is not None and value <= above:
            raise UserError(f"{flag} {text}: must be more than {above:g} ({hint})")
        if maximum is not None and value > maximum:
            raise UserError(f"{flag} {text}: must be ≤ {maximum:g} ({hint})")
        return value

    parse.numeric_flag = flag  # type: ignore[attr-defined]  # lets a test find every numeric flag
    return parse


speed_value = number_flag(
    "--speed", "1 = real time, 10 = ten times faster, 0 = as fast as possible", minimum=0, maximum=1e9
)


def parse_number(text: str, flag: str, hint: str) -> float:
    """A flag's text as a number; its range is the config's to check (allocator.config)."""
    try:
        return float(text)
    except ValueError:
        raise UserError(f"{flag} {text!r} is not a number ({hint})") from None


def parse_grid(text: str | None, default: Sequence[float], flag: str) -> tuple[float, ...]:
    """A comma-separated list of penalties; one value fixes the parameter (PenaltyGrid checks each ≥ 0)."""
    if text is None:
        return tuple(default)
    return tuple(parse_number(part.strip(), flag, f"use e.g. {flag} 0.2,0.5,1.0") for part in text.split(","))


def add_kafka_flags(parser: argparse.ArgumentParser) -> None:
    """Broker address, topic and librdkafka pass-through, shared by producer and consumer."""
    group = parser.add_argument_group("kafka")
    group.add_argument(
        "-b",
        "--bootstrap-servers",
        metavar="HOST:PORT",
        help=f"Kafka brokers (default ${BOOTSTRAP_ENV} or {DEFAULT_BOOTSTRAP})",
    )
    group.add_argument(
        "--topic",
        default=os.environ.get(TOPIC_ENV) or DEFAULT_TOPIC,
        help=f"topic (default ${TOPIC_ENV} or {DEFAULT_TOPIC})",
    )
    group.add_argument(
        "-X",
        dest="kafka_settings",
        action="append",
        metavar="KEY=VALUE",
        help="librdkafka setting passed through, repeatable (e.g. -X security.protocol=SASL_SSL)",
    )
    group.add_argument(
        "--connect-timeout",
        type=number_flag("--connect-timeout", "seconds, e.g. --connect-timeout 10", minimum=1, maximum=86400),
        default=10.0,
        help="seconds to wait for the broker to answer before giving up (default 10)",
    )


# -vv: librdkafka's debug contexts for connecting, authenticating and group membership (-X debug=... wins).
LIBRDKAFKA_DEBUG_CONTEXTS = "broker,security,protocol,cgrp,topic"


def kafka_settings_from(args: argparse.Namespace) -> dict[str, str]:
    settings = client_settings(bootstrap_servers(args.bootstrap_servers), args.kafka_settings)
    if getattr(args, "verbose", 0) >= 2:
        settings.setdefault("debug", LIBRDKAFKA_DEBUG_CONTEXTS)
    return settings


def add_verbose_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """-v and -vv, the same on every command."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v: more detail on stderr, with librdkafka's own log lines; -vv: also librdkafka's debug "
        f"output ({LIBRDKAFKA_DEBUG_CONTEXTS})",
    )


def print_json(obj: Any) -> None:
    """JSON on stdout, nothing else goes there."""
    sys.stdout.write(json.dumps(obj, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def setup_logging(verbose: int = 0) -> None:
    """Our lines on stderr (debug detail with -v); librdkafka's only with -v, since its errors already
    reach us through error callbacks."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s: %(message)s" if verbose else "%(message)s",
    )
    # librdkafka's python wrapper logs through these; keep them quiet unless asked.
    logging.getLogger("confluent_kafka").setLevel(logging.WARNING)
    # librdkafka's own log lines duplicate what error callbacks report; show them only with -v.
    logging.getLogger("librdkafka").setLevel(logging.DEBUG if verbose else logging.CRITICAL)


# Settings whose flag is not "--" + the setting's name with dashes (allocator.errors.SettingError).
FLAG_NAMES = {"csv_path": "--csv", "venue_file": "--venues", "kafka_settings": "-X"}


def flag_for(setting: str) -> str:
    """The command-line flag that sets a library setting, so errors name what the user typed."""
    return FLAG_NAMES.get(setting, "--" + setting.replace("_", "-"))


def run_main(
    prog: str,
    main: Callable[[Sequence[str] | None], int],
    argv: Sequence[str] | None = None,
    interrupted_code: int = EXIT_INTERRUPTED_PRODUCER,
) -> int:
    """Run a CLI main: user errors become one line on stderr and their exit code, never a traceback."""
    try:
        return main(argv)
    except SettingError as exc:
        print(f"{prog}: error: {exc.render(flag_for)}", file=sys.stderr)
        return exc.exit_code
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return interrupted_code
    except BrokenPipeError:
        return EXIT_BAD_INPUT
