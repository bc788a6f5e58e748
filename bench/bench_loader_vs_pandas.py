"""The loader against `pandas.read_csv`: peak memory and speed on a large MBP-10 file (default 10 million
rows, BENCH_LOADER_ROWS to change).

The file is the recorded dataset tiled in time until it has BENCH_LOADER_ROWS rows (about 400 bytes a row).
Each measurement runs in a fresh process so its peak RSS is its own. The ratio compares our streaming,
column-pruned, window-filtered load with a plain `pandas.read_csv` of the same file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

REPO = Path(__file__).resolve().parents[1]
DATASET = REPO / "data" / "l1_day.csv.gz"
ROWS = int(os.environ.get("BENCH_LOADER_ROWS", "10000000"))


def build_file(path: Path, rows: int) -> None:
    """Tile the recorded dataset, shifting each copy later in time, and write it as one CSV."""
    base = pacsv.read_csv(
        DATASET,
        convert_options=pacsv.ConvertOptions(column_types={"ts_event": pa.string(), "ts_recv": pa.string()}),
    )
    ts_event = pa.array(base["ts_event"]).cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy()
    ts_recv = pa.array(base["ts_recv"]).cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy()
    span = int(ts_event.max() - ts_event.min()) + 1
    copies = -(-rows // base.num_rows)
    with pa.OSFile(str(path), "wb") as sink:
        writer = None
        written = 0
        for k in range(copies):
            take = min(base.num_rows, rows - written)
            part = base.slice(0, take)
            shift = np.int64(k * span)
            for name, values in (("ts_event", ts_event), ("ts_recv", ts_recv)):
                iso = pa.array(values[:take] + shift).cast(pa.timestamp("ns")).cast(pa.string())
                iso = pa.compute.binary_join_element_wise(
                    pa.compute.replace_substring(iso, " ", "T"), "Z", ""
                )
                part = part.set_column(part.schema.get_field_index(name), name, iso)
            if writer is None:
                writer = pacsv.CSVWriter(
                    sink, part.schema, write_options=pacsv.WriteOptions(quoting_style="none")
                )
            writer.write_table(part)
            written += take
        if writer is not None:  # None only when rows == 0: an empty file
            writer.close()


def measure(code: str) -> tuple[float, float]:
    """Run `code` in a fresh interpreter; return (seconds, peak RSS in MiB) of that process alone."""
    probe = (
        "\nimport resource, sys; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code + probe], check=False, cwd=REPO, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {done.stderr.strip()[-800:]}")
    return seconds, int(done.stderr.strip().splitlines()[-1]) / 1024


def run() -> list[tuple[str, float, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        t0 = time.perf_counter()
        build_file(path, ROWS)
        build_seconds = time.perf_counter() - t0
        size_mb = path.stat().st_size / 2**20
        ours_all, ours_all_mem = measure(
            f"from allocator.data.loader import load; from allocator.data.window import FULL_FILE; "
            f"d = load({str(path)!r}, FULL_FILE, levels=1); print(len(d.frame))"
        )
        ours_win_seconds, ours_win_mem = measure(
            f"from allocator.data.loader import load; d = load({str(path)!r}, levels=1); print(len(d.frame))"
        )
        naive, naive_mem = measure(f"import pandas as pd; df = pd.read_csv({str(path)!r}); print(len(df))")
    return [
        ("rows in the file", ROWS, "rows"),
        ("file size", size_mb, "MiB"),
        ("building the file", build_seconds, "s"),
        ("load, whole file, top level: time", ours_all, "s"),
        ("load, whole file, top level: peak RSS", ours_all_mem, "MiB"),
        ("load, default window only: time", ours_win_seconds, "s"),
        ("load, default window only: peak RSS", ours_win_mem, "MiB"),
        ("pandas.read_csv, whole file: time", naive, "s"),
        ("pandas.read_csv, whole file: peak RSS", naive_mem, "MiB"),
        ("peak RSS ratio pandas / ours (whole file)", naive_mem / ours_all_mem, "x"),
        ("speed ratio pandas / ours (whole file)", naive / ours_all, "x"),
    ]


if __name__ == "__main__":
    for label, value, unit in run():
        print(f"{label:<50} {value:>12.4g} {unit}")
