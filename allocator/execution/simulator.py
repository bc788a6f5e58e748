"""The execution simulator of `--mode cont-kukanov`: every strategy's child orders meet the recorded market here.

Rules (each one has a test in tests/execution/test_simulator.py):

* Latency. A decision at time t may read only rows with ts_seen ≤ t (allocator.execution.book). An order sent at t
  reaches the venue at t + entry latency (constant, plus uniform jitter in [0, jitter] when asked), and it
  trades against the row in force there at that instant (last ts_event ≤ arrival), not the one it saw.
* Marketable orders (`take`, `sweep`) are IOC limit orders at the prices the strategy saw. They walk the
  venue's displayed levels cheapest first (MBP-10: up to ten levels; L1 files: the top level only), never
  beyond their limit, and pay the venue's taker fee on each share.
* Depletion. The data cannot know about our orders, so without this a repeated or carried snapshot would
  sell us the same shares again. Shares we took at (venue, price) stay missing from that level: the data's
  own later decreases there (trades and cancels that, in the recorded world, would have met those front
  shares first) use the deficit up, increases (new orders, behind) do not, so a one-share add never brings
  back what we took. A price that merely drops out of view (deeper than the displayed levels) tells
  nothing and changes nothing. Strategies deciding what to send see the same reduction.
* Resting orders (`rest`) join the back of the queue at the venue's best posting price (the bid for a buy):
  queue ahead = displayed size there at arrival. Trades that hit our side at our price consume the queue
  ahead first and then fill us; a trade at a worse price for the aggressor than ours ("through" us) would
  have met us first, so it fills us. Decreases of the level that trades do not explain are cancellations,
  handled by the queue model:
    - conservative: cancellations never advance us (they are assumed to be behind us); the queue ahead is
      only capped at the displayed level size (hftbacktest's risk-averse model);
    - probabilistic: a cancellation of c shares comes from ahead of us with probability
      f(ahead)/(f(ahead)+f(behind)), f(x) = x^power, in expectation; what the back cannot absorb comes from
      the front (hftbacktest's ProbQueueModel with a power function).
  Trade volume printed on a row is matched to the level's decrease on that row or the next one
  (`split_decrease`), so files that show the book after a trade (ours) and before it (Databento's trial
  file) are both read right, here and in the router's outflow samples.
  A maker fill earns the venue's rebate (negative rebate: the venue charges). When the venue's best posting
  price moves away from ours the order is cancelled and re-posted at the new best price, behind its
  displayed size; both take effect one latency after the move is seen, and the old order can still fill
  in between. (An order that arrives above a lower best bid is also moved down: it was meant to join the
  best bid, not to set it.) One venue holds at most one resting order of a strategy at a time: a new one
  goes live only once the previous one's cancel has landed, so no trade print fills two of our orders.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from allocator.execution.book import Book, VenueStream
from allocator.execution.models import FeeModel, LatencyModel, QueueModel

Liquidity = Literal["taker", "maker", "cleanup"]


def split_decrease(drop: float, pending: float, traded_now: float) -> tuple[float, float]:
    """The one rule matching printed trades to a level's decrease: (cancelled volume, pending for the next row).

    `drop` is the level's decrease on this row (≤ 0: none), `pending` the trade volume printed on the
    previous row not yet seen as a decrease, `traded_now` the volume printed on this row. A book printed
    after the trade shows the decrease on the trade's row, one printed before it on the next row; what is
    still unexplained after that is treated as hidden by same-row adds and forgotten, so it cannot swallow
    later genuine cancellations."""
    available = pending + traded_now
    explained = min(max(drop, 0.0), available)
    cancelled = max(drop, 0.0) - explained
    return cancelled, min(available - explained, traded_now)


LEDGER_FIELDS = ("ts", "venue", "price", "shares", "fee", "rebate", "kind", "queue_ahead", "order_id")


@dataclass
class Ledger:
    """Child fills of one strategy as growing lists (converted to arrays once, at the end)."""

    ts: list[int] = field(default_factory=list)
    venue: list[int] = field(default_factory=list)
    price: list[float] = field(default_factory=list)  # cost space
    shares: list[int] = field(default_factory=list)
    fee: list[float] = field(default_factory=list)  # $/share paid
    rebate: list[float] = field(default_factory=list)  # $ earned on the fill (negative: paid)
    kind: list[str] = field(default_factory=list)
    queue_ahead: list[float] = field(default_factory=list)  # at the order's arrival; NaN for takers
    order_id: list[int] = field(default_factory=list)

    def add(
        self,
        ts: int,
        venue: int,
        price: float,
        shares: int,
        fee: float,
        rebate: float,
        kind: str,
        queue_ahead: float,
        order_id: int,
    ) -> None:
        self.ts.append(int(ts))
        self.venue.append(int(venue))
        self.price.append(float(price))
        self.shares.append(int(shares))
        self.fee.append(float(fee))
        self.rebate.append(float(rebate))
        self.kind.append(kind)
        self.queue_ahead.append(float(queue_ahead))
        self.order_id.append(int(order_id))

    def __len__(self) -> int:
        return len(self.ts)

    def filled(self) -> int:
        return sum(self.shares)

    def copy(self) -> Ledger:
        return Ledger(*(list(getattr(self, name)) for name in LEDGER_FIELDS))

    def drop(self, keep: list[bool]) -> None:
        """Remove the fills whose flag is False (used when an order was cancelled in time)."""
        for name in LEDGER_FIELDS:
            values = getattr(self, name)
            setattr(self, name, [x for x, k in zip(values, keep, strict=True) if k])


class Depletion:
    """Shares we took at each (venue, price) that the venue's data has not yet used up (see module docstring)."""

    def __init__(self, book: Book) -> None:
        self.book = book
        # per venue: price → [row checked up to, size shown there, deficit still missing]
        self._taken: list[dict[float, list[int]]] = [{} for _ in book.streams]

    def available(self, venue: int, row: int) -> np.ndarray:
        """Displayed sizes of `row`'s take levels minus our deficit at each price."""
        stream = self.book.streams[venue]
        sizes = stream.take_sz[row].copy()
        taken = self._taken[venue]
        if not taken:
            return sizes
        for j, px in enumerate(stream.take_px[row]):
            deficit = self._deficit(venue, float(px), row)
            if deficit:
                sizes[j] = max(int(sizes[j]) - deficit, 0)
        return sizes

    def fork(self) -> Depletion:
        twin = Depletion(self.book)
        twin._taken = [{px: list(entry) for px, entry in taken.items()} for taken in self._taken]
        return twin

    def state(self) -> tuple:
        """A hashable snapshot of what we took and the data has not yet refilled: two sessions with equal
        states see the same available sizes from here on (what lets the grid share observations)."""
        return tuple(tuple(sorted((px, tuple(e)) for px, e in taken.items())) for taken in self._taken)

    def _deficit(self, venue: int, px: float, row: int) -> int:
        entry = self._taken[venue].get(px)
        if entry is None:
            return 0
        at_row, size, deficit = entry
        if row > at_row:  # let the data's decreases since the last look use the deficit up
            used, size = _decreases(self.book.streams[venue], at_row, row, px, size)
            deficit = max(deficit - used, 0)
            if deficit == 0:
                del self._taken[venue][px]
                return 0
            entry[:] = [row, size, deficit]
        return deficit

    def record(self, venue: int, row: int, px: float, shares: int) -> None:
        stream = self.book.streams[venue]
        deficit = self._deficit(venue, px, row)
        size = int(stream.take_sz[row][stream.take_px[row] == px].sum())
        entry = self._taken[venue].get(px)
        if entry is None or row >= entry[0]:
            self._taken[venue][px] = [row, size, deficit + shares]
        else:  # an earlier record at a later row stands: keep its row and size
            self._taken[venue][px] = [entry[0], entry[1], deficit + shares]


def _decreases(stream: VenueStream, after: int, upto: int, px: float, size: int) -> tuple[int, int]:
    """(Σ decreases of the size shown at price px over rows (after, upto], the last size known).

    A row shows px's size if px is among its levels; px better than its best level means the level is
    gone (size 0); px deeper than its last level, or an empty row, tells nothing (size carried)."""
    px_block = stream.take_px[after + 1 : upto + 1]
    sz_block = stream.take_sz[after + 1 : upto + 1]
    shown = np.where(px_block == px, sz_block, 0).sum(axis=1).astype(float)
    listed = (px_block == px).any(axis=1)
    gone = ~listed & (px < px_block[:, 0])
    unknown = ~listed & ~gone
    shown[gone] = 0.0
    if unknown.any():  # carry the last known size over rows that cannot see px
        shown[unknown] = np.nan
        known = np.concatenate(([float(size)], shown))
        index = np.where(np.isnan(known), 0, np.arange(len(known)))
        np.maximum.accumulate(index, out=index)
        shown = known[index][1:]
    path = np.concatenate(([float(size)], shown))
    used = float(np.clip(path[:-1] - path[1:], 0, None).sum())
    return int(used), int(path[-1])


class Simulator:
    """One strategy's session against the recorded market: its fills, its depletion, its latency draws."""

    def __init__(
        self,
        book: Book,
        fees: FeeModel,
        latency: LatencyModel,
        queue: QueueModel,
        seed: int = 0,
    ) -> None:
        self.book = book
        self.fees = fees
        self.latency = latency
        self.queue = queue
        self.rng = np.random.default_rng(seed)
        self.depletion = Depletion(book)
        self.ledger = Ledger()
        self._next_order = 0
        self._venue_free: dict[int, int] = {}  # venue → when our last resting order there stopped being live

    def fork(self) -> Simulator:
        """A copy of this session's state (fills, depletion, latency draws, venues busy) on the same market:
        what a stream runs a horizon on before all its rows are in, to learn the fills already final."""
        twin = copy.copy(self)
        twin.rng = copy.deepcopy(self.rng)
        twin.depletion = self.depletion.fork()
        twin.ledger = self.ledger.copy()
        twin._venue_free = dict(self._venue_free)
        return twin

    def _order_id(self) -> int:
        self._next_order += 1
        return self._next_order

    @property
    def orders_sent(self) -> int:
        """The last order id given out (ids count up from 1 in each session)."""
        return self._next_order

    def sweep_plan(self, t_sent: int, shares: int) -> dict[int, tuple[float, int]]:
        """The IOCs `sweep` would send at t_sent: venue → (limit price, shares), cheapest seen levels first
        (price + taker fee, ties to the lower publisher_id, then the nearer level)."""
        cands: list[tuple[float, int, int, float, int]] = []
        for v in range(len(self.book.streams)):
            prices, sizes = self.seen_take_levels(v, t_sent)
            fee = self.fees.taker_fee(v)
            for j in range(len(prices)):
                if sizes[j] > 0 and np.isfinite(prices[j]):
                    cands.append((float(prices[j]) + fee, v, j, float(prices[j]), int(sizes[j])))
        cands.sort()
        plan: dict[int, tuple[float, int]] = {}
        left = int(shares)
        for _all_in, v, _j, px, size in cands:
            if left == 0:
                break
            q = min(size, left)
            cap, sent = plan.get(v, (px, 0))
            plan[v] = (max(cap, px), sent + q)
            left -= q
        return plan

    # ------------------------------------------------------------------ what a strategy may look at

    def seen_take_levels(self, venue: int, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Prices and sizes (after our own takes) of the levels we could take, as known at time t."""
        stream = self.book.streams[venue]
        row = stream.row_seen(t)
        if row < 0:
            return np.empty(0), np.empty(0, np.int64)
        return stream.take_px[row], self.depletion.available(venue, row)

    # ------------------------------------------------------------------ marketable orders

    def take(self, venue: int, t_sent: int, limit_px: float, shares: int, kind: Liquidity = "taker") -> int:
        """IOC order sent at t_sent: walk the venue's levels up to limit_px at arrival. Returns shares filled."""
        stream = self.book.streams[venue]
        arrival = t_sent + self.latency.draw(self.rng)
        return self._take_at(venue, stream, arrival, limit_px, shares, kind, self._order_id())

    def _take_at(
        self, venue: int, stream: VenueStream, arrival: int, limit_px: float, shares: int, kind: str, oid: int
    ) -> int:
        row = stream.row_at(arrival)
        if row < 0 or shares <= 0:
            return 0
        available = self.depletion.available(venue, row)
        prices = stream.take_px[row]
        fee = self.fees.taker_fee(venue)
        left = int(shares)
        for j in range(len(prices)):
            px = float(prices[j])
            if not px <= limit_px:  # NaN (empty level) or beyond our limit: stop walking
                break
            q = min(int(available[j]), left)
            if q <= 0:
                continue
            self.ledger.add(arrival, venue, px, q, fee, 0.0, kind, math.nan, oid)
            self.depletion.record(venue, row, px, q)
            left -= q
            if left == 0:
                break
        return int(shares) - left

    def sweep(self, t_sent: int, shares: int, kind: Liquidity = "taker") -> int:
        """A marketable order for `shares` across venues: the cheapest seen levels (price + taker fee, ties to
        the lower publisher_id, then the nearer level) are chosen until `shares` are covered, and one IOC per
        venue goes out capped at the worst price chosen there. Returns shares filled."""
        if shares <= 0:
            return 0
        plan = self.sweep_plan(t_sent, shares)
        return sum(self.take(v, t_sent, cap, q, kind) for v, (cap, q) in plan.items())

    # ------------------------------------------------------------------ resting orders

    def rest(self, venue: int, price: float, shares: int, t_sent: int, t_cancel_sent: int) -> int:
        """A limit order at `price` (cost space) sent at t_sent and cancelled at t_cancel_sent (both reach the
        venue one latency later). Re-posted at the venue's new best price whenever that moves. It goes live
        only once this strategy's previous order at the venue is gone. Returns the shares filled."""
        stream = self.book.streams[venue]
        oid = self._order_id()
        free = self._venue_free.get(venue, np.iinfo(np.int64).min)
        arrival = max(t_sent + self.latency.draw(self.rng), free)
        cancel_at = t_cancel_sent + self.latency.draw(self.rng)
        left = int(shares)
        ended = arrival
        while left > 0 and arrival < cancel_at and math.isfinite(price):
            left, move, ended = self._live(venue, stream, price, left, arrival, cancel_at, oid)
            if move is None:
                break
            new_arrival, price = move
            arrival = max(new_arrival, arrival + 1)  # time always moves forward, even with zero latency
            oid = self._order_id()
        self._venue_free[venue] = max(free, ended)
        return int(shares) - left

    def _live(
        self, venue: int, stream: VenueStream, price: float, left: int, arrival: int, cancel_at: int, oid: int
    ) -> tuple[int, tuple[int, float] | None, int]:
        """One posting of a resting order, until filled, cancelled, or moved. Returns (shares left, move, end)
        where move = (arrival of the re-posted order, its price) or None, and end = when this posting stopped
        being live (its last fill, or its cancel landing)."""
        rebate = self.fees.maker_rebate(venue)
        left, ahead, level, row, move_seen = self._join(venue, stream, price, left, arrival, oid)
        if left == 0:
            return 0, None, arrival
        queue_at_post = ahead
        pending = 0.0  # trade volume printed at our price on the last row, not yet seen as a decrease
        cancel_effective = cancel_at
        if move_seen is not None:
            cancel_effective = min(cancel_at, move_seen + self.latency.draw(self.rng))
        interesting = stream.interesting
        i = int(np.searchsorted(interesting, row + 1))
        ts_event, hit_px, hit_sz = stream.ts_event, stream.hit_px, stream.hit_sz
        post_px, post_sz, ts_seen = stream.post_px, stream.post_sz, stream.ts_seen
        while i < len(interesting):
            r = int(interesting[i])
            i += 1
            te = int(ts_event[r])
            if te >= cancel_effective:
                break
            hp = float(hit_px[r])
            traded_now = 0.0
            if hp == hp:  # a trade against our side
                hs = int(hit_sz[r])
                fill = 0
                if hp < price:  # it traded through our price: we were in front of it
                    fill = min(left, hs)
                    ahead = 0.0
                elif hp == price:
                    fill = min(left, max(int(hs - ahead), 0)) if not math.isinf(ahead) else 0
                    ahead = max(ahead - hs, 0.0)
                    traded_now = float(hs)
                if fill:
                    self.ledger.add(te, venue, price, fill, 0.0, fill * rebate, "maker", queue_at_post, oid)
                    left -= fill
                    if left == 0:
                        return 0, None, te
            pp = float(post_px[r])
            if pp == price:
                new = float(post_sz[r])
                cancelled, pending = split_decrease(level - new, pending, traded_now)
                if cancelled > 0:
                    ahead = self.queue.after_cancel(ahead, level, cancelled)
                ahead = min(ahead, new)
                level = new
            else:
                pending = 0.0
                if move_seen is None:
                    move_seen = int(ts_seen[r])
                    cancel_effective = min(cancel_at, move_seen + self.latency.draw(self.rng))
        if move_seen is None or cancel_effective >= cancel_at:
            return left, None, cancel_effective
        return left, self._repost(stream, move_seen, cancel_effective, cancel_at), cancel_effective

    def _join(
        self, venue: int, stream: VenueStream, price: float, left: int, arrival: int, oid: int
    ) -> tuple[int, float, float, int, int | None]:
        """Where a new posting stands when it arrives: (shares left after any marketable part, queue ahead,
        our level's displayed size, the row in force, when we see that a better price is in front of us,
        or None while ours is the best)."""
        row = stream.row_at(arrival)
        move_seen: int | None = None
        if row >= 0 and stream.post_px[row] == price:
            ahead = float(stream.post_sz[row])
        elif row < 0 or not stream.post_px[row] >= price:  # NaN or below ours: our price would be the best
            if row >= 0 and stream.take_px[row, 0] <= price:  # ... and marketable: it trades as a taker
                left -= self._take_at(venue, stream, arrival, price, left, "taker", oid)
            ahead = 0.0
            if row >= 0:
                move_seen = max(arrival, int(stream.ts_seen[row]))
        else:  # better prices are in front of us: nothing fills until we re-post
            ahead = math.inf
            move_seen = max(arrival, int(stream.ts_seen[row]))
        level = float(stream.post_sz[row]) if row >= 0 and stream.post_px[row] == price else 0.0
        return left, ahead, level, row, move_seen

    def _repost(
        self, stream: VenueStream, move_seen: int, cancel_effective: int, cancel_at: int
    ) -> tuple[int, float] | None:
        """(arrival, price) of the re-posted order: at the best posting price seen when we noticed the move,
        or the next one to appear before the order's cancel lands; None when none does. (So a posting reads
        only rows before its cancel lands, which lets a stream execute each horizon once its rows are in.)"""
        seen_row = stream.row_seen(move_seen)
        nxt = seen_row
        while nxt < stream.rows and stream.ts_seen[nxt] < cancel_at and not np.isfinite(stream.post_px[nxt]):
            nxt += 1
        if nxt >= stream.rows or stream.ts_seen[nxt] >= cancel_at:
            return None
        drawn = (
            cancel_effective if nxt == seen_row else int(stream.ts_seen[nxt]) + self.latency.draw(self.rng)
        )
        return max(drawn, cancel_effective), float(stream.post_px[nxt])
