"""`--csv -` and `--csv <(zcat day.csv.gz)`: input that cannot be seeked, spooled to a temporary file.

The loader reads a file twice (the header, then the data in parallel pieces) and the symbol cache keys a
file by its size and mtime, so a pipe cannot be read directly. A pipe is copied once into a temporary
directory, named by its first bytes (gzip, zstd, DBN or plain text) so the loader picks the same reader
as for a file, and deleted when the run ends. Errors and the report name the input as the user gave it
(`<stdin>`, or the /dev/fd path), not the temporary copy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from allocator.data.loader import MarketData, load
from allocator.data.window import WindowSpec
from allocator.errors import SettingError, UserError

STDIN = "-"
STDIN_NAME = "<stdin>"
PEEK_BYTES = 1 << 16
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DBN_MAGIC = b"DBN"


@dataclass(frozen=True)
class InputFile:
    """A readable, seekable file for the loader, and the name to show for it."""

    path: Path
    name: str
    spooled: bool  # a temporary copy of a pipe: not worth a symbol-cache entry


def suffix_for(head: bytes) -> str:
    """The file suffix the loader expects for data starting with `head`."""
    if head.startswith(GZIP_MAGIC):
        return ".csv.gz"
    if head.startswith(ZSTD_MAGIC):
        with (
            contextlib.suppress(pa.ArrowException, OSError),
            pa.input_stream(pa.BufferReader(head), compression="zstd") as stream,
        ):
            if stream.read(len(DBN_MAGIC)) == DBN_MAGIC:
                return ".dbn.zst"
        return ".csv.zst"
    if head.startswith(DBN_MAGIC):
        return ".dbn"
    return ".csv"


def is_pipe(path: Path) -> bool:
    """A FIFO or character device (`<(zcat …)` is /dev/fd/N, a pipe): readable once, front to back."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


@contextlib.contextmanager
def readable_input(given: str, default: Path) -> Iterator[InputFile]:
    """The file behind a --csv value (`given`, or `default` when empty); a pipe or `-` is spooled first.

    UserErrors raised inside the block name the input as given instead of the temporary copy."""
    if not given:
        yield InputFile(default, str(default), spooled=False)
        return
    if given != STDIN and not is_pipe(Path(given)):
        yield InputFile(Path(given), given, spooled=False)
        return
    name = STDIN_NAME if given == STDIN else given
    with tempfile.TemporaryDirectory(prefix="sor-input-") as directory:
        if given == STDIN:
            copy = _spool(sys.stdin.buffer, Path(directory), name)
        else:
            try:
                source = open(given, "rb")  # noqa: SIM115 - closed right below, after the copy
            except OSError as exc:
                raise SettingError(
                    f"cannot read {SettingError.literal(given)} ({exc.strerror}); pass {{csv}} PATH",
                    csv="csv_path",
                ) from None
            with source:
                copy = _spool(source, Path(directory), name)
        try:
            yield InputFile(copy, name, spooled=True)
        except UserError as exc:
            _rename_in(exc, str(copy), name)
            raise


def _spool(source: BinaryIO | io.BufferedReader, directory: Path, name: str) -> Path:
    """Copy `source` to a file in `directory` whose suffix matches its first bytes."""
    if source.isatty():
        raise UserError(f"--csv {STDIN}: stdin is a terminal; pipe the data in (e.g. zcat day.csv.gz | …)")
    head = source.read(PEEK_BYTES)
    if not head:
        raise UserError(f"{name} is empty: pipe a Databento MBP or L1 CSV (plain, .gz or .zst) or a DBN file")
    copy = directory / f"input{suffix_for(head)}"
    with open(copy, "wb") as sink:
        sink.write(head)
        shutil.copyfileobj(source, sink, 1 << 20)
    return copy


def _rename_in(exc: UserError, path: str, name: str) -> None:
    """Put `name` where the message says `path` (a SettingError keeps its template in step)."""
    if isinstance(exc, SettingError):
        exc.template = exc.template.replace(SettingError.literal(path), SettingError.literal(name))
    exc.args = tuple(a.replace(path, name) if isinstance(a, str) else a for a in exc.args)


def load_input(given: str, default: Path, window: WindowSpec, **options: Any) -> MarketData:
    """`load` for a --csv value: a pipe or stdin spooled first (and kept out of the symbol cache), the
    data and its errors naming the input as given."""
    with readable_input(given, default) as source:
        data = load(source.path, window, symbol_cache=not source.spooled, **options)
    return dataclasses.replace(data, source=source.name) if source.spooled else data


def seekable_path(given: str, default: Path, why: str) -> Path:
    """The --csv file for commands that read it more than once (`why`: which); a pipe cannot be."""
    if given == STDIN or (given and is_pipe(Path(given))):
        raise SettingError(
            f"{{csv}} {SettingError.literal(given)}: {why} reads the file once per symbol, so it must be a "
            "file; write the data to one first",
            csv="csv_path",
        )
    return Path(given) if given else default
