"""Streaming router: tick → decision latency over Kafka at 1× and at full speed, on both embedded brokers,
and what the cont-kukanov router's decide and execute steps cost per decision (bench_stream_cost has the
in-process comparison with the offline run).

Each case replays a short window of the recorded day (BENCH_STREAM_SECONDS, default 30 s, from 13:36:32)
with kafka_producer.py while order_allocator.py consumes it, and reads the report's `run.latency`
(from the return of the poll that completed a decision's input to the decision handed to every sink) and
`run.live`. The faithful order is too large to ever fill (`--order-size 1000000`), so the router decides
at every tick of the window; the cont-kukanov case re-decides every 2 s (and one case every 30 s, the
default) with a 100,000-share order that stays working. The machine is shared: compare the figures with
each other, and read the 1× p99 against the ~1 ms a paced message takes to arrive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from allocator.broker.embedded import KINDS, EmbeddedBroker

REPO = Path(__file__).resolve().parents[1]
SECONDS = int(os.environ.get("BENCH_STREAM_SECONDS", "30"))
START = "13:36:32"
Figure = tuple[str, float, str]
FAITHFUL = ["--order-size", "1000000"]
CK = ["--mode", "cont-kukanov", "--order-size", "100000", "--lambda-over", "0.2", "--lambda-under", "0.05"]
CK += ["--theta-queue", "0"]


def end_time() -> str:
    h, m, s = (int(x) for x in START.split(":"))
    total = h * 3600 + m * 60 + s + SECONDS - 1
    return f"{total // 3600:02d}:{total // 60 % 60:02d}:{total % 60:02d}"


def one_case(broker: EmbeddedBroker, speed: str, flags: list[str]) -> dict:
    """Replay the window at `speed` while the allocator consumes it; the report's run section."""
    topic = f"bench-stream-{uuid.uuid4().hex[:8]}"
    window = ["--start", START, "--end", end_time()]
    common = ["--bootstrap-servers", broker.bootstrap, "--topic", topic, *window]
    producer = subprocess.Popen(
        [sys.executable, str(REPO / "kafka_producer.py"), *common, "--speed", speed],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    try:
        out = subprocess.run(
            [sys.executable, str(REPO / "order_allocator.py"), *common, "--idle-timeout", "20", "-q", *flags],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
            timeout=SECONDS * 4 + 300,
        )
    finally:
        producer.wait(timeout=SECONDS * 2 + 120)
    return dict(json.loads(out.stdout)["run"])


def figures(tag: str, run: dict) -> list[Figure]:
    lat = run["latency"]["tick_to_decision_ms"]
    live = run["live"]
    out = [
        (f"{tag}: decisions (all checked equal to offline: {live['equals_offline']})", lat["count"], "n"),
        (f"{tag}: tick→decision p50", lat["p50"] or 0.0, "ms"),
        (f"{tag}: tick→decision p99", lat["p99"] or 0.0, "ms"),
        (f"{tag}: tick→decision max", lat["max"] or 0.0, "ms"),
    ]
    if "simulator" in live:
        sim = live["simulator"]
        out += [
            (f"{tag}: decide (solve) per decision, p50", sim["decide_ms"]["p50"] or 0.0, "ms"),
            (f"{tag}: execute per decision, p50", sim["execute_ms"]["p50"] or 0.0, "ms"),
            (f"{tag}: execute per decision, max", sim["execute_ms"]["max"] or 0.0, "ms"),
        ]
    return out


def run() -> list[Figure]:
    result: list[Figure] = []
    for kind in KINDS:
        with EmbeddedBroker(kind=kind) as broker:
            broker.start(timeout=30)
            for speed, label in (("1", "1×"), ("0", "full speed")):
                result += figures(f"{kind} faithful {label}", one_case(broker, speed, FAITHFUL))
                result += figures(f"{kind} ck h=2s {label}", one_case(broker, speed, [*CK, "--horizon", "2"]))
            result += figures(f"{kind} ck h=30s 1×", one_case(broker, "1", [*CK, "--horizon", "30"]))
    return result
