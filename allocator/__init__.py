"""Smart-order-router research package: Cont–Kukanov allocation across venues and its evaluation.

From Python: `allocator.load(path)`, `allocator.run(data)` (its `.report` is order_allocator.py's JSON)
and `allocator.run_study(...)` (python -m allocator.study); see allocator.api. They are imported on
first use, so `import allocator` stays light.
"""

from importlib import metadata
from typing import Any

from allocator.allocation.static import Quote, Venue, allocate, allocate_exhaustive

try:  # installed (pip install .): the distribution's version; run from the repository: pyproject's
    __version__ = metadata.version("sor-kafka-allocator")
except metadata.PackageNotFoundError:
    __version__ = "0.1.0"

_API = ("load", "run", "run_study", "Run")

__all__ = ["Quote", "Venue", "__version__", "allocate", "allocate_exhaustive", *_API]


def __getattr__(name: str) -> Any:
    """The API functions, imported when first asked for (they pull in pandas, pyarrow and the pipeline)."""
    if name in _API:
        from allocator import api

        return getattr(api, name)
    raise AttributeError(f"module 'allocator' has no attribute {name!r}")
