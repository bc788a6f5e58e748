"""The consumer's progress lines in plain (non-terminal) mode: rows, rate, lag, the data's clock, ETA."""

from __future__ import annotations

import io
import json
import re
import uuid

from allocator.kafka.stream_progress import ReplayProgress
from tests.helpers import at
from tests.kafka_helpers import ORDER, WINDOW, finish, popen, start_producer


def test_plain_lines_show_rows_rate_lag_data_clock_and_eta():
    out = io.StringIO()
    progress = ReplayProgress(stream=out, interval=0.0)
    common = {"data_ns": at("13:40:01"), "window_end_ns": at("13:45:14")}
    progress.update("r1", 1000, 250, lag_messages=None, **common)
    progress.update("r1", 1000, 500, lag_messages=12, **common)
    progress.update("r1", 1000, 1000, lag_messages=0, **common)
    progress.update("r1", 1000, 1000, lag_messages=0, **common)  # draining: nothing more to say
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    clock = "data at 13:40:01 of 13:45:14"
    assert re.fullmatch(rf"replay: 250/1000 rows, 0 s, ETA 0 s, [\d,]+ rows/s, {clock}", lines[0])
    assert re.fullmatch(rf"replay: 500/1000 rows, .*, [\d,]+ rows/s, lag 12 msgs, {clock}", lines[1])
    assert re.fullmatch(rf"replay: 1000/1000 rows, \d+ s, [\d,]+ rows/s, lag 0 msgs, {clock}", lines[2])


def test_a_fast_replay_prints_nothing_and_quiet_never_prints():
    out = io.StringIO()
    progress = ReplayProgress(stream=out, interval=3600.0)
    for rows in (10, 20, 30):
        progress.update("r1", 30, rows, lag_messages=0, data_ns=None, window_end_ns=None)
    quiet = io.StringIO()
    silent = ReplayProgress(quiet=True, stream=quiet, interval=0.0)
    silent.update("r1", 30, 30, lag_messages=0, data_ns=None, window_end_ns=None)
    assert out.getvalue() == quiet.getvalue() == ""


def test_a_newer_replay_starts_the_count_over():
    out = io.StringIO()
    progress = ReplayProgress(stream=out, interval=0.0)
    progress.update("r1", 100, 40, lag_messages=0, data_ns=None, window_end_ns=None)
    progress.update("r2", 60, 10, lag_messages=0, data_ns=None, window_end_ns=None)
    assert out.getvalue().splitlines()[-1].startswith("replay: 10/60 rows")


def test_the_consumer_reports_progress_while_a_paced_replay_arrives(broker, monkeypatch):
    """A 60 s window at 5× lasts 12 s: with plain lines every second, several arrive before the report.
    (Not faster: on Tansu the consumer's group join takes ~7 s, and a replay already over by then is a
    backlog, read in under a second, which prints nothing.)"""
    monkeypatch.setenv("SOR_PROGRESS_SECONDS", "1")
    topic = f"t-{uuid.uuid4().hex[:10]}"
    producer = start_producer(broker.bootstrap, topic, "5", "--calibration", "0")
    consumer = popen("order_allocator.py", "-b", broker.bootstrap, "--topic", topic, *WINDOW, *ORDER)
    code, out, err = finish(consumer)
    assert finish(producer)[0] == 0 and code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("replay: ")]
    assert len(lines) >= 2, err
    total = json.loads(out)["run"]["stream"]["rows_expected"]
    pattern = rf"replay: (\d+)/{total} rows, \d+ s, (ETA \d+ s, )?[\d,]+ rows/s, (lag [\d,]+ msgs, )?data at "
    assert all(re.match(pattern, line) for line in lines), lines
    counts = [int(re.match(pattern, line).group(1)) for line in lines]
    assert counts == sorted(counts) and counts[0] < total and counts[-1] == total

    quiet = popen("order_allocator.py", "-b", broker.bootstrap, "--topic", topic, *WINDOW, *ORDER, "-q")
    assert "replay: " not in finish(quiet)[2]
