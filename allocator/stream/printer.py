"""`--live`: every decision on stderr at a pace a person can follow.

Each split, solve and batch of fills is one line; runs of waits are summarised, at most one line a
second (wall clock), and the pending summary is always printed before the next split and at the end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from allocator.stream.events import DecisionEvent, Fill, clock

log = logging.getLogger("allocator.live")
WAIT_REPORT_SECONDS = 1.0


@dataclass
class _Waits:
    first_ns: int
    last_ns: int
    count: int
    detail: str


class LivePrinter:
    """A sink of the streaming engine that prints (a Sink: decision, fills, close)."""

    def __init__(
        self,
        order_size: int,
        side: str = "buy",
        emit: Callable[[str], None] | None = None,
        now: Callable[[], float] | None = None,
    ) -> None:
        self.order_size = order_size
        self.cap = "≤" if side == "buy" else "≥"  # a marketable IOC's limit: the worst price it accepts
        self.emit = emit or log.info
        self.now = now or time.monotonic
        self.waits: _Waits | None = None
        self.last_wait_line = self.now()
        self.filled = 0

    def header(self, text: str) -> None:
        self.emit(f"live: {text} (times UTC)")

    def decision(self, event: DecisionEvent) -> None:
        if event.kind == "wait":
            self._wait(event)
            return
        self._flush_waits()
        when = clock(event.ts_ns)
        if event.kind == "split":
            parts = ", ".join(f"{o.venue} {o.quantity}@{o.price:g}" for o in event.orders)
            left = event.remaining - sum(f.quantity for f in event.fills)
            self.emit(f"live {when} split: {parts}; remaining {left} of {self.order_size}")
        elif event.kind == "solve":
            market = [o for o in event.orders if o.type == "market"]
            limits = [o for o in event.orders if o.type == "limit"]
            text = f"live {when} decision {event.index + 1}: remaining {event.remaining}"
            text += "; market " + (
                ", ".join(f"{o.venue} {o.quantity}{self.cap}{o.price:g}" for o in market) or "0"
            )
            text += "; limit " + (", ".join(f"{o.venue} {o.quantity}@{o.price:g}" for o in limits) or "none")
            if limits and limits[0].expires_ns is not None:
                text += f" until {clock(limits[0].expires_ns)}"
            self.emit(text)
        elif event.kind == "no-quote":
            self.emit(
                f"live {when} decision {event.index + 1}: nothing quoted yet, remaining {event.remaining}"
            )
        elif event.kind == "cleanup":
            parts = ", ".join(f"{o.venue} {o.quantity}{self.cap}{o.price:g}" for o in event.orders)
            self.emit(f"live {when} clean-up at the close: {parts}; remaining {event.remaining}")
        if event.fills:
            self.fills(event.fills)

    def fills(self, fills: list[Fill]) -> None:
        """One line per batch of fills, per venue and liquidity, with the running total."""
        if not fills or (fills[0].liquidity == "taker" and fills[0].mode == "faithful"):
            self.filled += sum(f.quantity for f in fills)
            return  # the split line already said it
        self._flush_waits()
        self.filled += sum(f.quantity for f in fills)
        groups: dict[tuple[str, str, float], int] = {}
        for f in fills:
            key = (f.venue, f.liquidity, f.price)
            groups[key] = groups.get(key, 0) + f.quantity
        parts = ", ".join(f"{venue} {q}@{px:g} {kind}" for (venue, kind, px), q in groups.items())
        first, last = clock(fills[0].ts_ns), clock(fills[-1].ts_ns)
        span = first if first == last else f"{first}–{last}"
        self.emit(f"live {span} filled: {parts}; filled {self.filled} of {self.order_size}")

    def close(self) -> None:
        self._flush_waits()

    def _wait(self, event: DecisionEvent) -> None:
        w = self.waits
        if w is None:
            self.waits = _Waits(event.ts_ns, event.ts_ns, 1, str(event.detail.get("why", "")))
        else:
            w.last_ns, w.count, w.detail = event.ts_ns, w.count + 1, str(event.detail.get("why", ""))
        if self.now() - self.last_wait_line >= WAIT_REPORT_SECONDS:
            self._flush_waits()

    def _flush_waits(self) -> None:
        w = self.waits
        if w is None:
            return
        self.waits = None
        self.last_wait_line = self.now()
        span = clock(w.first_ns) if w.count == 1 else f"{clock(w.first_ns)}–{clock(w.last_ns)}"
        ticks = "1 tick" if w.count == 1 else f"{w.count} ticks"
        self.emit(f"live {span} waited {ticks}: {w.detail}")
