"""Whole runs at 11, 65 and 390 minutes (a 6.5 h day) of generated data: seconds and peak memory, and
both per million rows, for the faithful and the cont-kukanov mode.

Each run is `order_allocator.py --csv FILE` in a child process (its own peak RSS, from wait4), over the
whole file. The files come from the project's generator and are kept in bench/out/; the command that
makes each one is printed the first time. The faithful day is also run, in the same run, by a checkout of
the last commit before issue 14 (a git worktree under .sor_cache/), so "3× faster" is a ratio of two runs
on the same machine at the same time. Goals (issue 14): the faithful day ≥ 3× faster than before at peak
RSS ≤ 1.5 GB; the cont-kukanov day ≤ 2.5 GB; cost linear in rows (seconds and MB per million rows about
the same at every length, past the fixed cost of starting Python and importing the libraries).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
START = "13:30:00"
# minutes of data → end of the generated span (the generator's clock starts at START)
SPANS = {11: "13:41:00", 65: "14:35:00", 390: "20:00:00"}
FAITHFUL_DAY_GOAL_MB = 1500.0
CK_DAY_GOAL_MB = 2500.0
BEFORE_COMMIT = "195d5a09f4edd2836298d1393fd9400ae8cba920"  # main before issue 14's work


def day_file(minutes: int) -> Path:
    """The generated file of `minutes` from START, made once (about a minute per hour of data)."""
    path = OUT / f"synth-{minutes}min.csv.gz"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "allocator.synth", "--out", str(path), "--start", START]
        command += ["--end", SPANS[minutes]]
        print(f"   generating: {' '.join(command[1:])}", file=sys.stderr, flush=True)
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return path


def rows_of(path: Path) -> int:
    """Data rows of a generated file (its lines less the header)."""
    import gzip

    with gzip.open(path, "rb") as handle:
        return sum(1 for _ in handle) - 1


def timed_run(path: Path, mode: str, tree: Path = ROOT) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one whole run of `tree`'s order_allocator.py over `path`."""
    command = [sys.executable, "order_allocator.py", "--csv", str(path), "--start", "all"]
    command += ["--end", "all", "--mode", mode]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    assert child.stderr is not None
    errors = child.stderr.read().decode(errors="replace")
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {child.returncode}: {errors[-500:]}")
    return elapsed, usage.ru_maxrss / 1024


def before_tree() -> Path | None:
    """A checkout of the last commit before issue 14's work, to run the same day in the same run (None
    when the history is not there, e.g. a shallow clone)."""
    tree = ROOT / ".sor_cache" / f"bench-before-{BEFORE_COMMIT[:7]}"  # ignored by git, ruff, mypy and pytest
    if not (tree / "order_allocator.py").exists():
        made = subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), BEFORE_COMMIT],
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            print(f"   no checkout of {BEFORE_COMMIT[:7]}: {made.stderr.strip()}", file=sys.stderr)
            return None
    return tree


def run() -> list[tuple[str, float, str]]:
    figures: list[tuple[str, float, str]] = []
    tree = before_tree()
    before_s = before_mb = float("nan")
    if tree is not None:
        before_s, before_mb = timed_run(day_file(390), "faithful", tree)
        figures += [
            (f"[faithful] day with {BEFORE_COMMIT[:7]} (before issue 14): wall time", before_s, "s"),
            (f"[faithful] day with {BEFORE_COMMIT[:7]} (before issue 14): peak RSS", before_mb, "MB"),
        ]
    for mode in ("faithful", "cont-kukanov"):
        for minutes in SPANS:
            path = day_file(minutes)
            millions = rows_of(path) / 1e6
            seconds, peak_mb = timed_run(path, mode)
            label = f"[{mode}] {minutes} min ({millions:.2f}M rows)"
            figures += [
                (f"{label}: wall time", seconds, "s"),
                (f"{label}: peak RSS", peak_mb, "MB"),
                (f"{label}: seconds per million rows", seconds / millions, "s/Mrow"),
                (f"{label}: peak MB per million rows", peak_mb / millions, "MB/Mrow"),
            ]
            if minutes == 390 and mode == "faithful":
                figures.append(
                    ("[faithful] day: peak RSS / goal 1.5 GB (<= 1)", peak_mb / FAITHFUL_DAY_GOAL_MB, "ratio")
                )
                if tree is not None:
                    figures += [
                        ("[faithful] day: before / now, wall time (goal >= 3)", before_s / seconds, "ratio"),
                        ("[faithful] day: before / now, peak RSS", before_mb / peak_mb, "ratio"),
                    ]
            if minutes == 390 and mode == "cont-kukanov":
                figures.append(
                    ("[cont-kukanov] day: peak RSS / goal 2.5 GB (<= 1)", peak_mb / CK_DAY_GOAL_MB, "ratio")
                )
    return figures
