"""`--live`: the router's decision at each tick, printed as the quotes arrive from Kafka.

It applies the snapshot rule incrementally (a venue's first message at a tick, otherwise its last
message at an earlier tick) and runs the specification's allocator on the remaining quantity, so the
lines it prints are the decisions the final report's router makes. In the faithful model the
penalties cannot change a decision, so the first grid point's parameters are used.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from allocator.allocation.static import Venue, allocate
from allocator.data.venues import FeeTable
from allocator.data.window import format_ns

log = logging.getLogger("order_allocator.live")
WAIT_REPORT_SECONDS = 1.0


class LiveRouter:
    def __init__(self, config, fees: FeeTable) -> None:
        self.order_size = config.order_size
        self.remaining = config.order_size
        self.step = config.step
        self.params = (config.lambda_over[0], config.lambda_under[0], config.theta_queue[0])
        self.fees = fees
        self.tick_ts: int | None = None
        self.first: dict[int, tuple[float, int]] = {}
        self.last: dict[int, tuple[float, int]] = {}
        self.known: dict[int, tuple[float, int]] = {}
        self.ticks = 0
        self.waited = 0
        self.fills: list[tuple[int, int, float, int]] = []  # (ts_event, publisher_id, price, shares)
        self.last_wait_report = time.monotonic()

    def on_rows(self, frame: pd.DataFrame) -> None:
        ts = frame["ts_event"].to_numpy(dtype=np.int64)
        pid = frame["publisher_id"].to_numpy(dtype=np.int64)
        ask = frame["ask_px_00"].to_numpy(dtype=np.float64)
        size = frame["ask_sz_00"].to_numpy(dtype=np.int64)
        for i in range(len(ts)):
            if ts[i] != self.tick_ts:
                self._close_tick()
                self.tick_ts = int(ts[i])
            quote = (float(ask[i]), int(size[i]))
            self.first.setdefault(int(pid[i]), quote)
            self.last[int(pid[i])] = quote

    def finish(self) -> None:
        self._close_tick()
        state = "filled" if self.remaining == 0 else f"{self.remaining} shares still unfilled"
        log.info("live: %d ticks, waited %d, %s", self.ticks, self.waited, state)

    def _close_tick(self) -> None:
        if self.tick_ts is None:
            return
        snapshot = self.known | self.first
        self.known.update(self.last)
        self.first, self.last = {}, {}
        self.ticks += 1
        if self.remaining <= 0:
            return
        venues = [
            Venue(
                ask=a,
                ask_size=s,
                fee=self.fees.lookup(p).taker_fee,
                rebate=self.fees.lookup(p).maker_rebate,
                publisher_id=p,
            )
            for p, (a, s) in sorted(snapshot.items())
            if np.isfinite(a) and a > 0 and s > 0
        ]
        split, _cost = allocate(self.remaining, venues, *self.params, step=self.step)
        when = format_ns(self.tick_ts)
        if not split:
            self.waited += 1
            now = time.monotonic()
            if now - self.last_wait_report >= WAIT_REPORT_SECONDS:
                self.last_wait_report = now
                shown = sum((v.ask_size // self.step) * self.step for v in venues)
                log.info(
                    "%s wait: %d shares displayed in whole steps < %d remaining (%d ticks waited)",
                    when,
                    shown,
                    self.remaining,
                    self.waited,
                )
            return
        parts = []
        for venue, q in zip(venues, split, strict=True):
            done = min(q, venue.ask_size)
            if done:
                parts.append(f"{self.fees.lookup(venue.publisher_id).name} {done}@{venue.ask:g}")
                self.fills.append((self.tick_ts, venue.publisher_id, venue.ask, done))
                self.remaining -= done
        log.info("%s fill: %s; remaining %d of %d", when, ", ".join(parts), self.remaining, self.order_size)
