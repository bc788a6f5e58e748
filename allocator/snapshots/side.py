"""Buy or sell: the one place that knows how a side maps to prices.

Internally every strategy works in *cost space*: a price is `sign · price` with sign +1 for a buy and −1 for
a sell, so "cheaper" is always "lower" and the same code routes both sides (see allocator.execution.book). These
helpers turn cost-space numbers back into market prices and cash for the report.
"""

from __future__ import annotations

from typing import Literal, overload

import numpy as np

Side = Literal["buy", "sell"]
SIDES: tuple[Side, ...] = ("buy", "sell")


def side_sign(side: Side) -> int:
    """+1 for a buy, −1 for a sell."""
    if side == "buy":
        return 1
    if side == "sell":
        return -1
    raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")


@overload
def market_price(cost_price: float, side: Side) -> float: ...
@overload
def market_price(cost_price: np.ndarray, side: Side) -> np.ndarray: ...
def market_price(cost_price: float | np.ndarray, side: Side) -> float | np.ndarray:
    """A cost-space price back in market terms (works on scalars and arrays)."""
    return side_sign(side) * cost_price


def side_letter(side: Side) -> str:
    """Databento's side letter for our orders: B for bids (buying), A for asks (selling)."""
    return "B" if side == "buy" else "A"
