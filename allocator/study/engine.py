"""Where a study's tasks run: Dask distributed (an in-process LocalCluster by default, or an existing cluster
by scheduler address), or a plain in-process loop.

Engines share one small interface, `run(tasks)`, yielding each task with its rows as it finishes (in any
order). Each distinct synthetic path is first prepared by one task (generated into its cache), and that
path's blocks depend on it, so no two workers generate the same path. Workers read the data themselves:
only the task's description goes through the scheduler, and only its rows come back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from allocator.errors import SettingError, UserError
from allocator.study.paths import SyntheticSource
from allocator.study.plan import StudyTask
from allocator.study.tasks import OrderRow, prepare_path, run_task

if TYPE_CHECKING:
    from distributed import Client

LOCAL = "local"
IN_PROCESS = "synchronous"
CONNECT_TIMEOUT_SECONDS = 10

_SAME_ENVIRONMENT = (
    "start `dask scheduler` and `dask worker` with this repository on their path (run them from its directory, "
    "or set PYTHONPATH to it) and the packages of requirements.txt"
)
log = logging.getLogger(__name__)


class Engine(Protocol):
    def describe(self) -> str: ...

    def run(self, tasks: Sequence[StudyTask]) -> Iterator[tuple[StudyTask, list[OrderRow]]]: ...


def available_cores() -> int:
    """Cores this process may use (its CPU affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class InProcessEngine:
    """Every task in this process, one after the other: no Dask (for debugging, profiling, and as the bench's
    baseline for Dask's overhead)."""

    def describe(self) -> str:
        return "in-process loop (no Dask)"

    def run(self, tasks: Sequence[StudyTask]) -> Iterator[tuple[StudyTask, list[OrderRow]]]:
        for source in _synthetic_sources(tasks):
            prepare_path(source)
        for task in tasks:
            yield task, run_task(task)


@dataclass
class DaskEngine:
    """Dask distributed: `scheduler` None starts a LocalCluster of `workers` single-threaded processes (the
    simulator is Python, so processes, not threads); an address joins that cluster's workers instead."""

    scheduler: str | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise SettingError(f"{{s}} {self.workers}: give at least one worker", s="workers")
        if self.scheduler is not None and self.workers is not None:
            raise SettingError(
                "{workers} sizes the local cluster; an existing cluster at {scheduler} has its own workers",
                workers="workers",
                scheduler="scheduler",
            )

    def describe(self) -> str:
        if self.scheduler:
            return f"Dask cluster at {self.scheduler}"
        return f"Dask LocalCluster, {self.local_workers()} worker processes × 1 thread"

    def local_workers(self) -> int:
        return self.workers or available_cores()

    def run(self, tasks: Sequence[StudyTask]) -> Iterator[tuple[StudyTask, list[OrderRow]]]:
        import dask
        from distributed import Client, LocalCluster, as_completed

        if self.scheduler is None:
            # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers, to hand memory back to the OS
            # sooner; that fixed threshold also turns off glibc's adaptive one, and the simulator's many
            # short-lived arrays then cost ~35 % more time (page faults, bench study). Unset here.
            with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
                cluster = LocalCluster(
                    n_workers=self.local_workers(),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address="127.0.0.1:0",  # its HTTP endpoint on a free loopback port (no bokeh)
                    silence_logs=logging.ERROR,
                )
            client = Client(cluster)
        else:
            cluster = None
            client = _connect(self.scheduler)
        try:
            prepared = {
                source: client.submit(
                    prepare_path, source, key=f"prepare-{source.cache_file().name}", pure=False
                )
                for source in _synthetic_sources(tasks)
            }
            by_key = {}
            futures = []
            for task in tasks:
                dependency = prepared.get(task.source) if isinstance(task.source, SyntheticSource) else None
                future = client.submit(run_task, task, dependency, key=f"study-{task.key}", pure=False)
                by_key[future.key] = task
                futures.append(future)
            for future, rows in as_completed(futures, with_results=True):
                yield by_key[future.key], rows
        except ModuleNotFoundError as exc:
            raise UserError(f"the Dask workers cannot import {exc.name!r}: {_SAME_ENVIRONMENT}") from None
        except RuntimeError as exc:
            if "deserializ" not in str(exc):
                raise
            raise UserError(
                f"the Dask scheduler cannot read the study's tasks: {_SAME_ENVIRONMENT}"
            ) from None
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def _connect(address: str) -> Client:
    from distributed import Client

    try:
        return Client(address, timeout=CONNECT_TIMEOUT_SECONDS)
    except (OSError, TimeoutError) as exc:
        raise SettingError(
            f"{{scheduler}} {SettingError.literal(address)}: no Dask scheduler answered within "
            f"{CONNECT_TIMEOUT_SECONDS} s ({SettingError.literal(str(exc).splitlines()[0])}); start one with "
            "`dask scheduler` and `dask worker ADDRESS`, or leave the flag out for a local cluster",
            scheduler="scheduler",
        ) from None
    except ValueError as exc:
        raise SettingError(
            f"{{scheduler}} {SettingError.literal(address)}: {SettingError.literal(str(exc))}; give tcp://HOST:PORT",
            scheduler="scheduler",
        ) from None


def _synthetic_sources(tasks: Sequence[StudyTask]) -> list[SyntheticSource]:
    """The distinct synthetic paths of the tasks, in order of first use."""
    seen: dict[SyntheticSource, None] = {}
    for task in tasks:
        if isinstance(task.source, SyntheticSource):
            seen.setdefault(task.source, None)
    return list(seen)


def engine_for(scheduler: str, workers: int | None) -> Engine:
    """--scheduler: `local` (default) a LocalCluster here, `synchronous` no Dask, else a cluster's address."""
    if scheduler == IN_PROCESS:
        if workers is not None:
            raise SettingError(
                "{workers} sizes the local cluster; {scheduler} synchronous runs in this process",
                workers="workers",
                scheduler="scheduler",
            )
        return InProcessEngine()
    return DaskEngine(None if scheduler == LOCAL else scheduler, workers)
