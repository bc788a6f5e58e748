"""Smart-order-router research package: Cont–Kukanov allocation across venues and its evaluation."""

from importlib import metadata

from allocator.allocation.static import Quote, Venue, allocate, allocate_exhaustive

try:  # installed (pip install .): the distribution's version; run from the repository: pyproject's
    __version__ = metadata.version("sor-kafka-allocator")
except metadata.PackageNotFoundError:
    __version__ = "0.1.0"

__all__ = ["Quote", "Venue", "__version__", "allocate", "allocate_exhaustive"]
