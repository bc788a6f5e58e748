"""Where a study's market paths come from: data files (globs expanded here), or synthetic days made by the
recorded-data generator, one seed each, cached on disk by seed.

A source is a small picklable description, not data: the engine ships it to a worker, and the worker reads
or generates the path itself (`load_path`), so market data never travels through the scheduler. A
synthetic path is always written to its cache file first and then read back through the same loader as any
file, so a first run and a resumed one see the very same rows.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from allocator.data.loader import PRICE_FORMATS, MarketData, load
from allocator.data.window import FULL_FILE
from allocator.errors import SettingError, UserError
from allocator.synth.clock import DEFAULT_DATE, parse_clock
from allocator.synth.csv_writer import write_csv
from allocator.synth.generator import generate, study_trend_ticks

SYNTHETIC_START = "13:35:00"  # study paths start where the shipped file does, so the trial's pin lies inside
DEFAULT_PATH_MINUTES = 10.0
_SYNTH_PACKAGE = Path(__file__).resolve().parents[1] / "synth"


@dataclass(frozen=True)
class FileSource:
    """A data file as the user named it (`label`), read by workers at its absolute `path`."""

    label: str
    path: str
    symbol: str | None = None
    price_format: str = "auto"

    def identity(self) -> dict[str, object]:
        """What a finished task's result depends on: the file's content as far as size and mtime tell."""
        stat = os.stat(self.path)
        return {
            "file": self.path,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "symbol": self.symbol,
            "price_format": self.price_format,
        }

    def describe(self) -> dict[str, object]:
        return {"path": self.label, "kind": "file", "file": self.path, "symbol": self.symbol}


@dataclass(frozen=True)
class SyntheticSource:
    """Generator path `seed`, `minutes` long from SYNTHETIC_START, its latent trend drawn per seed from the
    zero-mean `study_trend_ticks` (the shipped file keeps the trial's +38 ticks)."""

    seed: int
    minutes: float
    cache_dir: str
    date: str = DEFAULT_DATE

    @property
    def label(self) -> str:
        return f"synthetic-{self.seed}"

    @property
    def start(self) -> str:
        return SYNTHETIC_START

    @property
    def end(self) -> str:
        seconds = parse_clock(SYNTHETIC_START, "start") + self.minutes * 60
        whole = int(seconds)
        frac = f"{seconds - whole:.6f}"[1:].rstrip("0").rstrip(".")
        return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}{frac}"

    @property
    def trend_rise_ticks(self) -> float:
        return study_trend_ticks(self.seed)

    def identity(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "minutes": self.minutes,
            "date": self.date,
            "generator": generator_version(),
        }

    def describe(self) -> dict[str, object]:
        return {
            "path": self.label,
            "kind": "synthetic",
            "seed": self.seed,
            "start": self.start,
            "end": self.end,
            "trend_rise_ticks": round(self.trend_rise_ticks, 3),
        }

    def cache_file(self) -> Path:
        """One file per (seed, span, date, generator version): a changed generator never reuses a path."""
        name = f"synthetic-{self.seed}-{self.start.replace(':', '')}-{self.minutes:g}m-{self.date}"
        return Path(self.cache_dir) / f"{name}-g{generator_version()[:12]}.csv.gz"

    def ensure_file(self) -> Path:
        """The cached path file, generated and written atomically first if it is not there yet (two workers
        generating one seed at once both write the same bytes; the last rename wins)."""
        target = self.cache_file()
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        frame = generate(
            seed=self.seed,
            start=self.start,
            end=self.end,
            date=self.date,
            trend_rise_ticks=self.trend_rise_ticks,
        )
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-", suffix="-" + target.name)
        os.close(fd)
        try:
            write_csv(frame, tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target


PathSource = FileSource | SyntheticSource


@functools.cache
def generator_version() -> str:
    """A hash of the generator's source files: the synthetic cache is keyed by it."""
    digest = hashlib.sha256()
    for file in sorted(_SYNTH_PACKAGE.glob("*.py")):
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=2)
def load_path(source: PathSource) -> MarketData:
    """The whole path with every book level (the realistic mode walks the depth), read once per worker
    process and kept for the next block of the same path."""
    if isinstance(source, SyntheticSource):
        return load(source.ensure_file(), FULL_FILE, levels=None)
    return load(source.path, FULL_FILE, levels=None, symbol=source.symbol, price_format=source.price_format)


def file_sources(
    patterns: list[str], symbol: str | None = None, price_format: str = "auto"
) -> list[FileSource]:
    """Every file the patterns name, in the order given (each glob sorted), once each; an empty glob, a
    missing file or a directory is a one-line error naming it."""
    if price_format not in PRICE_FORMATS:
        raise SettingError.not_one_of(price_format, PRICE_FORMATS, "price_format")
    sources: list[FileSource] = []
    seen: set[str] = set()
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise UserError(f"{pattern}: no file matches this pattern; check the path and the quoting")
        for name in matches:
            path = Path(name)
            if not path.exists():
                raise UserError(
                    f"{name}: no such data file (give a Databento MBP CSV or DBN file, or a glob)"
                )
            if path.is_dir():
                raise UserError(f"{name} is a directory; give data files or a glob such as '{name}/*.csv.gz'")
            absolute = str(path.resolve())
            if absolute not in seen:
                seen.add(absolute)
                sources.append(
                    FileSource(label=name, path=absolute, symbol=symbol, price_format=price_format)
                )
    return sources


def synthetic_sources(
    count: int, first_seed: int, minutes: float, cache_dir: str | Path
) -> list[SyntheticSource]:
    """`count` generator paths, seeds first_seed, first_seed + 1, …, cached under `cache_dir`."""
    if count < 0:
        raise SettingError(f"{{synthetic}} {count}: give a number of paths ≥ 0", synthetic="synthetic")
    if not 0 < minutes <= 600:
        raise SettingError(
            f"{{minutes}} {minutes:g}: give a path length in minutes, more than 0 and at most 600 (10 hours)",
            minutes="path_minutes",
        )
    directory = str(Path(cache_dir).resolve())
    return [SyntheticSource(seed, minutes, directory) for seed in range(first_seed, first_seed + count)]
