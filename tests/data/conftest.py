"""The data tests' own per-symbol cache: never the checkout's .sor_cache, never shared between tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from allocator.data.symbol_cache import CACHE_ENV


@pytest.fixture(autouse=True)
def private_symbol_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "symbol-cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    return cache
