"""Repeated client errors (a broker down for a while) are summarised, not printed every few hundred ms."""

from __future__ import annotations

import logging

from allocator.kafka.error_log import ErrorSummary

CONNECT = (
    "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused "
    "(after {}ms in state CONNECT)"
)


def test_a_flood_of_the_same_error_is_one_line_then_a_count_per_interval(caplog):
    now = [0.0]
    log = logging.getLogger("test.kafka.errors")
    summary = ErrorSummary(log, interval=30.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.kafka.errors"):
        for i in range(45):  # what a Tansu restart mid-consume produced: ~45 lines in ~20 s
            now[0] = i * 0.5
            summary(CONNECT.format(i % 7))
        summary("SASL authentication error: Authentication failed")
        now[0] = 31.0
        summary(CONNECT.format(3))
        summary.flush()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "kafka: " + CONNECT.format(0)
    assert lines[1] == "kafka: SASL authentication error: Authentication failed"  # a new error shows at once
    assert lines[2].startswith("kafka: the same error 45 more times: 127.0.0.1:9092/bootstrap: Connect to")
    assert len(lines) == 3  # 47 calls, 3 lines


def test_nothing_repeated_prints_no_summary(caplog):
    summary = ErrorSummary(logging.getLogger("test.kafka.once"))
    with caplog.at_level(logging.WARNING, logger="test.kafka.once"):
        summary("one error")
        summary.flush()
    assert [r.getMessage() for r in caplog.records] == ["kafka: one error"]
