"""The execution simulator against hand-computed cases: depletion, depth walk, queues, latency."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from allocator.allocation.penalties import Penalties
from allocator.allocation.policy import Decision
from allocator.data.schema import MBP10_COLUMNS, level_column
from allocator.execution.book import build_book
from allocator.execution.models import EntryLatency, PerShareFees, queue_model
from allocator.execution.simulator import Simulator
from tests.helpers import at

T0 = at("13:36:40")
MS = 1_000_000


def row(
    ts: int,
    *,
    pid: int = 2,
    bids: tuple = ((9.99, 300),),
    asks: tuple = ((10.00, 100),),
    action: str = "A",
    side: str = "N",
    price: float = math.nan,
    size: int = 0,
    recv: int | None = None,
    levels: int = 10,
) -> dict:
    """One MBP row with exactly the given book levels (best first); ts_recv = ts unless given."""
    out = {
        "ts_recv": ts if recv is None else recv,
        "ts_event": ts,
        "rtype": 10,
        "publisher_id": pid,
        "instrument_id": 38,
        "action": action,
        "side": side,
        "depth": 0,
        "price": price,
        "size": size,
        "flags": 0,
        "ts_in_delta": 0,
        "sequence": 0,
        "symbol": "AAPL",
    }
    for lvl in range(levels):
        bpx, bsz = bids[lvl] if lvl < len(bids) else (math.nan, 0)
        apx, asz = asks[lvl] if lvl < len(asks) else (math.nan, 0)
        out |= {
            level_column("bid_px", lvl): bpx,
            level_column("ask_px", lvl): apx,
            level_column("bid_sz", lvl): bsz,
            level_column("ask_sz", lvl): asz,
            level_column("bid_ct", lvl): 1,
            level_column("ask_ct", lvl): 1,
        }
    return out


def trade(ts: int, price: float, size: int, *, aggressor: str = "A", **book) -> dict:
    """A trade row (aggressor A = a seller hitting bids) showing the book after it."""
    return row(ts, action="T", side=aggressor, price=price, size=size, **book)


def simulator(
    rows: list[dict],
    *,
    side: str = "buy",
    latency_ns: int = 0,
    queue: str = "conservative",
    power: float = 2.0,
    fee: float = 0.003,
    rebate: float = 0.002,
) -> Simulator:
    frame = pd.DataFrame(rows)
    columns = [c for c in MBP10_COLUMNS if c in frame.columns]
    frame = frame[columns]
    pids = np.unique(frame["publisher_id"].to_numpy())
    book = build_book(frame, pids, side)
    n = len(pids)
    return Simulator(
        book,
        PerShareFees(np.full(n, fee), np.full(n, rebate)),
        EntryLatency(entry_ns=latency_ns),
        queue_model(queue, power),
    )


def fills(sim: Simulator) -> list[tuple]:
    led = sim.ledger
    return list(zip(led.ts, led.price, led.shares, led.kind, strict=True))


# ----------------------------------------------------------------------------------------- depletion


def test_a_repeated_state_does_not_refill_what_we_took():
    rows = [
        row(T0, asks=((10.00, 100),)),
        row(
            T0 + MS, asks=((10.00, 100),), bids=((9.99, 500),)
        ),  # a bid-side change: the ask level is as before
        row(T0 + 2 * MS, asks=((10.00, 150),)),  # 50 new shares join behind: what we took is still missing
    ]
    sim = simulator(rows)
    assert sim.take(0, T0, 10.00, 60) == 60
    prices, sizes = sim.seen_take_levels(0, T0 + MS)
    assert prices[0] == 10.00 and sizes[0] == 40  # what a strategy sees is reduced too
    assert sim.take(0, T0 + MS, 10.00, 100) == 40
    assert sim.take(0, T0 + MS, 10.00, 100) == 0  # the same state offers nothing more
    assert sim.take(0, T0 + 2 * MS, 10.00, 100) == 50  # 150 shown − the 100 we took
    assert [f[2] for f in fills(sim)] == [60, 40, 50]


def test_the_datas_own_decreases_use_up_what_we_took():
    rows = [
        row(T0, asks=((10.00, 100),)),
        row(T0 + MS, asks=((10.00, 70),)),  # 30 traded or cancelled in the recorded world: 70 still missing
        row(T0 + 2 * MS, asks=((10.00, 100),)),  # 30 join: really 30 there
        row(T0 + 3 * MS, asks=((10.00, 20),)),  # 80 more leave: nothing is missing any more
        row(T0 + 4 * MS, asks=((10.00, 90),)),
    ]
    sim = simulator(rows)
    assert sim.take(0, T0, 10.00, 100) == 100
    assert sim.seen_take_levels(0, T0 + MS)[1][0] == 0
    assert sim.seen_take_levels(0, T0 + 2 * MS)[1][0] == 30
    assert sim.take(0, T0 + 4 * MS, 10.00, 100) == 90


def test_a_level_pushed_out_of_view_keeps_its_deficit():
    # L1 data: a better price appears in front and leaves again; the 10.00 level was only out of view
    rows = [
        row(T0, asks=((10.00, 100),), levels=1),
        row(T0 + MS, asks=((9.99, 50),), bids=((9.98, 100),), levels=1),
        row(T0 + 2 * MS, asks=((10.00, 100),), levels=1),
    ]
    sim = simulator(rows)
    assert sim.take(0, T0, 10.00, 100) == 100
    assert sim.take(0, T0 + 2 * MS, 10.00, 100) == 0


# ----------------------------------------------------------------------------------------- depth


def test_depth_walk_arithmetic_with_fees_per_share():
    rows = [row(T0, asks=((10.00, 100), (10.01, 200), (10.02, 300)))]
    sim = simulator(rows, fee=0.003)
    assert sim.take(0, T0, 10.02, 250) == 250
    assert [(f[1], f[2]) for f in fills(sim)] == [(10.00, 100), (10.01, 150)]
    cash = sum(p * q for p, q in zip(sim.ledger.price, sim.ledger.shares, strict=True))
    cash += sum(f * q for f, q in zip(sim.ledger.fee, sim.ledger.shares, strict=True))
    assert cash == pytest.approx(100 * 10.003 + 150 * 10.013)


def test_the_limit_stops_the_walk():
    sim = simulator([row(T0, asks=((10.00, 100), (10.01, 200)))])
    assert sim.take(0, T0, 10.00, 250) == 100


def test_l1_data_is_capped_at_the_top_level():
    sim = simulator([row(T0, asks=((10.00, 100), (10.01, 200)), levels=1)])
    assert sim.book.levels == 1
    assert sim.take(0, T0, 10.05, 250) == 100


def test_sweep_takes_the_cheapest_levels_across_venues_fee_included():
    rows = [
        row(T0, pid=2, asks=((10.00, 100), (10.01, 100))),
        row(T0, pid=3, asks=((10.00, 100), (10.01, 100))),
    ]
    frame_sim = simulator(rows)
    frame_sim.fees.taker[:] = [0.003, 0.001]  # venue 3 is cheaper all-in at the same price
    assert frame_sim.sweep(T0, 250) == 250
    got = sorted(
        (v, p, q)
        for v, p, q in zip(
            frame_sim.ledger.venue, frame_sim.ledger.price, frame_sim.ledger.shares, strict=True
        )
    )
    assert got == [(0, 10.00, 100), (1, 10.00, 100), (1, 10.01, 50)]


# ----------------------------------------------------------------------------------------- queues


def test_trades_consume_the_queue_ahead_then_fill_us():
    rows = [
        row(T0, bids=((9.99, 300),)),
        row(T0 + 1 * MS, bids=((9.99, 800),)),  # 500 join behind us
        trade(T0 + 2 * MS, 9.99, 200, bids=((9.99, 600),)),  # 100 still ahead
        trade(T0 + 3 * MS, 9.99, 150, bids=((9.99, 450),)),  # 100 ahead, then 50 to us
        trade(T0 + 4 * MS, 9.99, 100, bids=((9.99, 350),)),  # the last 50
    ]
    sim = simulator(rows, rebate=0.002)
    assert sim.rest(0, 9.99, 100, T0, T0 + 10 * MS) == 100
    assert [(f[0], f[1], f[2], f[3]) for f in fills(sim)] == [
        (T0 + 3 * MS, 9.99, 50, "maker"),
        (T0 + 4 * MS, 9.99, 50, "maker"),
    ]
    assert sim.ledger.queue_ahead == [300.0, 300.0]
    assert sim.ledger.rebate == pytest.approx([0.1, 0.1])  # 50 × $0.002 each
    assert sim.ledger.fee == [0.0, 0.0]


def test_inverted_venue_charges_the_maker():
    rows = [row(T0, bids=((9.99, 50),)), trade(T0 + MS, 9.99, 150, bids=((9.99, 50),))]
    sim = simulator(rows, rebate=-0.003)
    sim.rest(0, 9.99, 100, T0, T0 + 10 * MS)
    assert sim.ledger.shares == [100]
    assert sim.ledger.rebate == pytest.approx([-0.3])


CANCEL_ROWS = [
    row(T0, bids=((9.99, 300),)),
    row(T0 + 1 * MS, bids=((9.99, 500),)),  # 200 behind us
    row(T0 + 2 * MS, action="C", side="B", price=9.99, size=200, bids=((9.99, 300),)),  # 200 cancelled
    trade(T0 + 3 * MS, 9.99, 200, bids=((9.99, 100),)),
]


@pytest.mark.parametrize(
    ("queue", "power", "filled"),
    [
        ("conservative", 2.0, 0),  # cancels never move us: still 300 ahead, the trade of 200 leaves 100
        # ahead 300, behind 200: the front loses 200·300²/(300²+200²) = 138.46 → 161.54 ahead → 38 filled
        ("probabilistic", 2.0, 38),
        ("probabilistic", 1.0, 20),  # 200·300/500 = 120 from the front → 180 ahead → 20 filled
    ],
)
def test_cancellations_ahead_under_each_queue_model(queue, power, filled):
    sim = simulator(CANCEL_ROWS, queue=queue, power=power)
    assert sim.rest(0, 9.99, 100, T0, T0 + 10 * MS) == filled


def test_a_level_shrinking_below_our_queue_caps_it_in_both_models():
    rows = [
        row(T0, bids=((9.99, 300),)),
        row(T0 + 1 * MS, action="C", side="B", price=9.99, size=250, bids=((9.99, 50),)),
        trade(T0 + 2 * MS, 9.99, 80, bids=((9.99, 0),)),
    ]
    for queue in ("conservative", "probabilistic"):
        sim = simulator(rows, queue=queue)
        assert sim.rest(0, 9.99, 100, T0, T0 + 10 * MS) == 30  # at most 50 can be ahead of us


def test_trade_volume_is_matched_to_a_later_decrease_when_the_book_is_shown_before_the_trade():
    # Databento's trial file prints the book before the trade; the decrease shows on the next row and must
    # not also be counted as a cancellation ahead of us.
    rows = [
        row(T0, bids=((9.99, 300),)),
        row(T0 + 1 * MS, bids=((9.99, 500),)),
        trade(T0 + 2 * MS, 9.99, 200, bids=((9.99, 500),)),  # book before the trade
        row(T0 + 2 * MS + 1, bids=((9.99, 300),)),  # the trade's decrease
        trade(T0 + 3 * MS, 9.99, 150, bids=((9.99, 300),)),
    ]
    sim = simulator(rows, queue="probabilistic")
    assert sim.rest(0, 9.99, 100, T0, T0 + 10 * MS) == 50  # 100 ahead after the first trade, not fewer


def test_a_trade_through_our_price_fills_us():
    # 300 shown ahead of us at 9.99, then a seller trades at 9.98: the 9.99 level must have emptied, and we
    # were still there (our cancel cannot land before the move is seen), so the seller met us first.
    rows = [row(T0, bids=((9.99, 300),)), trade(T0 + MS, 9.98, 70, bids=((9.98, 100),))]
    for latency in (0, 2 * MS):
        sim = simulator(rows, latency_ns=latency)
        assert sim.rest(0, 9.99, 100, T0 - latency, T0 + 10 * MS) == 70
        assert sim.ledger.price == [9.99]


def test_bid_move_cancels_and_reposts_behind_the_new_queue():
    t1 = T0 + 5 * MS
    rows = [
        row(T0, bids=((9.99, 300),), asks=((10.01, 100),)),
        row(t1, bids=((10.00, 200), (9.99, 300)), asks=((10.01, 100),)),  # the bid moves up
        trade(t1 + MS // 2, 9.99, 350, bids=((10.00, 200),), asks=((10.01, 100),)),  # old order still live
        trade(t1 + 3 * MS, 10.00, 230, bids=((10.00, 100),), asks=((10.01, 100),)),  # 200 ahead, 30 to us
        trade(t1 + 4 * MS, 9.99, 1000, bids=((9.99, 100),), asks=((10.01, 100),)),  # through 10.00: the rest
    ]
    sim = simulator(rows, latency_ns=MS)
    assert sim.rest(0, 9.99, 100, T0, T0 + 50 * MS) == 100
    led = sim.ledger
    assert list(zip(led.price, led.shares, led.queue_ahead, strict=True)) == [
        (9.99, 50, 300.0),
        (10.00, 30, 200.0),
        (10.00, 20, 200.0),
    ]
    assert led.order_id[0] != led.order_id[1] == led.order_id[2]  # re-posted as a new order


# ----------------------------------------------------------------------------------------- latency


def test_an_ioc_trades_against_the_book_at_arrival_not_the_one_it_saw():
    rows = [row(T0, asks=((10.00, 100),)), row(T0 + MS // 2, asks=((10.02, 100),))]
    assert simulator(rows, latency_ns=0).take(0, T0, 10.00, 100) == 100
    assert simulator(rows, latency_ns=MS).take(0, T0, 10.00, 100) == 0  # the offer was gone on arrival


def test_trades_before_our_order_arrives_do_not_fill_it():
    rows = [row(T0, bids=((9.99, 100),)), trade(T0 + MS // 2, 9.99, 300, bids=((9.99, 100),))]
    assert simulator(rows, latency_ns=0).rest(0, 9.99, 100, T0, T0 + 10 * MS) == 100
    assert simulator(rows, latency_ns=MS).rest(0, 9.99, 100, T0, T0 + 10 * MS) == 0


def test_a_strategy_sees_rows_only_once_received():
    rows = [row(T0, asks=((10.00, 100),), recv=T0 + 3 * MS)]
    sim = simulator(rows)
    assert len(sim.seen_take_levels(0, T0 + MS)[0]) == 0
    assert sim.seen_take_levels(0, T0 + 3 * MS)[0][0] == 10.00


def test_jitter_is_bounded_and_seeded():
    lat = EntryLatency(entry_ns=MS, jitter_ns=MS // 2)
    draws = [lat.draw(np.random.default_rng(7)) for _ in range(3)]
    assert len(set(draws)) == 1 and MS <= draws[0] <= MS + MS // 2
    rng = np.random.default_rng(1)
    many = [lat.draw(rng) for _ in range(500)]
    assert min(many) >= MS and max(many) <= MS + MS // 2 and len(set(many)) > 100


# ----------------------------------------------------------------------------------------- sell side


def test_a_sell_hits_bids_walking_down_and_posts_at_the_ask():
    rows = [
        row(T0, bids=((9.99, 100), (9.98, 200)), asks=((10.01, 300),)),
        trade(T0 + MS, 10.01, 400, aggressor="B", bids=((9.99, 100), (9.98, 200)), asks=((10.01, 0),)),
    ]
    sim = simulator(rows, side="sell")
    assert sim.take(0, T0, -9.98, 150) == 150  # cost space: −price, the limit is a floor of 9.98
    assert [(-p, q) for p, q in zip(sim.ledger.price, sim.ledger.shares, strict=True)] == [
        (9.99, 100),
        (9.98, 50),
    ]
    assert sim.rest(0, -10.01, 100, T0, T0 + 10 * MS) == 100  # 300 ahead, a buyer lifted 400
    assert -sim.ledger.price[-1] == 10.01 and sim.ledger.kind[-1] == "maker"


def test_one_trade_print_never_fills_two_of_our_orders_at_a_venue():
    # With jitter, the next horizon's order could arrive before the previous one's cancel lands; it waits.
    t_next = T0 + 10 * MS
    rows = [row(T0, bids=((9.99, 300),)), trade(t_next + 3 * MS // 2, 9.98, 70, bids=((9.98, 100),))]
    totals = set()
    for seed in range(50):
        sim = simulator(rows)
        sim.latency = EntryLatency(entry_ns=MS, jitter_ns=MS)
        sim.rng = np.random.default_rng(seed)
        first = sim.rest(0, 9.99, 100, T0, t_next)
        second = sim.rest(0, 9.99, 100, t_next, t_next + 10 * MS)
        totals.add(first + second)
    # 0 when the print falls between the old cancel landing and the new order arriving; never 140
    assert totals == {0, 70}


def test_an_unknown_aggressor_is_judged_by_the_book_before_the_trade():
    # the row prints the book after a buyer lifted the whole 10.01 offer: its own mid would call it a bid hit
    for aggressor in ("B", "N"):
        rows = [
            row(T0, bids=((9.99, 100),), asks=((10.01, 100),)),
            trade(T0 + MS, 10.01, 150, aggressor=aggressor, bids=((9.99, 100),), asks=((10.05, 100),)),
        ]
        assert simulator(rows, side="sell").rest(0, -10.01, 100, T0, T0 + 10 * MS) == 50, aggressor


@pytest.mark.parametrize("printed", ["after", "before"])
def test_outflow_counts_each_traded_share_once_whichever_way_the_book_is_printed(printed):
    from allocator.execution.sim_market import cumulative_outflow

    book_after = 300 if printed == "after" else 500
    rows = [
        row(T0, bids=((9.99, 500),)),
        trade(T0 + MS, 9.99, 200, bids=((9.99, book_after),)),
        row(T0 + MS + 1, bids=((9.99, 300),)),
        row(T0 + 2 * MS, action="C", side="B", price=9.99, size=50, bids=((9.99, 250),)),  # a real cancel
    ]
    stream = simulator(rows).book.streams[0]
    assert cumulative_outflow(stream, queue_model("probabilistic"))[-1] == 250
    assert cumulative_outflow(stream, queue_model("conservative"))[-1] == 200


def test_parent_complete_cancels_every_resting_order_even_one_that_turned_marketable():
    from allocator.execution.realistic import _execute

    rows = [
        row(T0, pid=2, bids=((9.99, 1),), asks=((10.01, 100),)),
        row(T0, pid=3, bids=((9.99, 50),), asks=((10.01, 100),)),
        trade(
            T0 + 2 * MS, 9.99, 101, pid=2, bids=((9.98, 10),), asks=((10.01, 100),)
        ),  # the parent completes
        row(T0 + 20 * MS, pid=3, bids=((10.00, 50),), asks=((10.01, 100),)),  # venue 3's bid moves: re-post
        row(T0 + 20 * MS + MS // 2, pid=3, bids=((9.99, 50),), asks=((10.00, 300),)),  # ...which would cross
    ]
    sim = simulator(rows, latency_ns=MS)
    decision = Decision(
        t=T0,
        remaining=100,
        market_venue=0,
        half_spread=0.01,
        mid=10.0,
        horizon_ns=100 * MS,
        penalties=Penalties(0.0, 0.0, 0.0),
        market=0,
        limits={0: 100, 1: 100},
        post_px=9.99,
    )
    _execute(sim, decision, T0, T0 + 100 * MS, remaining=100)
    assert sim.ledger.filled() == 100  # the cancel landed at +4 ms, long before the re-post could trade
