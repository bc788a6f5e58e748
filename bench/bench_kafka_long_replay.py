"""A long Kafka replay (BENCH_REPLAY_ROWS, default 2,000,000 rows) at --speed 0 through the embedded
Tansu broker, in the wire format BENCH_WIRE (default arrow; many rows per message, json: one):
producer rate, rows lost or duplicated, and the peak RSS of the consumer + pipeline, which runs in a
separate process so the figure is its own.

The rows are the recorded dataset's top of book tiled in time (each copy shifted past the previous
one, sequences renumbered per venue), so every row is distinct and the end-of-stream count, the
replay-index dedupe and the gap check all have to come out exact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from allocator.broker.embedded import EmbeddedBroker
from allocator.data.loader import MarketData, load
from allocator.data.window import Window
from allocator.kafka.admin import ensure_topic
from allocator.kafka.codec import DEFAULT_WIRE
from allocator.kafka.producer import replay

REPO = Path(__file__).resolve().parents[1]
ROWS = int(os.environ.get("BENCH_REPLAY_ROWS", "2000000"))
WIRE = os.environ.get("BENCH_WIRE", DEFAULT_WIRE)

CONSUMER = """
import json, resource, sys, time
from allocator.kafka.consumer import consume_replay, stream_market_data
from allocator.config import PenaltyGrid, RunConfig
from allocator.pipeline import run
from allocator.data.venues import load_fee_table
started = time.perf_counter()
result = consume_replay({"bootstrap.servers": sys.argv[1]}, sys.argv[2], group=sys.argv[3], idle_timeout=60, levels=1)
consumed = time.perf_counter() - started
data = stream_market_data(result, sys.argv[2], None)
report = run(data, load_fee_table(), RunConfig(grid=PenaltyGrid((0.5,), (0.5,), (0.1,)))).report
s = result.stats
print(json.dumps({"messages": s.messages, "rows": s.rows_received, "expected": s.expected_rows,
                  "duplicates": s.duplicates, "missing": s.missing_rows, "stop": s.stop_reason,
                  "ingest": s.ingest_rate, "ingest_rows": s.ingest_row_rate, "consume_seconds": consumed,
                  "rows_in_window": report["data"]["rows_in_window"],
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def tiled(rows: int) -> MarketData:
    base = load(REPO / "data" / "l1_day.csv.gz", levels=1)
    frame = base.frame
    span = int(frame["ts_event"].max() - frame["ts_event"].min()) + 1
    copies = -(-rows // len(frame))
    parts = []
    for k in range(copies):
        part = frame.copy()
        part["ts_event"] += k * span
        part["ts_recv"] += k * span
        part["sequence"] += k * 10_000_000  # keep per-venue sequences increasing across copies
        parts.append(part)
    big = pd.concat(parts, ignore_index=True).iloc[:rows]
    for name in ("action", "side", "symbol"):
        big[name] = big[name].astype("category")
    ts = big["ts_event"].to_numpy(dtype=np.int64)
    return MarketData(
        big,
        "tiled",
        Window(int(ts.min()), int(ts.max()) + 1),
        rows,
        int(ts.min()),
        int(ts.max()),
        1,
        "decimal",
        ["AAPL"],
    )


def run() -> list[tuple[str, float, str]]:
    data = tiled(ROWS)
    with EmbeddedBroker(kind="tansu") as broker:
        settings = {"bootstrap.servers": broker.bootstrap}
        topic = f"load-{uuid.uuid4().hex[:8]}"
        ensure_topic(settings, topic)
        started = time.perf_counter()
        stats = replay(data, settings, topic, speed=0, flush_timeout=120, wire=WIRE)
        produced = time.perf_counter() - started
        out = subprocess.run(
            [sys.executable, "-c", CONSUMER, broker.bootstrap, topic, uuid.uuid4().hex],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return [
        (f"rows replayed ({WIRE})", stats.rows, "rows"),
        (f"in messages ({stats.rows / stats.messages:.1f} rows each)", stats.messages, "msgs"),
        ("producer rate at --speed 0", stats.rows / produced, "rows/s"),
        ("rows delivered (acknowledged)", stats.delivered, "rows"),
        ("consumer: rows received", result["rows"], "rows"),
        ("consumer: rows lost (gaps)", result["missing"], "rows"),
        ("consumer: duplicates dropped", result["duplicates"], "rows"),
        ("consumer: ingest rate", result["ingest"], "msg/s"),
        ("consumer: ingest rate", result["ingest_rows"], "rows/s"),
        ("consumer: consume wall time incl. group join", result["consume_seconds"], "s"),
        ("consumer + pipeline: peak RSS", result["peak_rss_mib"], "MiB"),
        ("consumer peak RSS per million rows", result["peak_rss_mib"] / (stats.rows / 1e6), "MiB"),
    ]
