"""Progress of a long step on stderr: a tqdm bar on a terminal, plain periodic lines otherwise (logs, CI), and
nothing when asked to be quiet. stdout is never touched, so JSON output stays clean."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from tqdm import tqdm

PLAIN_INTERVAL_SECONDS = 10.0
INTERVAL_ENV = "SOR_PROGRESS_SECONDS"  # the plain lines' interval, for logs that want more or fewer


def plain_interval() -> float:
    """Seconds between plain lines: $SOR_PROGRESS_SECONDS when it is a number > 0, else 10."""
    try:
        seconds = float(os.environ.get(INTERVAL_ENV, ""))
    except ValueError:
        return PLAIN_INTERVAL_SECONDS
    return seconds if seconds > 0 else PLAIN_INTERVAL_SECONDS


class Progress:
    """Counts finished units of `total`; `advance` also takes a short status such as the orders done."""

    def __init__(
        self,
        total: int,
        what: str,
        *,
        quiet: bool = False,
        stream: TextIO | None = None,
        interval: float | None = None,
        unit: str = "task",
        silent_if_fast: bool = False,
    ) -> None:
        self.total, self.what, self.quiet, self.unit = total, what, quiet, unit
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval if interval is not None else plain_interval()
        # A step that ends within one interval says nothing in plain mode: a 0.3 s grid needs no report.
        self.silent_if_fast = silent_if_fast
        self.done = 0
        self.started = time.monotonic()
        self._last_line = self.started
        self._lines = 0
        self._bar: tqdm | None = None
        if not quiet and self.stream.isatty():
            self._bar = tqdm(total=total, desc=what, unit=unit, file=self.stream, dynamic_ncols=True)

    def advance(self, count: int = 1, status: str = "") -> None:
        self.done += count
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.update(count)
            if status:
                self._bar.set_postfix_str(status, refresh=False)
            return
        now = time.monotonic()
        due = now - self._last_line >= self.interval
        final = self.done == self.total and not (self.silent_if_fast and self._lines == 0)
        if due or final:
            self._last_line = now
            self._lines += 1
            self.stream.write(self._line(now, status) + "\n")
            self.stream.flush()

    def _line(self, now: float, status: str) -> str:
        elapsed = now - self.started
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        parts = [f"{self.what}: {self.done}/{self.total} {self.unit}s", f"{elapsed:.0f} s"]
        if self.done < self.total and self.done:
            parts.append(f"ETA {eta:.0f} s")
        if status:
            parts.append(status)
        return ", ".join(parts)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
