"""A tiny study every study test can afford: two 2-minute synthetic paths (generated once per session), two
arrivals per path on both sides, a two-point grid."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY = [
    "--synthetic", "2", "--path-minutes", "2", "--arrivals", "2", "--calibration", "20", "--warmup", "5",
    "--order-horizon", "20", "--lambda-over", "0", "--lambda-under", "0.01,5", "--theta-queue", "0.5",
    "--block", "1", "--resamples", "500", "-q",
]  # fmt: skip


@pytest.fixture(scope="session")
def path_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("study-paths")


@pytest.fixture
def tiny(path_cache: Path) -> list[str]:
    return [*TINY, "--cache-dir", str(path_cache)]
