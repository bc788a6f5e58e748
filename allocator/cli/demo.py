"""`make demo`: the whole product end to end on the embedded broker, no Docker.

Starts a Tansu broker on a free loopback port, replays the recorded dataset with kafka_producer.py
(as fast as possible by default), runs order_allocator.py against the topic, prints its JSON report on
stdout, and stops the broker — whatever happens in between.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence

from allocator.broker.embedded import EmbeddedBroker
from allocator.cli.common import REPO_ROOT, run_main, setup_logging
from allocator.errors import UserError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m allocator.cli.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--speed", default="0", help="replay speed for the producer (default 0 = no pacing)")
    parser.add_argument(
        "--kind", choices=("tansu", "noida"), default="tansu", help="embedded broker (default tansu)"
    )
    parser.add_argument("allocator_args", nargs="*", help="extra flags for order_allocator.py (after --)")
    args = parser.parse_args(argv)
    setup_logging()
    with EmbeddedBroker(kind=args.kind) as broker:
        print(f"demo: {args.kind} broker on {broker.bootstrap}", file=sys.stderr)
        common = ["--bootstrap-servers", broker.bootstrap, "--topic", "mock_l1_stream"]
        producer = subprocess.run(
            [sys.executable, str(REPO_ROOT / "kafka_producer.py"), "--speed", args.speed, *common],
            stdout=subprocess.DEVNULL,
            check=False,
        )
        if producer.returncode != 0:
            raise UserError("the producer failed (see the line above)", exit_code=producer.returncode)
        allocator = subprocess.run(
            [
                sys.executable,
                str(REPO_ROOT / "order_allocator.py"),
                *common,
                "--idle-timeout",
                "20",
                *args.allocator_args,
            ],
            check=False,
        )
        return allocator.returncode


if __name__ == "__main__":
    sys.exit(run_main("allocator.cli.demo", main))
