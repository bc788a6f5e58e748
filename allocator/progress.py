"""Progress of a long step on stderr: a tqdm bar on a terminal, plain periodic lines otherwise (logs, CI), and
nothing when asked to be quiet. stdout is never touched, so JSON output stays clean."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

PLAIN_INTERVAL_SECONDS = 10.0


class Progress:
    """Counts finished units of `total`; `advance` also takes a short status such as the orders done."""

    def __init__(
        self,
        total: int,
        what: str,
        *,
        quiet: bool = False,
        stream: TextIO | None = None,
        interval: float = PLAIN_INTERVAL_SECONDS,
    ) -> None:
        self.total, self.what, self.quiet = total, what, quiet
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.done = 0
        self.started = time.monotonic()
        self._last_line = self.started
        self._bar: tqdm | None = None
        if not quiet and self.stream.isatty():
            self._bar = tqdm(total=total, desc=what, unit="task", file=self.stream, dynamic_ncols=True)

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
        if now - self._last_line >= self.interval or self.done == self.total:
            self._last_line = now
            self.stream.write(self._line(now, status) + "\n")
            self.stream.flush()

    def _line(self, now: float, status: str) -> str:
        elapsed = now - self.started
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        parts = [f"{self.what}: {self.done}/{self.total} tasks", f"{elapsed:.0f} s"]
        if self.done < self.total and self.done:
            parts.append(f"ETA {eta:.0f} s")
        if status:
            parts.append(status)
        return ", ".join(parts)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
