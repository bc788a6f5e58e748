"""librdkafka's error callback, summarised: while a broker is down it reports the same failure (e.g.
"Connect to ipv4#127.0.0.1:9092 failed") every few hundred milliseconds, which floods stderr with dozens of
identical lines. The first occurrence of each error is logged at once; repeats are counted and reported as
one line per interval, and whatever is left when the client closes."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

REPEAT_INTERVAL_SECONDS = 30.0
_VOLATILE = re.compile(r"\d+(\.\d+)?\s*ms|\(after \d+ms in state \w+\)|\d+/\d+ brokers")


class ErrorSummary:
    """An `error_cb` for a client: logs each distinct error once, then counts its repeats."""

    def __init__(
        self,
        log: logging.Logger,
        render: Callable[[object], str] = str,
        interval: float = REPEAT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log, self.render, self.interval, self.clock = log, render, interval, clock
        self._repeats: dict[str, int] = {}
        self._seen: set[str] = set()
        self._last_report = clock()

    def __call__(self, error: object) -> None:
        text = self.render(error)
        key = _VOLATILE.sub("…", text)
        if key not in self._seen:
            self._seen.add(key)
            self.log.warning("kafka: %s", text)
        else:
            self._repeats[key] = self._repeats.get(key, 0) + 1
        if self.clock() - self._last_report >= self.interval:
            self.flush()

    def flush(self) -> None:
        """One line per error that repeated since the last report."""
        for key, count in self._repeats.items():
            if count:
                self.log.warning(
                    "kafka: the same error %d more time%s: %s", count, "" if count == 1 else "s", key
                )
        self._repeats.clear()
        self._last_report = self.clock()
