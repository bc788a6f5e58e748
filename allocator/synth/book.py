"""One venue's price-level book and the MBP-10 rows its messages produce.

Each venue is simulated on its own; venues interact only through the latent price they react to.
"""

from __future__ import annotations

from allocator.data.schema import MAX_LEVELS
from allocator.synth.randomness import Uniforms
from allocator.synth.venues import VenueSpec

NO_PRICE = -1  # internal "undefined price" (an empty level); written as an empty field
_KEEP_LEVELS = 16  # hidden depth behind the 10 shown, so a vanished top level shifts a real one in
_MAX_LEVELS_KEPT = 30
_MAX_HIDDEN_GAP = 4  # ticks between hidden levels at most


class VenueBook:
    """One venue's price-level book and the MBP-10 rows its messages produce.

    Levels are [price_ticks, size, count] lists, best first. Sizes are sums of resting orders,
    so size >= count and count == 0 <=> size == 0 always hold; orders themselves are not tracked.
    """

    def __init__(self, spec: VenueSpec, u: Uniforms, m2: int) -> None:
        self.spec = spec
        self.u = u
        self.m2 = m2
        self.tight = [u() < spec.tight_prob, u() < spec.tight_prob]  # bid, ask
        self.bids: list[list[int]] = []
        self.asks: list[list[int]] = []
        self.last_ts = 0
        # output columns
        self.ts: list[int] = []
        self.action: list[str] = []
        self.side: list[str] = []
        self.depth: list[int] = []
        self.price: list[int] = []
        self.size: list[int] = []
        self.book: list[int] = []
        tb, ta = self.targets()
        self.bids.append(self.new_level(tb))
        self.asks.append(self.new_level(ta))
        self.replenish()

    # --- sizes -----------------------------------------------------------------------------
    def order_size(self) -> int:
        """Odd lots, round lots, mixed lots, and now and then a block of thousands of shares."""
        u = self.u
        r = u()
        if r < self.spec.block_prob:
            return u.randint(2000, 9600)
        if r < 0.33:
            return 1 + int(99 * u() ** 1.6)
        if r < 0.93:
            k = u()
            lots = 1 if k < 0.55 else 2 if k < 0.75 else 3 if k < 0.85 else 5 if k < 0.95 else 10
            return 100 * lots
        return 100 * u.randint(1, 4) + u.randint(1, 99)

    def quote_size(self) -> int:
        """A market maker's new quote at the touch: mostly round lots."""
        u = self.u
        r = u()
        if r < self.spec.block_prob:
            return u.randint(2000, 9600)
        if r < 0.15:
            return u.randint(10, 99)
        if r < 0.85:
            return 100 * u.randint(1, 5)
        return 100 * u.randint(1, 3) + u.randint(1, 99)

    def take_size(self) -> int:
        """Aggressor quantity of a background marketable order."""
        u = self.u
        r = u()
        if r < 0.45:
            return 1 + int(99 * u() ** 1.4)
        if r < 0.75:
            return 100
        if r < 0.95:
            return 100 * u.randint(2, 5)
        return 100 * u.randint(6, 20)

    def new_level(self, px: int) -> list[int]:
        count = 1
        while self.u() < 1.0 - 1.0 / self.spec.mean_orders and count < 12:
            count += 1
        return [px, sum(self.order_size() for _ in range(count)), count]

    # --- targets ---------------------------------------------------------------------------
    def targets(self) -> tuple[int, int]:
        """Where this venue wants its best bid/ask given the latent mid it knows about."""
        wb = 1 if self.tight[0] else 2
        wa = 1 if self.tight[1] else 2
        return (self.m2 - wb) // 2, -((-(self.m2 + wa)) // 2)

    def tight_targets(self) -> tuple[int, int]:
        """The tightest non-stale quotes: anything better is stale and gets removed."""
        return (self.m2 - 1) // 2, -((-(self.m2 + 1)) // 2)

    # --- recording -------------------------------------------------------------------------
    def emit(self, ts: int, action: str, side: str, depth: int, px: int, size: int) -> None:
        ts = max(ts, self.last_ts)
        self.last_ts = ts
        self.ts.append(ts)
        self.action.append(action)
        self.side.append(side)
        self.depth.append(depth)
        self.price.append(px)
        self.size.append(size)
        out = self.book
        bids, asks = self.bids, self.asks
        nb, na = len(bids), len(asks)
        for i in range(MAX_LEVELS):
            b = bids[i] if i < nb else None
            a = asks[i] if i < na else None
            out.append(b[0] if b else NO_PRICE)
            out.append(a[0] if a else NO_PRICE)
            out.append(b[1] if b else 0)
            out.append(a[1] if a else 0)
            out.append(b[2] if b else 0)
            out.append(a[2] if a else 0)

    # --- book operations (each emits one row) ----------------------------------------------
    def levels(self, is_bid: bool) -> list[list[int]]:
        return self.bids if is_bid else self.asks

    def add(self, ts: int, is_bid: bool, px: int, qty: int) -> None:
        book = self.levels(is_bid)
        if is_bid:
            assert not self.asks or px < self.asks[0][0], "bid add would cross the venue"
        else:
            assert not self.bids or px > self.bids[0][0], "ask add would cross the venue"
        i = 0
        while i < len(book) and (book[i][0] > px if is_bid else book[i][0] < px):
            i += 1
        if i < len(book) and book[i][0] == px:
            book[i][1] += qty
            book[i][2] += 1
        else:
            book.insert(i, [px, qty, 1])
        self.emit(ts, "A", "B" if is_bid else "A", i, px, qty)

    def front_order(self, level: list[int]) -> int:
        """Size of one resting order of a level (the remainder when it is the last one)."""
        size, count = level[1], level[2]
        if count == 1:
            return size
        cap = size - (count - 1)
        o = self.order_size()
        if o > cap or size - o < 5 * (count - 1):  # would leave dust behind: take a fair share
            o = max(1, size // count)
        return min(o, cap)

    def cancel(self, ts: int, is_bid: bool, i: int) -> None:
        book = self.levels(is_bid)
        level = book[i]
        px = level[0]
        q = self.front_order(level)
        level[1] -= q
        level[2] -= 1
        if level[2] == 0:
            del book[i]
        self.emit(ts, "C", "B" if is_bid else "A", i, px, q)

    def modify(self, ts: int, is_bid: bool, i: int) -> None:
        level = self.levels(is_bid)[i]
        old = self.front_order(level)
        new = max(1, min(self.order_size(), 2 * old + 100)) if self.u() < 0.5 else max(1, old // 2)
        level[1] += new - old
        self.emit(ts, "M", "B" if is_bid else "A", i, level[0], new)

    def trade(self, ts: int, buy: bool, qty: int, whole_level: bool) -> None:
        """A marketable order at the touch; one T row per resting order it fills."""
        book = self.asks if buy else self.bids
        if not book:
            return
        level = book[0]
        px = level[0]
        aggressor = "B" if buy else "A"
        while level[2] > 0 and (qty > 0 or whole_level):
            o = self.front_order(level)
            fill = o if whole_level else min(o, qty)
            qty -= fill
            level[1] -= fill
            if fill == o:
                level[2] -= 1
            if level[2] == 0:
                del book[0]
            side = "N" if self.u() < 0.03 else aggressor
            self.emit(ts, "T", side, 0, px, fill)

    def hidden_fill(self, ts: int) -> None:
        """Execution against non-displayed liquidity at the touch: aggressor unknown, book unchanged."""
        buy = self.u() < 0.5
        book = self.asks if buy else self.bids
        if book:
            self.emit(ts, "F", "N", 0, book[0][0], self.take_size())

    # --- maintenance -----------------------------------------------------------------------
    def replenish(self) -> None:
        """Keep hidden depth behind level 10 close behind it (no rows: MBP-10 does not show it).

        Hidden levels are rebuilt freely, so a level that shifts into view when a top level empties
        is always a plausible few ticks behind the old 10th level.
        """
        u, occ = self.u, self.spec.occupancy
        for book, direction in ((self.bids, -1), (self.asks, 1)):
            for i in range(MAX_LEVELS, len(book)):
                if abs(book[i][0] - book[i - 1][0]) > _MAX_HIDDEN_GAP:
                    del book[i:]
                    break
            while len(book) < _KEEP_LEVELS:
                gap = 1
                while u() > occ and gap < _MAX_HIDDEN_GAP:
                    gap += 1
                book.append(self.new_level(book[-1][0] + direction * gap))
            del book[_MAX_LEVELS_KEPT:]

    def pick_order_level(self, book: list[list[int]]) -> int:
        """Level of a random resting order among the shown ones, favouring the touch.

        Cancelling per order (not per level) keeps busy levels busy and lets thin far levels
        live long, so the shown depth neither thins out nor clumps.
        """
        n = min(MAX_LEVELS, len(book))
        weights = [book[i][2] / (1.0 + 0.2 * i) for i in range(n)]
        x = self.u() * sum(weights)
        for i, w in enumerate(weights):
            x -= w
            if x < 0:
                return i
        return n - 1

    def spread_ok_without_top(self, is_bid: bool) -> bool:
        book = self.levels(is_bid)
        if len(book) < 2 or not self.bids or not self.asks:
            return False
        if is_bid:
            return self.asks[0][0] - book[1][0] <= 3
        return book[1][0] - self.bids[0][0] <= 3

    def remove_stale(self, ts: int) -> int:
        """Take out quotes the latent price has moved through; returns the next free ts."""
        tb, ta = self.tight_targets()
        u = self.u
        for is_bid in (True, False):
            book = self.levels(is_bid)
            while book and (book[0][0] > tb if is_bid else book[0][0] < ta):
                if u() < self.spec.take_prob:
                    self.trade(ts, not is_bid, 0, whole_level=True)
                else:
                    while book and book[0][2] > 0 and (book[0][0] > tb if is_bid else book[0][0] < ta):
                        self.cancel(ts, is_bid, 0)
                        ts += 0 if u() < 0.5 else 1000 + int(u.expo(20_000))
                ts += 2000 + int(u.expo(40_000))
        return ts

    def improve(self, ts: int, is_bid: bool) -> int:
        """Join/lead at the target price on one side if the venue is behind it."""
        tb, ta = self.targets()
        u = self.u
        if is_bid and (not self.bids or self.bids[0][0] < tb):
            self.add(ts, True, tb, self.quote_size())
            ts += 1000 + int(u.expo(60_000))
        elif not is_bid and (not self.asks or self.asks[0][0] > ta):
            self.add(ts, False, ta, self.quote_size())
            ts += 1000 + int(u.expo(60_000))
        return ts

    def fix_spread(self, ts: int) -> int:
        """A venue never rests wider than 3 ticks for long: re-quote within microseconds."""
        while self.asks[0][0] - self.bids[0][0] > 3:
            tb, ta = self.targets()
            if self.bids[0][0] < tb:
                self.add(ts, True, tb, self.quote_size())
            else:
                self.add(ts, False, ta, self.quote_size())
            ts += 500 + int(self.u.expo(20_000))
        return ts

    # --- events ----------------------------------------------------------------------------
    def react(self, ts: int, m2: int) -> None:
        """The venue learns of a latent move: stale side traded/cancelled, then re-quoted."""
        self.m2 = m2
        ts = self.remove_stale(ts)
        first = self.u() < 0.5
        for is_bid in (first, not first):
            if self.u() < 0.9:
                ts = self.improve(ts, is_bid)
        self.fix_spread(ts)
        self.replenish()

    def background(self, ts: int) -> None:
        """One ordinary message: mostly adds/cancels near the top, some trades and modifies."""
        u, spec = self.u, self.spec
        # quoting style drifts: each side flips between tight and wide now and then
        for s in (0, 1):
            if u() < 0.02:
                self.tight[s] = u() < spec.tight_prob
        tb, ta = self.targets()
        behind_bid = self.bids[0][0] < tb
        behind_ask = self.asks[0][0] > ta
        if (behind_bid or behind_ask) and u() < 0.35:
            end = self.improve(ts, behind_bid and (not behind_ask or u() < 0.5))
            self.fix_spread(end)
            self.replenish()
            return
        r = u()
        a_p, c_p, m_p, t_p, _ = spec.mix
        is_bid = u() < 0.5
        book = self.levels(is_bid)
        depth = self.pick_order_level(book)
        if r < a_p:
            # orders are placed a few ticks behind the touch, which also refills empty ticks
            behind = min(int(u.expo(2.0)), 15) if u() < 0.55 else u.randint(0, 16)
            px = book[0][0] - behind if is_bid else book[0][0] + behind
            shown_last = book[min(MAX_LEVELS, len(book)) - 1][0]
            px = max(px, shown_last) if is_bid else min(px, shown_last)
            self.add(ts, is_bid, px, self.order_size())
        elif r < a_p + c_p:
            if depth == 0 and book[0][2] == 1 and not self.spread_ok_without_top(is_bid):
                depth = 1
            self.cancel(ts, is_bid, depth)
        elif r < a_p + c_p + m_p:
            self.modify(ts, is_bid, depth)
        elif r < a_p + c_p + m_p + t_p:
            self.trade(ts, u() < 0.5, self.take_size(), whole_level=False)
        else:
            self.hidden_fill(ts)
        self.fix_spread(ts + 500 + int(u.expo(30_000)))
        self.replenish()
