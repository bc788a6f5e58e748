"""Smart-order-router research package: Cont–Kukanov allocation across venues and its evaluation."""

from allocator.allocation.static import Venue, allocate, allocate_exhaustive

__all__ = ["Venue", "allocate", "allocate_exhaustive"]
