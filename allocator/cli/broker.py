"""`python -m allocator.broker`: one embedded Kafka-protocol broker in the foreground until Ctrl-C/SIGTERM.

python -m allocator.broker [--port 9092] [--kind tansu|noida] [--host 127.0.0.1] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from allocator.broker.embedded import KINDS, EmbeddedBroker
from allocator.cli.common import add_version_flag, number_flag, run_main
from allocator.errors import EXIT_OK, BrokerError

PROG = "python -m allocator.broker"


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_dir is not None and args.kind != "noida":
        parser.error("--data-dir only applies to --kind noida (tansu is memory-only)")
    return args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run an embedded Kafka-protocol broker in the foreground until Ctrl-C/SIGTERM.",
    )
    parser.add_argument(
        "--port",
        type=number_flag("--port", "a TCP port, 1-65535", integer=True, minimum=1, maximum=65535),
        default=9092,
        help="listener port (default: 9092)",
    )
    parser.add_argument("--kind", choices=KINDS, default="tansu", help="broker to run (default: tansu)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--data-dir", default=None, help="noida only: keep data here (default: a temp dir deleted at exit)"
    )
    parser.add_argument(
        "--timeout",
        type=number_flag("--timeout", "seconds, e.g. --timeout 30", above=0, maximum=3600),
        default=30.0,
        help="seconds to wait for readiness (default 30)",
    )
    add_version_flag(parser)
    return parser


def serve(argv: Sequence[str] | None = None) -> int:
    """Run the broker until SIGINT/SIGTERM; return the process exit code."""
    args = _parse_args(argv)
    stop_requested = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    broker = EmbeddedBroker(kind=args.kind, port=args.port, host=args.host, data_dir=args.data_dir)
    try:
        broker.start(timeout=args.timeout)
        print(f"broker ready on {broker.bootstrap} ({broker.storage()})", file=sys.stderr, flush=True)
        while not stop_requested.wait(0.5):
            if not broker.is_running():
                raise BrokerError(f"{broker.kind} broker exited unexpectedly ({broker.log_tail()})")
        return EXIT_OK
    finally:
        broker.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """The broker under the CLIs' one error wrapper: a failure is one line on stderr and exit code 3."""
    return run_main(PROG, serve, argv)
