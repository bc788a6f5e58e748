"""Times of day: the generator's window settings, and the trial window its price path is pinned to."""

from __future__ import annotations

import pandas as pd

from allocator.errors import SettingError

NS_PER_SECOND = 1_000_000_000
DEFAULT_DATE = "2024-08-01"
DEFAULT_START = "13:35:00"
DEFAULT_END = "13:46:00"
# The trial window; the latent path is pinned at its start and its trend spans it.
WINDOW_START = "13:36:32.5"
WINDOW_END = "13:45:15"


def parse_clock(text: str, setting: str) -> float:
    """Seconds after midnight for "HH:MM:SS[.fff]"; a SettingError names `setting` otherwise."""
    try:
        hh, mm, ss = text.split(":")
        value = int(hh) * 3600 + int(mm) * 60 + float(ss)
    except ValueError as exc:
        raise SettingError(
            "{setting} " + SettingError.literal(repr(text)) + ": expected HH:MM:SS (UTC), e.g. 13:36:32",
            setting=setting,
        ) from exc
    if not 0 <= value < 86400:
        raise SettingError(
            "{setting} " + SettingError.literal(repr(text)) + ": time of day out of range", setting=setting
        )
    return value


def trial_window_seconds() -> tuple[float, float]:
    """(start, end) of the trial window in seconds after midnight."""
    return parse_clock(WINDOW_START, "window_start"), parse_clock(WINDOW_END, "window_end")


def midnight_ns(date: str) -> int:
    """UTC midnight of `date` in ns since the epoch."""
    return int(pd.Timestamp(date, tz="UTC").value)
