"""Progress on stderr: plain periodic lines when stderr is not a terminal, a bar when it is, nothing with -q."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

from allocator.progress import Progress

ROOT = Path(__file__).resolve().parents[1]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_count_units_and_give_an_eta() -> None:
    stream = io.StringIO()
    progress = Progress(3, "grid", stream=stream, interval=0, unit="point")
    for _ in range(3):
        progress.advance(1, "best so far 12.5")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"grid: 1/3 points, \d+ s, ETA \d+ s, best so far 12\.5", lines[0])
    assert re.fullmatch(r"grid: 3/3 points, \d+ s, best so far 12\.5", lines[2])  # no ETA once done


def test_a_step_shorter_than_the_interval_prints_only_its_end_or_nothing() -> None:
    stream = io.StringIO()
    progress = Progress(3, "study", stream=stream, interval=3600)
    for _ in range(3):
        progress.advance()
    assert stream.getvalue().splitlines() == [stream.getvalue().splitlines()[0]]
    assert stream.getvalue().startswith("study: 3/3 tasks, ")
    fast = io.StringIO()
    progress = Progress(3, "grid", stream=fast, interval=3600, silent_if_fast=True)
    for _ in range(3):
        progress.advance()
    assert fast.getvalue() == ""


def test_quiet_prints_nothing_and_a_terminal_gets_a_bar() -> None:
    quiet = Terminal()
    progress = Progress(2, "grid", stream=quiet, quiet=True)
    progress.advance(2)
    progress.close()
    assert quiet.getvalue() == ""
    terminal = Terminal()
    progress = Progress(2, "grid", stream=terminal, unit="point")
    progress.advance(2)
    progress.close()
    assert "2/2" in terminal.getvalue() and "point" in terminal.getvalue()


def test_the_command_keeps_a_fast_grid_silent_and_q_silences_progress() -> None:
    command = [sys.executable, "order_allocator.py", "--csv", "data/l1_day.csv.gz", "--jobs", "1"]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    assert "grid:" not in out.stderr  # 125 faithful points take well under the 10 s interval
    quiet = subprocess.run([*command, "-q"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "grid:" not in quiet.stderr
    assert quiet.stdout == out.stdout.replace(
        re.search(r'"elapsed_seconds": [0-9.]+', out.stdout).group(0),  # type: ignore[union-attr]
        re.search(r'"elapsed_seconds": [0-9.]+', quiet.stdout).group(0),  # type: ignore[union-attr]
    )
