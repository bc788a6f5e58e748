"""Many symbols across partitions and consumers, on both embedded brokers (issue 16, part 4).

data/multi_symbol.csv.gz (AAPL, MSFT, NVDA) is replayed into a 3-partition topic with
`kafka_producer.py --partitions 3`, and two `order_allocator.py --parents` processes in one consumer
group route examples/parents.csv. Every parent must end with exactly one report, equal (but for its
`run` section) to the offline run of the same parent, whether a consumer joins mid-stream or is
SIGKILLed mid-stream.

After a SIGKILL the brokers differ (docs/brokers.md, consumer groups): Tansu moves a dead dynamic
member's partitions to the survivor after the session timeout; noida-db never does, for dynamic or
static members, so there the killed consumer is restarted with the same `--instance-id` (static
membership) and takes its partitions back at once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from allocator.kafka.admin import ensure_topic
from tests.kafka_helpers import REPO

pytestmark = pytest.mark.kafka

MULTI = REPO / "data" / "multi_symbol.csv.gz"
PARENTS = REPO / "examples" / "parents.csv"
WINDOW = ["--start", "13:36:30", "--end", "13:37:10"]
SPEED = "4"  # the 40 s window in ~10 s: long enough to kill a consumer mid-stream
# A join takes longer than a kill on Tansu (≈ session/2 for the newcomer, again for the others): 20 s.
JOIN_SPEED = "2"
IDLE = "40"  # above Tansu's takeover after a SIGKILL (~10 s) with room for a loaded machine


def run(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    assert done.returncode == 0, f"{args[0]} exited {done.returncode}: {done.stderr[-2000:]}"
    return done


def without_run(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "run"}


def reports_in(directory: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One symbol cache for this module's commands: the file is split once, not once per test."""
    return os.environ | {"SOR_SYMBOL_CACHE": str(tmp_path_factory.mktemp("symbol-cache"))}


@pytest.fixture(scope="module")
def offline(
    tmp_path_factory: pytest.TempPathFactory, shared_cache: dict[str, str]
) -> tuple[Path, dict[str, dict]]:
    """Every parent routed offline (`--csv --parents`): the reference reports and their directory."""
    out = tmp_path_factory.mktemp("offline")
    run(
        REPO / "order_allocator.py",
        "--csv",
        MULTI,
        *WINDOW,
        "--parents",
        PARENTS,
        "--reports-dir",
        out,
        env=shared_cache,
    )
    return out, {name: without_run(r) for name, r in reports_in(out).items()}


class Member:
    """One order_allocator.py --parents process; its stderr goes to a file we can watch."""

    def __init__(self, tmp: Path, name: str, bootstrap: str, topic: str, group: str, *extra: str) -> None:
        self.log = tmp / f"{name}.log"
        self.reports = tmp / "reports"
        args = ["--group", group, "--parents", PARENTS, "--reports-dir", self.reports, "--idle-timeout", IDLE]
        with self.log.open("a") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    REPO / "order_allocator.py",
                    "-b",
                    bootstrap,
                    "--topic",
                    topic,
                    *map(str, args),
                    *extra,
                ],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert self.proc.poll() is None, (
                f"exited {self.proc.returncode} before {needle!r}: {self.text()[-2000:]}"
            )
            assert time.monotonic() < deadline, f"no {needle!r} within {timeout} s: {self.text()[-2000:]}"
            time.sleep(0.1)

    def held(self) -> list[int] | None:
        """The partitions of its latest assignment, or None while it has none (revoked, not yet assigned)."""
        events = re.findall(
            r"assigned partitions \[([\d, ]*)\]|partitions \[[\d, ]*\] (?:revoked|lost)", self.text()
        )
        if not events or not events[-1]:
            return None
        return [int(p) for p in events[-1].split(",")]

    def finish(self, timeout: float = 120) -> dict:
        out, _ = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, f"exit {self.proc.returncode}: {self.text()[-3000:]}"
        return json.loads(out)


def wait_settled(members: list[Member], timeout: float = 60) -> None:
    """Until the group's latest assignments split the 3 partitions between the members."""
    deadline = time.monotonic() + timeout
    while True:
        held = [m.held() for m in members]
        if all(held) and sorted(p for h in held for p in h or []) == [0, 1, 2]:
            return
        assert time.monotonic() < deadline, f"the group did not settle within {timeout} s: {held}"
        assert all(m.proc.poll() is None for m in members), [m.text()[-1000:] for m in members]
        time.sleep(0.1)


def producer(bootstrap: str, topic: str, env: dict[str, str], speed: str = SPEED) -> subprocess.Popen:
    args = ["--csv", MULTI, *WINDOW, "--partitions", "3", "--speed", speed]
    return subprocess.Popen(
        [sys.executable, str(REPO / "kafka_producer.py"), "-b", bootstrap, "--topic", topic, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def check_reports(reports: Path, offline: tuple[Path, dict[str, dict]]) -> dict[str, dict]:
    """Exactly one report per parent, each the offline one but for `run`; no temporary file left."""
    got = reports_in(reports)
    assert sorted(got) == sorted(offline[1])
    assert {name: without_run(r) for name, r in got.items()} == offline[1]
    assert not [p.name for p in reports.iterdir() if p.suffix != ".json"]
    return got


def merged(directory: Path) -> dict:
    summary = json.loads(run("-m", "allocator.report.merge", directory, "--parents", PARENTS).stdout)
    for row in summary["parents"]:
        row.pop("run_id"), row.pop("partition")
    summary.pop("reports_dir")
    return summary


def setup(broker, tmp_path: Path) -> tuple[str, str]:
    topic, group = f"multi-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    ensure_topic({"bootstrap.servers": broker.bootstrap}, topic, 3, exact_partitions=True)
    return topic, group


def test_offline_parents_are_the_single_symbol_runs(offline, shared_cache):
    """The reference itself: `--parents` offline gives what `--csv --symbol S --start …` gives."""
    directory, reports = offline
    nvda = json.loads(
        run(
            REPO / "order_allocator.py",
            "--csv",
            MULTI,
            "--symbol",
            "NVDA",
            "--start",
            "13:36:45",
            "--end",
            WINDOW[-1],
            "--order-size",
            "5000",
            env=shared_cache,
        ).stdout
    )
    msft = json.loads(
        run(
            REPO / "order_allocator.py",
            "--csv",
            MULTI,
            "--symbol",
            "MSFT",
            *WINDOW,
            "--side",
            "sell",
            "--order-size",
            "2000",
            env=shared_cache,
        ).stdout
    )
    assert reports["NVDA-buy-5000-133645.json"] == without_run(nvda)
    assert reports["MSFT-sell-2000.json"] == without_run(msft)
    assert sorted(reports) == [
        "AAPL-buy-3000.json",
        "AAPL-sell-1000-133700.json",
        "MSFT-sell-2000.json",
        "NVDA-buy-5000-133645.json",
    ]
    assert merged(directory)["complete"]


def test_a_consumer_joining_mid_stream_two_consumers_three_partitions(
    broker, offline, shared_cache, tmp_path
):
    topic, group = setup(broker, tmp_path)
    first = Member(tmp_path, "first", broker.bootstrap, topic, group)
    first.wait_for("assigned partitions [0, 1, 2]")
    replay = producer(broker.bootstrap, topic, shared_cache, JOIN_SPEED)
    first.wait_for("replay of")
    second = Member(tmp_path, "second", broker.bootstrap, topic, group)
    second.wait_for("assigned partitions [")
    assert replay.poll() is None, "the replay ended before the second consumer joined: not mid-stream"
    out, err = replay.communicate(timeout=120)
    assert replay.returncode == 0, err
    a, b = first.finish(), second.finish()
    assert a["stop_reason"] == b["stop_reason"] == "all_reported"
    # The rebalance moved partitions to the newcomer: the first member was assigned again, with fewer.
    assert len(a["assignments"]) >= 2 and any(b["assignments"])
    assert len(a["assignments"][-1]) < 3
    assert json.loads(out)["partitions"] == 3
    check_reports(tmp_path / "reports", offline)
    assert merged(tmp_path / "reports") == merged(offline[0])


def test_a_consumer_sigkilled_mid_stream_loses_and_duplicates_nothing(
    broker, offline, shared_cache, tmp_path
):
    topic, group = setup(broker, tmp_path)
    static = broker.kind == "noida"  # noida never rebalances away from a dead member (docs/brokers.md)
    ids = (["--instance-id", "a"], ["--instance-id", "b"]) if static else ([], [])
    victim = Member(tmp_path, "victim", broker.bootstrap, topic, group, *ids[0])
    survivor = Member(tmp_path, "survivor", broker.bootstrap, topic, group, *ids[1])
    wait_settled([victim, survivor])
    replay = producer(broker.bootstrap, topic, shared_cache)
    victim.wait_for("replay of")
    time.sleep(1.0)
    assert replay.poll() is None, "the replay ended before the kill: not mid-stream"
    revoked = survivor.text().count("revoked")
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    held = victim.text()
    assert "wrote " not in held  # every replay was still in flight: its partitions' reports are not written
    restarted = Member(tmp_path, "restarted", broker.bootstrap, topic, group, *ids[0]) if static else None
    _, err = replay.communicate(timeout=120)
    assert replay.returncode == 0, err
    s = survivor.finish(timeout=150)
    assert s["stop_reason"] == "all_reported"
    if restarted is not None:
        r = restarted.finish(timeout=150)
        assert r["stop_reason"] == "all_reported" and r["reports_written"]
        # Static membership: the survivor kept its partitions (its one later revocation is its own close).
        assert survivor.text().count("revoked") == revoked + 1
    else:
        assert s["assignments"][-1] == [0, 1, 2]  # the survivor took the dead member's partitions over
    got = check_reports(tmp_path / "reports", offline)
    assert len({r["run"]["run_id"] for r in got.values()}) == 3  # one replay per symbol
    assert merged(tmp_path / "reports") == merged(offline[0])


def test_partitions_must_match_an_existing_topic(broker, tmp_path):
    topic, _ = setup(broker, tmp_path)
    flags = ["-b", broker.bootstrap, "--topic", topic, "--csv", str(MULTI), *WINDOW, "--partitions", "2"]
    done = subprocess.run(
        [sys.executable, str(REPO / "kafka_producer.py"), *flags, "--speed", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3 and done.stdout == ""
    assert f"topic {topic!r} has 3 partitions, expected 2" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("kafka_producer.py: error: topic")
