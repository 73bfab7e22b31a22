"""The pure helpers of surveillance.checks that the gate, the snapshot, the
projections, the risk counters and the dashboard share."""

from __future__ import annotations

from decimal import Decimal

from surveillance.checks import (
    Exposure,
    kill_switch_keys,
    kill_switches_covering,
    worst_position,
)

D = Decimal


def test_kill_switch_keys_are_global_then_agent_then_market():
    assert kill_switch_keys("bot-1", "BTC-USD") == (
        ("global", ""),
        ("agent", "bot-1"),
        ("market", "BTC-USD"),
    )
    # an order with no market is covered by the global and the agent's switch only
    assert kill_switch_keys("bot-1", None) == (("global", ""), ("agent", "bot-1"))


def test_only_the_switches_in_scope_cover_an_order():
    switches = {("agent", "bot-2"), ("market", "ETH-USD"), ("market", "BTC-USD")}
    assert kill_switches_covering(switches, "bot-1", "BTC-USD") == [("market", "BTC-USD")]
    assert kill_switches_covering(switches, "bot-2", "BTC-USD") == [
        ("agent", "bot-2"),
        ("market", "BTC-USD"),
    ]
    assert kill_switches_covering(switches, "bot-1", "SOL-USD") == []
    assert kill_switches_covering(switches, "bot-1", None) == []
    assert kill_switches_covering({("global", "")}, "bot-9", None) == [("global", "")]


def test_worst_position_is_the_larger_of_all_buys_or_all_sells_filling():
    # long 5 with 3 to buy and 20 to sell resting: worst is short 15
    assert worst_position(D(5), D(3), D(20)) == D(15)
    # long 5 with 3 to buy: long 8
    assert worst_position(D(5), D(3), D(0)) == D(8)
    assert worst_position(D(0), D(0), D(0)) == D(0)
    # exact: no rounding at the default context's 28 digits
    big = D("1234567890123456789012345678")
    assert worst_position(big, D("0.5"), D(0)) == D("1234567890123456789012345678.5")
    assert worst_position(-big, D(0), D("0.5")) == D("1234567890123456789012345678.5")


def test_an_exposure_counts_the_new_order_on_its_side():
    exposure = Exposure(position=D(5), open_buy=D(3), open_sell=D(20))
    assert exposure.worst() == D(15)
    assert exposure.worst("buy", D(10)) == D(18)
    assert exposure.worst("sell", D(10)) == D(25)
