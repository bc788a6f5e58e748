"""The streaming router's Kafka edge: the consumer's rows, as they arrive, into allocator.stream's engine.

`StreamFeed` is the consumer's RowListener (allocator.kafka.replay_state): it learns the replay's window
from its start message (narrowed by the consumer's own --start/--end once the first window row is in, as
stream_market_data narrows it), keeps only the chosen symbol's rows, and hands every batch to the engine
with the time its poll returned. A newer replay on the topic starts a new engine, as the consumer starts
over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from allocator.data.window import Window, WindowSpec
from allocator.kafka.consumer import _narrowed_window
from allocator.stream.engine import StreamEngine

log = logging.getLogger(__name__)


class StreamFeed:
    """A RowListener that routes the replay live (see the module docstring)."""

    def __init__(
        self,
        new_engine: Callable[[dict[str, Any]], StreamEngine],
        window: WindowSpec | None = None,
        symbol: str | None = None,
    ) -> None:
        self.new_engine, self.window, self.symbol = new_engine, window, symbol
        self.engine: StreamEngine | None = None
        self.start: dict[str, Any] = {}

    def replay_started(self, start: dict[str, Any]) -> None:
        if self.engine is not None:
            log.warning("live: a newer replay started on the topic; routing it from the start")
        self.start = start
        self.engine = self.new_engine(start)
        if self.window is None:
            self.engine.set_window(Window(int(start["window_start_ns"]), int(start["window_end_ns"])))

    def rows_arrived(self, rows: pd.DataFrame, polled_at: float) -> None:
        engine = self.engine
        if engine is None or not len(rows):
            return
        if self.symbol is not None and "symbol" in rows.columns:
            rows = rows.loc[np.asarray(rows["symbol"] == self.symbol)]
            if not len(rows):
                return
        if engine.window is None:
            ts = rows["ts_event"].to_numpy(dtype=np.int64)
            if (ts >= int(self.start["window_start_ns"])).any():  # the first window row: the date is known
                engine.set_window(_narrowed_window(self.start, ts, self.window))
        engine.feed(rows, polled_at)

    def replay_ended(self, polled_at: float) -> None:
        if self.engine is not None:
            self.engine.end(polled_at)
