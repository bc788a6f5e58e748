"""The study on Dask: a LocalCluster, a real `dask scheduler` with two `dask worker` processes on loopback,
and the plain in-process loop all give identical answers and orders tables."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from allocator.config import PenaltyGrid, RunConfig, SimSettings
from allocator.data.venues import load_fee_table
from allocator.data.window import NS_PER_SECOND
from allocator.errors import UserError
from allocator.study.engine import DaskEngine, InProcessEngine
from allocator.study.paths import synthetic_sources
from allocator.study.plan import OrderPlan
from allocator.study.run import run_study

REPO = Path(__file__).resolve().parents[2]
CONFIG = RunConfig(
    order_size=5000,
    mode="cont-kukanov",
    grid=PenaltyGrid((0.0,), (0.01, 5.0), (0.5,)),
    sim=SimSettings.from_units(horizon_seconds=10, warmup_seconds=5, calibration_seconds=20),
)
ORDERS = OrderPlan(arrivals=2, order_horizon_ns=20 * NS_PER_SECOND)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_scheduler(port: int, timeout: float = 60) -> None:
    """Until the scheduler accepts TCP on loopback `port`; the test fails if it has not within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"the dask scheduler did not start within {timeout:g} s", pytrace=False)
            time.sleep(0.2)


@pytest.fixture
def external_cluster(tmp_path: Path) -> Iterator[str]:
    """`dask scheduler` and two single-threaded `dask worker` processes, started from the repository."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = os.environ | {"PYTHONPATH": str(REPO)}
    common = {"cwd": REPO, "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    dask = [sys.executable, "-m", "dask"]
    procs = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], **common
        )
    ]  # type: ignore[call-overload]
    try:
        from distributed import Client

        _wait_for_scheduler(port)
        for name in ("w1", "w2"):
            procs.append(
                subprocess.Popen(
                    [*dask, "worker", address, "--nthreads", "1", "--name", name, "--no-dashboard"], **common
                )
            )  # type: ignore[call-overload]
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
            assert len(client.scheduler_info()["workers"]) == 2
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.slow
def test_local_cluster_external_cluster_and_in_process_loop_agree(
    tmp_path: Path, path_cache: Path, external_cluster
):
    sources = synthetic_sources(2, 1, 2.0, path_cache)
    fees = load_fee_table()

    def study(engine):
        return run_study(sources, ORDERS, CONFIG, fees, engine=engine, resamples=500, block=1)

    external = study(DaskEngine(scheduler=external_cluster))
    local = study(DaskEngine(workers=2))
    loop = study(InProcessEngine())
    assert external.answer == local.answer == loop.answer
    pd.testing.assert_frame_equal(external.orders, loop.orders)
    pd.testing.assert_frame_equal(local.orders, loop.orders)
    assert external.tasks_run == 4 and external.answer["orders"] == 8


@pytest.mark.slow
def test_a_scheduler_that_cannot_import_the_package_is_one_line(tmp_path: Path, path_cache: Path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dask",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        ],
        cwd=tmp_path,  # not the repository: `allocator` is not importable there
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_scheduler(port)
        sources = synthetic_sources(2, 1, 2.0, path_cache)
        with pytest.raises(
            UserError, match="the Dask scheduler cannot read the study's tasks: start `dask scheduler`"
        ):
            run_study(
                sources,
                ORDERS,
                CONFIG,
                load_fee_table(),
                engine=DaskEngine(scheduler=f"tcp://127.0.0.1:{port}"),
            )
    finally:
        proc.terminate()
        proc.wait(timeout=20)
