"""The replay window: one place that turns `--start/--end` into nanosecond bounds.

The default is the trial's 13:36:32 → 13:45:14 UTC on the data's date. An end bound is inclusive at
the precision it is written in: `13:45:14` keeps everything before 13:45:15, `13:45:14.8` everything
before 13:45:14.9. A whole-second comparison that drops the 13:45:14.xxx rows is the classic bug this
module exists to prevent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from allocator.errors import SettingError

DEFAULT_START = "13:36:32"
DEFAULT_END = "13:45:14"
NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND

_TIME = r"(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.(?P<frac>\d{1,9}))?)?"
_TIME_OF_DAY = re.compile(rf"^{_TIME}$")
_DATETIME = re.compile(
    rf"^(?P<date>\d{{4}}-\d{{2}}-\d{{2}})[T ]{_TIME}(?P<tz>Z|[+-]00:?00|\+0000)?$", re.IGNORECASE
)


@dataclass(frozen=True)
class Window:
    """A half-open interval [start_ns, end_ns) of UTC epoch nanoseconds."""

    start_ns: int
    end_ns: int

    def contains(self, ts_ns: np.ndarray) -> np.ndarray:
        """Boolean mask of the timestamps inside the window."""
        return (ts_ns >= self.start_ns) & (ts_ns < self.end_ns)

    @property
    def open_start(self) -> bool:
        """No lower bound (`--start all`): the window starts with the data."""
        return self.start_ns <= np.iinfo(np.int64).min

    @property
    def open_end(self) -> bool:
        """No upper bound (`--end all`): the window ends with the data."""
        return self.end_ns >= np.iinfo(np.int64).max

    def report(self) -> dict[str, str] | None:
        """The window as the JSON outputs show it; None when unbounded (--start/--end all)."""
        if self.open_start:
            return None
        return {"start": format_ns(self.start_ns), "end_inclusive": format_ns(self.end_ns - 1)}

    def in_words(self) -> str:
        """Human-readable bounds, with the inclusive end the user asked for."""
        if self.open_start and self.open_end:
            return "the whole file"
        start = "the start of the file" if self.open_start else format_ns(self.start_ns)
        end = "the end of the file" if self.open_end else format_ns(self.end_ns - 1)
        return f"{start} – {end}"


@dataclass(frozen=True)
class WindowSpec:
    """The window as the user wrote it; resolved against the data's date once the data is seen."""

    start: str | None = DEFAULT_START
    end: str | None = DEFAULT_END

    def resolve(self, first_ts_ns: int) -> Window:
        """Bounds in ns; times of day are taken on the UTC date of `first_ts_ns` (the file's first row)."""
        day_ns = (int(first_ts_ns) // NS_PER_DAY) * NS_PER_DAY
        start = _parse_bound(self.start, day_ns, "start", is_end=False)
        end = _parse_bound(self.end, day_ns, "end", is_end=True)
        if start is None:
            start = np.iinfo(np.int64).min
        if end is None:
            end = np.iinfo(np.int64).max
        if end <= start:
            raise SettingError(
                f"{{end}} {SettingError.literal(str(self.end))} is not after {{start}} "
                f"{SettingError.literal(str(self.start))}; give an end after the start",
                end="end",
                start="start",
            )
        return Window(int(start), int(end))


FULL_FILE = WindowSpec(start=None, end=None)


def _parse_bound(text: str | None, day_ns: int, setting: str, *, is_end: bool) -> int | None:
    """Parse a time of day or an ISO datetime; an end bound is pushed to the end of its last unit."""
    if text is None or text.strip().lower() in {"", "none", "all"}:
        return None
    text = text.strip()
    match = _TIME_OF_DAY.match(text)
    base = day_ns
    if match is None:
        match = _DATETIME.match(text)
        if match is None:
            raise SettingError(
                f"{{bound}} {SettingError.literal(repr(text))} is not a time: use HH:MM:SS[.fffffffff] (UTC) "
                "or an ISO datetime like 2024-08-01T13:36:32.5Z",
                bound=setting,
            )
        base = int(np.datetime64(match["date"], "ns").astype(np.int64))
    hours, minutes = int(match["h"]), int(match["m"])
    seconds = int(match["s"]) if match["s"] is not None else 0
    if hours > 23 or minutes > 59 or seconds > 59:
        raise SettingError(
            f"{{bound}} {SettingError.literal(repr(text))} is not a valid time of day", bound=setting
        )
    frac = match["frac"] or ""
    value = base + ((hours * 60 + minutes) * 60 + seconds) * NS_PER_SECOND
    value += int(frac.ljust(9, "0")) if frac else 0
    if is_end:
        # Inclusive at the written precision: the next representable instant at that unit.
        if match["s"] is None:
            value += 60 * NS_PER_SECOND
        else:
            value += 10 ** (9 - len(frac))
    return value


def format_ns(ts_ns: int) -> str:
    """ISO-8601 with nanoseconds and `Z`, the Databento CSV spelling."""
    return str(np.datetime64(int(ts_ns), "ns")) + "Z"
