"""`--csv -` and `--csv <(zcat …)`: a pipe is spooled to a temporary file, named by its first bytes, and
gives the same report as the file itself; errors name the input as the user gave it."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from allocator.cli.input_file import suffix_for

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data" / "l1_day.csv.gz"
WINDOW = ["--start", "13:36:32", "--end", "13:36:50", "-q"]


def allocate(*args: str, stdin: bytes | None = None, shell: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "order_allocator.py", *args, *WINDOW]
    if shell is not None:  # bash, for process substitution
        command = ["bash", "-c", shell.format(python=sys.executable, window=" ".join(WINDOW))]
    return subprocess.run(command, input=stdin, capture_output=True, cwd=REPO, timeout=300)


def report(done: subprocess.CompletedProcess) -> tuple[dict, str]:
    assert done.returncode == 0, done.stderr.decode()
    parsed = json.loads(done.stdout)
    return parsed, parsed.pop("run")["source"]


@pytest.fixture(scope="module")
def from_file() -> dict:
    parsed, source = report(allocate("--csv", str(DATA)))
    assert source == f"csv:{DATA}"
    return parsed


@pytest.mark.parametrize("compressed", [True, False])
def test_stdin_gives_the_files_report(from_file, compressed):
    raw = DATA.read_bytes()
    parsed, source = report(allocate("--csv", "-", stdin=raw if compressed else gzip.decompress(raw)))
    assert parsed == from_file and source == "csv:<stdin>"


@pytest.mark.skipif(shutil.which("bash") is None, reason="process substitution needs bash")
def test_process_substitution_gives_the_files_report(from_file):
    parsed, source = report(allocate(shell=f"{{python}} order_allocator.py --csv <(zcat {DATA}) {{window}}"))
    assert parsed == from_file and source.startswith("csv:/dev/fd/")


def test_empty_stdin_is_one_line():
    done = allocate("--csv", "-", stdin=b"")
    assert done.returncode == 2
    assert done.stderr.decode().strip().splitlines() == [
        "order_allocator.py: error: <stdin> is empty: pipe a Databento MBP or L1 CSV (plain, .gz or .zst) "
        "or a DBN file"
    ]


def test_errors_about_piped_data_name_stdin_not_the_temporary_copy():
    done = allocate("--csv", "-", stdin=b"a,b\n1,2\n")
    err = done.stderr.decode()
    assert done.returncode == 2 and len(err.strip().splitlines()) == 1
    assert "<stdin>: missing required column(s) ts_event" in err and "sor-input-" not in err


def zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as stream:
        stream.write(data)
    return bytes(sink.getvalue().to_pybytes())


@pytest.mark.parametrize(
    ("head", "suffix"),
    [
        (gzip.compress(b"ts_recv,ts_event\n"), ".csv.gz"),
        (zstd(b"ts_recv,ts_event\n"), ".csv.zst"),
        (zstd(b"DBN\x02rest of the metadata"), ".dbn.zst"),
        (b"DBN\x02rest of the metadata", ".dbn"),
        (b"ts_recv,ts_event\n", ".csv"),
    ],
)
def test_a_pipe_is_named_by_its_first_bytes(head, suffix):
    assert suffix_for(head) == suffix
