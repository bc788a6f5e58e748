"""The simulated market's fixed facts: the instrument, the tick, and how each of the six venues behaves."""

from __future__ import annotations

from dataclasses import dataclass

SYMBOL = "AAPL"
INSTRUMENT_ID = 38  # AAPL's id in the trial file; kept on every venue so loaders need no mapping
TICK = 0.01
MAIN_PUBLISHER = 2  # Nasdaq: the trial file's only venue, so the price path is pinned on it


@dataclass(frozen=True)
class VenueSpec:
    """How one venue behaves; numbers are tuned so rates/spreads/sizes look like 2024 AAPL."""

    publisher_id: int
    name: str
    bg_rate: float  # background messages per second (latent-move reactions come on top)
    packet_mean: float  # mean messages per background burst (share ts_event or µs apart)
    react_ms: float  # mean delay before the venue reflects a latent move
    react_min_ms: float
    latency_us: float  # median ts_recv - ts_event
    tight_prob: float  # share of time a side quotes at the tight (1-tick-market) target
    occupancy: float  # probability that a tick behind the top holds a level
    mean_orders: float  # mean resting orders per level
    mix: tuple[float, float, float, float, float]  # background A, C, M, T, F probabilities
    take_prob: float  # a stale level is traded through (else cancelled)
    block_prob: float  # an add is a block of thousands of shares
    seq_start: int
    seq_gap: float  # mean sequence numbers used by other symbols between our packets


# Field order: publisher_id, name, bg_rate, packet_mean, react_ms, react_min_ms, latency_us,
# tight_prob, occupancy, mean_orders, mix (A, C, M, T, F), take_prob, block_prob, seq_start, seq_gap.
VENUES: tuple[VenueSpec, ...] = (
    VenueSpec(2, "Nasdaq", 78.0, 1.35, 0.6, 0.05, 170.0, 0.85, 0.85, 3.2,
              (0.44, 0.41, 0.05, 0.08, 0.02), 0.45, 0.0015, 45_112_807, 11.0),
    VenueSpec(43, "NYSE Arca", 26.0, 1.3, 3.0, 0.4, 260.0, 0.60, 0.70, 2.2,
              (0.45, 0.42, 0.04, 0.07, 0.02), 0.35, 0.0015, 187_420_116, 25.0),
    VenueSpec(5, "Cboe BZX", 23.0, 1.3, 1.8, 0.2, 120.0, 0.62, 0.70, 2.2,
              (0.45, 0.42, 0.04, 0.07, 0.02), 0.40, 0.0015, 98_305_442, 23.0),
    VenueSpec(8, "Cboe EDGX", 21.0, 1.3, 2.0, 0.2, 130.0, 0.55, 0.65, 2.0,
              (0.45, 0.42, 0.04, 0.07, 0.02), 0.35, 0.0015, 91_877_301, 23.0),
    VenueSpec(38, "IEX", 9.0, 1.2, 4.0, 0.4, 300.0, 0.80, 0.55, 1.6,
              (0.40, 0.38, 0.04, 0.08, 0.10), 0.30, 0.0012, 3_904_118, 40.0),
    VenueSpec(3, "Nasdaq BX", 13.0, 1.25, 2.5, 0.3, 180.0, 0.75, 0.55, 1.8,
              (0.45, 0.42, 0.04, 0.06, 0.03), 0.35, 0.0012, 12_650_904, 30.0),
)  # fmt: skip
