"""Run every benchmark module (or those named on the command line) and print one figure per line."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench

# Earlier names, so an old command line gets a one-line pointer instead of a near-miss match.
RENAMED = {
    "allocation": "allocate_speed",
    "ck_model": "ck_solvers",
    "ck_mode": "ck_grid",
    "load": "kafka_long_replay",
    "loader_vs_pandas": "loader",
    "pipeline": "faithful_run",
}


def main(names: list[str]) -> int:
    renamed = [n for n in names if n.removeprefix("bench_") in RENAMED]
    if renamed:
        hints = ", ".join(f"{n} is now {RENAMED[n.removeprefix('bench_')]}" for n in renamed)
        print(f"renamed benchmarks: {hints}", file=sys.stderr)
        return 2
    modules = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    exact = [m for m in modules if m in names or m.removeprefix("bench_") in names]
    chosen = exact or [m for m in modules if not names or any(n in m for n in names)]
    if not chosen:
        print(f"no benchmark matches {names}; available: {', '.join(modules)}", file=sys.stderr)
        return 2
    for name in chosen:
        started = time.perf_counter()
        print(f"== {name}", flush=True)
        for label, value, unit in importlib.import_module(f"bench.{name}").run():
            print(f"{label:<60} {value:>14.4g} {unit}", flush=True)
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
