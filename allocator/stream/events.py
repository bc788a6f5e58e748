"""What the streaming router emits: decisions, the child orders they send and the fills they get.

Every identifier is deterministic (parent id, decision index, venue, order type), so a re-run of the same
replay, or a consumer resumed from its checkpoint, emits the same ids and a downstream reader can drop the
copies (docs/routing_topics.md). Prices here are market prices, never cost space.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from allocator.data.window import format_ns
from allocator.snapshots.side import Side

ROUTING_SCHEMA = "sor-routing/1"
Batch = dict[
    str, np.ndarray
]  # rows as numpy columns of equal length (what the routers read; no pandas per poll)
OrderType = Literal["market", "limit"]


def clock(ts_ns: int) -> str:
    """HH:MM:SS.fff (UTC) of a nanosecond timestamp: what a person reads in the --live lines."""
    text = str(np.datetime64(int(ts_ns), "ns").astype("datetime64[ms]"))
    return text[11:23]


def parent_id(run_id: str, symbol: str | None, side: Side, settings: dict[str, Any]) -> str:
    """One parent order's id: the replay, the symbol and side, and a digest of every setting that shapes
    the routing, so a re-run of the same replay with the same settings gets the same id."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{run_id[:16]}-{symbol or 'all'}-{side}-{digest}"


@dataclass(frozen=True)
class ChildOrder:
    """One child order: a marketable IOC (`market`, capped at `price`) or a resting limit order."""

    order_id: str
    parent_id: str
    symbol: str | None
    side: Side
    venue: str
    publisher_id: int
    type: OrderType
    price: float  # market price: the limit of an IOC, the resting price of a limit order
    quantity: int
    decision_index: int
    decision_ts_ns: int
    tick_ts_event: int  # the snapshot tick decided on (faithful) or the decision time's last seen tick (ck)
    trigger_ts_event: int | None  # the row whose arrival made the decision possible (None: the end message)
    trigger_replay_index: int | None
    mode: str
    tif: str = "IOC"  # IOC, or "horizon" for a resting order cancelled at expires_ns
    expires_ns: int | None = None

    def message(self) -> dict[str, Any]:
        """The JSON value on --orders-topic (docs/routing_topics.md)."""
        doc = {"schema": ROUTING_SCHEMA, "kind": "order"} | asdict(self)
        doc["decision_ts"] = format_ns(self.decision_ts_ns)
        return doc


@dataclass(frozen=True)
class Fill:
    """One simulated fill of a child order."""

    fill_id: str
    order_id: str
    parent_id: str
    symbol: str | None
    side: Side
    venue: str
    publisher_id: int
    liquidity: str  # taker, maker or cleanup
    price: float  # market price
    quantity: int
    fee_per_share: float
    rebate: float  # $ earned on the fill (negative: paid)
    ts_ns: int
    mode: str

    def message(self) -> dict[str, Any]:
        """The JSON value on --fills-topic (docs/routing_topics.md)."""
        doc = {"schema": ROUTING_SCHEMA, "kind": "fill"} | asdict(self)
        doc["ts"] = format_ns(self.ts_ns)
        return doc


@dataclass
class DecisionEvent:
    """One decision of the live router, with what it sent and what the simulator filled at once."""

    index: int
    ts_ns: int
    kind: str  # faithful: split / wait; cont-kukanov: solve / no-quote / cleanup
    remaining: int  # shares still to do when deciding
    orders: list[ChildOrder] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    arrived_at: float | None = None  # time.monotonic() of the poll that made the decision possible
    detail: dict[str, Any] = field(default_factory=dict)
