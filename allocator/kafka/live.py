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
import pyarrow as pa

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
        self.held: list[pa.Table] = []  # rows no decision needs yet (see StreamEngine.next_due)

    def replay_started(self, start: dict[str, Any]) -> None:
        if self.engine is not None:
            log.warning("live: a newer replay started on the topic; routing it from the start")
        self.start = start
        self.held = []
        self.engine = self.new_engine(start)
        if self.window is None:
            self.engine.set_window(Window(int(start["window_start_ns"]), int(start["window_end_ns"])))

    def rows_arrived(self, table: pa.Table, polled_at: float) -> None:
        engine = self.engine
        if engine is None or not table.num_rows:
            return
        due = engine.next_due()
        if due is not None and engine.window is not None:
            last = table.column("ts_event")[-1].as_py()
            if last <= due:  # a cont-kukanov router between horizons: converting every poll costs ms
                self.held.append(table)
                return
        if self.held:
            table = pa.concat_tables([*self.held, table])
            self.held = []
        self._feed(engine, table, polled_at)

    def _feed(self, engine: StreamEngine, table: pa.Table, polled_at: float) -> None:
        """The table's columns the router reads, as numpy, this symbol's rows only, into the engine."""
        names = [n for n in table.column_names if engine.wants(n)]
        rows = {name: table.column(name).to_numpy() for name in names}
        if self.symbol is not None and "symbol" in table.column_names:
            keep = np.asarray(table.column("symbol").to_numpy() == self.symbol)
            if not keep.any():
                return
            if not keep.all():
                rows = {name: values[keep] for name, values in rows.items()}
        if engine.window is None:
            ts = rows["ts_event"].astype(np.int64)
            if (ts >= int(self.start["window_start_ns"])).any():  # the first window row: the date is known
                engine.set_window(_narrowed_window(self.start, ts, self.window))
        engine.feed(rows, polled_at)

    def replay_ended(self, polled_at: float) -> None:
        if self.engine is not None:
            if self.held:
                held, self.held = self.held, []
                self._feed(self.engine, pa.concat_tables(held), polled_at)
            self.engine.end(polled_at)
