"""What the consumer shows while a replay arrives: rows and rows/s, lag behind the topic's end, where the
data's clock is, and an ETA. A replay at 1× takes as long as its window (8.7 min for the trial's), so
silence would look like a hang; a replay that finishes within one interval prints nothing.

On a terminal it is a tqdm bar; otherwise a plain line every 10 s or $SOR_PROGRESS_SECONDS (allocator.progress).
"""

from __future__ import annotations

import time
from typing import TextIO

from allocator.data.window import format_ns
from allocator.progress import Progress


class ReplayProgress:
    """Progress of the replay followed, in rows of the `rows` its start message announced."""

    def __init__(
        self, *, quiet: bool = False, stream: TextIO | None = None, interval: float | None = None
    ) -> None:
        self.quiet, self.stream, self.interval = quiet, stream, interval
        self.run_id: str | None = None
        self.started = time.monotonic()
        self._bar: Progress | None = None

    def update(
        self,
        run_id: str,
        expected_rows: int,
        received_rows: int,
        *,
        lag_messages: int | None,
        data_ns: int | None,
        window_end_ns: int | None,
    ) -> None:
        """After a poll: the replay `run_id` has `received_rows` of `expected_rows`; `lag_messages` are
        on the topic past our position (None: not known yet); the newest row read is at `data_ns`."""
        if self.quiet:
            return
        if run_id != self.run_id:  # a newer replay replaced the one followed: start over
            self.close()
            self.run_id = run_id
            self.started = time.monotonic()
            self._bar = Progress(
                expected_rows,
                "replay",
                stream=self.stream,
                interval=self.interval,
                unit="row",
                silent_if_fast=True,
            )
        assert self._bar is not None
        if received_rows == self._bar.done and self._bar.done >= self._bar.total:
            return  # complete and said so; the polls that look for a newer replay add nothing
        elapsed = time.monotonic() - self.started
        status = [f"{received_rows / elapsed:,.0f} rows/s" if elapsed > 0 else "", _lag(lag_messages)]
        if data_ns is not None:
            clock = format_ns(data_ns)[11:19]
            status.append(
                f"data at {clock}" + (f" of {format_ns(window_end_ns)[11:19]}" if window_end_ns else "")
            )
        self._bar.advance(max(received_rows - self._bar.done, 0), ", ".join(s for s in status if s))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _lag(messages: int | None) -> str:
    return "" if messages is None else f"lag {messages:,} msgs"
