"""Every numeric flag of every command goes through the one validator: a non-finite, out-of-range or
malformed value is one line naming the flag (exit 2), never a traceback or a silent default."""

from __future__ import annotations

import argparse

import pytest

import kafka_producer
import order_allocator
from allocator.cli import broker, study
from allocator.cli.common import run_main

PARSERS = {
    "order_allocator.py": order_allocator.build_parser,
    "kafka_producer.py": kafka_producer.build_parser,
    "python -m allocator.study": study.build_parser,
    "python -m allocator.broker": broker.build_parser,
}
HOSTILE = ["nan", "inf", "-inf", "1e400", "-1e18", "1e18", "-1", "0", "abc", ""]


def _numeric_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if getattr(a.type, "numeric_flag", None)]


@pytest.mark.parametrize("prog", PARSERS)
def test_no_numeric_flag_is_parsed_by_a_bare_int_or_float(prog):
    parser = PARSERS[prog]()
    bare = [a.option_strings for a in parser._actions if a.type in (int, float)]
    assert bare == []
    assert _numeric_actions(parser)  # the validator is in use


@pytest.mark.parametrize("prog", PARSERS)
def test_hostile_values_are_one_line_naming_the_flag_or_a_finite_value(prog, capsys):
    parser = PARSERS[prog]()
    for action in _numeric_actions(parser):
        flag = action.option_strings[0]
        for text in HOSTILE:

            def parse(
                argv: list[str] | None = None, text: str = text, flag: str = flag, dest: str = action.dest
            ) -> int:
                value = vars(PARSERS[prog]().parse_known_args([f"{flag}={text}"])[0])[dest]
                assert value == value and abs(value) != float("inf"), (
                    flag,
                    text,
                    value,
                )  # finite if accepted
                return 0

            code = run_main(prog, parse)
            err = capsys.readouterr().err
            assert "Traceback" not in err
            if code != 0:
                lines = err.strip().splitlines()
                assert code == 2 and len(lines) == 1, (flag, text, err)
                assert lines[0].startswith(f"{prog}: error: {flag} "), (flag, text, err)


def test_the_messages_say_what_to_give(capsys):
    cases = {
        (
            "--fee",
            "nan",
        ): "--fee nan: must be a finite number ($/share, e.g. --fee 0.003; negative on inverted venues)",
        (
            "--connect-timeout",
            "0.5",
        ): "--connect-timeout 0.5: must be ≥ 1 (seconds, e.g. --connect-timeout 10)",
        ("--idle-timeout", "-5"): "--idle-timeout -5: must be more than 0 (seconds, e.g. --idle-timeout 30)",
        ("--jobs", "-1"): "--jobs -1: must be ≥ 1 (worker processes, e.g. --jobs 2)",
        ("--order-size", "5e3"): "--order-size '5e3' is not a whole number (shares, e.g. --order-size 5000)",
    }
    for (flag, text), message in cases.items():
        assert run_main("order_allocator.py", order_allocator.main, ["--csv", "x.csv", flag, text]) == 2
        assert capsys.readouterr().err == f"order_allocator.py: error: {message}\n"


def test_an_order_that_is_not_whole_steps_is_refused_not_reported_complete(capsys):
    # 250 shares in steps of 100 could never be sent whole: the last 50 would stay unfilled under `complete`
    assert (
        run_main("order_allocator.py", order_allocator.main, ["--csv", "x.csv", "--order-size", "250"]) == 2
    )
    assert capsys.readouterr().err == (
        "order_allocator.py: error: --order-size 250 is not a multiple of --step 100: orders go out in whole "
        "steps; give --order-size 200 or 300, or a --step that divides it\n"
    )
    args = ["--csv", "x.csv", "--order-size", "50"]
    assert run_main("order_allocator.py", order_allocator.main, args) == 2
    assert "give --order-size 100, or a --step that divides it" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flag",
    ["--horizon", "--warmup", "--calibration", "--latency-ms", "--jitter-ms", "--queue-power", "--lambda-over",
     "--lambda-under", "--theta-queue"],
)  # fmt: skip
def test_model_settings_given_as_text_are_checked_by_the_config_in_one_line(flag, capsys):
    # These stay text in argparse (a grid is a list), and allocator.config checks the numbers they become.
    for text in ("nan", "inf", "-inf", "1e400", "-1"):
        args = ["--csv", "x.csv", "--mode", "cont-kukanov", f"{flag}={text}"]
        assert run_main("order_allocator.py", order_allocator.main, args) == 2, (flag, text)
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"order_allocator.py: error: {flag} "), err
