"""Smart-order-router research package: Cont–Kukanov allocation across venues and its evaluation."""

from allocator.allocation.static import Quote, Venue, allocate, allocate_exhaustive

__all__ = ["Quote", "Venue", "allocate", "allocate_exhaustive"]
