"""The fee table: publisher_id → venue name, taker fee and maker rebate ($/share).

One TOML file (`allocator/data/venues.toml`, or `--venues FILE`) is the only place fees live. `--fee` and
`--rebate` force uniform values so results can be compared with implementations that assume flat fees.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from allocator.errors import SettingError, UserError

DEFAULT_VENUES_FILE = Path(__file__).with_name("venues.toml")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VenueInfo:
    """Static facts about one venue. A negative maker_rebate means makers pay (inverted venue)."""

    publisher_id: int
    name: str
    taker_fee: float
    maker_rebate: float
    inverted: bool = False
    source: str = ""


@dataclass
class FeeTable:
    """Venue lookup with a documented default for publisher ids the table does not know."""

    venues: dict[int, VenueInfo]
    default: VenueInfo
    path: str
    overridden: str = ""
    _warned: set[int] = field(default_factory=set, repr=False)

    def lookup(self, publisher_id: int) -> VenueInfo:
        """The venue's row; an unknown id gets the default row and one warning naming it."""
        info = self.venues.get(int(publisher_id))
        if info is not None:
            return info
        if publisher_id not in self._warned:
            self._warned.add(int(publisher_id))
            log.warning(
                "publisher_id %d is not in %s; using the default taker fee %.4f and maker rebate %.4f "
                "(add it to the venue file to set its fees)",
                publisher_id,
                self.path,
                self.default.taker_fee,
                self.default.maker_rebate,
            )
        return replace(self.default, publisher_id=int(publisher_id))

    def arrays(self, publisher_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Taker fees and maker rebates aligned with `publisher_ids`, for vectorised cost arithmetic."""
        rows = [self.lookup(int(pid)) for pid in publisher_ids]
        return (
            np.array([r.taker_fee for r in rows], dtype=np.float64),
            np.array([r.maker_rebate for r in rows], dtype=np.float64),
        )

    def names(self, publisher_ids: np.ndarray) -> list[str]:
        return [self.lookup(int(pid)).name for pid in publisher_ids]


def load_fee_table(
    path: str | Path | None = None, fee: float | None = None, rebate: float | None = None
) -> FeeTable:
    """Read the venue TOML; `fee`/`rebate` (from --fee/--rebate) replace every venue's value."""
    path = Path(path) if path is not None else DEFAULT_VENUES_FILE
    try:
        with path.open("rb") as handle:
            doc = tomllib.load(handle)
    except FileNotFoundError:
        raise SettingError(
            f"venue file not found: {SettingError.literal(str(path))} (pass {{venues}} FILE or omit it)",
            venues="venue_file",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"venue file {path} is not valid TOML: {exc}") from None
    default = _venue_row(doc.get("default", {}), path, "[default]", publisher_id=-1)
    venues: dict[int, VenueInfo] = {}
    for i, row in enumerate(doc.get("venue", [])):
        if "publisher_id" not in row:
            raise UserError(f"venue file {path}: [[venue]] entry {i + 1} has no publisher_id")
        info = _venue_row(row, path, f"[[venue]] publisher_id={row['publisher_id']}")
        if info.publisher_id in venues:
            raise UserError(f"venue file {path}: publisher_id {info.publisher_id} appears twice")
        venues[info.publisher_id] = info
    overridden = []
    if fee is not None:
        overridden.append(f"taker fee {fee} for every venue")
    if rebate is not None:
        overridden.append(f"maker rebate {rebate} for every venue")
    if overridden:

        def force(info: VenueInfo) -> VenueInfo:
            return replace(
                info,
                taker_fee=info.taker_fee if fee is None else float(fee),
                maker_rebate=info.maker_rebate if rebate is None else float(rebate),
            )

        venues = {pid: force(info) for pid, info in venues.items()}
        default = force(default)
    return FeeTable(venues=venues, default=default, path=str(path), overridden="; ".join(overridden))


def _venue_row(row: dict, path: Path, where: str, publisher_id: int | None = None) -> VenueInfo:
    try:
        return VenueInfo(
            publisher_id=int(row["publisher_id"]) if publisher_id is None else publisher_id,
            name=str(row.get("name", f"publisher {row.get('publisher_id', '?')}")),
            taker_fee=float(row.get("taker_fee", 0.0)),
            maker_rebate=float(row.get("maker_rebate", 0.0)),
            inverted=bool(row.get("inverted", False)),
            source=str(row.get("source", "")),
        )
    except (TypeError, ValueError) as exc:
        raise UserError(f"venue file {path}: {where} has a bad value ({exc})") from None
