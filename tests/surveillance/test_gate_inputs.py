"""Hardening of the gate's and the ingest's inputs (issue 18, items 1 and 8):
zero amounts, market orders valued at a reference price, the occurred_at_us
window, and market ids normalized at the door."""

from __future__ import annotations

import time

import pytest

from audit.models import Record
from surveillance.models import KillSwitch, Order

pytestmark = pytest.mark.django_db


def counts() -> tuple[int, int]:
    return Record.objects.count(), Order.objects.count()


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("quantity", "0", "invalid_quantity"),
        ("quantity", "0.000", "invalid_quantity"),
        ("price", "0", "invalid_price"),
        ("price", "0.0", "invalid_price"),
    ],
)
@pytest.mark.parametrize("order_type", ["limit", "stop", "stop_limit"])
def test_refuses_zero_amounts_on_priced_orders(bot, submit, field, value, code, order_type):
    before = counts()
    response = submit(bot, **{field: value, "order_type": order_type})
    assert response.status_code == 400, response.content
    assert [e["code"] for e in response.json()["errors"]] == [code]
    assert counts() == before


def test_zero_priced_market_order_is_valued_at_the_last_trade_and_held(
    bot, submit, set_config, approvals_on
):
    # given a last trade at 100 and an approval threshold of 5000
    set_config(approval_threshold_notional="5000")
    assert submit(bot, quantity="1", price="100", order_id="o-first").json()["decision"] == (
        "accepted"
    )
    fill = bot.signer.item(
        "ORDER_FILLED", {"order_id": "o-first", "fill_id": "f-1", "quantity": "1", "price": "100"}
    )
    assert bot.post_events([fill]).status_code == 201
    # when a market order for 200 units says its price is "0"
    response = submit(bot, quantity="200", price="0", order_type="market", order_id="o-big")
    # then it is valued at 100: held, not waved through at a notional of 0
    body = response.json()
    assert response.status_code == 201, body
    assert body["decision"] == "held"
    assert body["reasons"][0]["code"] == "approval_required"
    assert body["reasons"][0]["value"] == "20000"
    order = Order.objects.get(order_id="o-big")
    assert order.price == 100


def test_market_order_without_any_reference_is_refused_with_price_required(bot, submit):
    before = counts()
    response = submit(bot, quantity="5", price="0", order_type="market")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["code"] == "price_required"
    assert counts() == before


def test_market_order_uses_the_reference_price_it_sends(bot, submit, set_config, approvals_on):
    set_config(approval_threshold_notional="5000")
    response = submit(
        bot, quantity="100", price="0", order_type="market", reference_price="60", order_id="o-m"
    )
    body = response.json()
    assert body["decision"] == "held", body
    assert body["reasons"][0]["value"] == "6000"
    assert Record.objects.get(seq=body["seq"]).as_dict()["data"]["notional"] == "6000"


def test_market_order_with_zero_reference_price_is_refused(bot, submit):
    before = counts()
    response = submit(bot, quantity="1", price="0", order_type="market", reference_price="0")
    assert response.json()["errors"][0]["code"] == "invalid_price"
    assert counts() == before


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (
            {"order_id": "o-1", "fill_id": "f-1", "quantity": "0", "price": "101"},
            "invalid_quantity",
        ),
        ({"order_id": "o-1", "fill_id": "f-1", "quantity": "2", "price": "0"}, "invalid_price"),
    ],
)
def test_refuses_zero_fills(bot, payload, code):
    before = counts()
    response = bot.post_events([bot.signer.item("ORDER_FILLED", payload)])
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == code
    assert counts() == before


def test_refuses_zero_quantity_amendment(bot, submit):
    assert submit(bot, order_id="o-a").status_code == 201
    before = counts()
    item = bot.signer.item("ORDER_AMENDED", {"order_id": "o-a", "quantity": "0"})
    response = bot.client.post("/api/v1/orders/", item, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_quantity"
    assert counts() == before


@pytest.mark.parametrize(
    "occurred",
    [
        lambda now: 0,
        lambda now: now + 10 * 365 * 86400 * 1_000_000,
        lambda now: now - 10 * 365 * 86400 * 1_000_000,
        lambda now: 2**53 - 1,
        lambda now: now + 60 * 1_000_000,  # a minute fast: beyond the default drift
    ],
    ids=["zero", "plus-ten-years", "minus-ten-years", "max-safe-int", "minute-ahead"],
)
def test_refuses_envelopes_outside_the_time_window(bot, occurred):
    now = time.time_ns() // 1000
    before = counts()
    item = bot.signer.item(
        "SYSTEM_ERROR", {"error_type": "x", "message": "m"}, occurred_at_us=occurred(now)
    )
    response = bot.post_events([item])
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "timestamp_out_of_range"
    assert counts() == before


def test_window_is_configurable(bot, settings):
    settings.COMPLIANCE_MAX_CLOCK_DRIFT_US = 120 * 1_000_000
    now = time.time_ns() // 1000
    item = bot.signer.item(
        "SYSTEM_ERROR", {"error_type": "x", "message": "m"}, occurred_at_us=now + 60 * 1_000_000
    )
    assert bot.post_events([item]).status_code == 201


def test_gate_refuses_an_order_from_the_future(bot, order_item):
    now = time.time_ns() // 1000
    item = bot.signer.item(
        "ORDER_SUBMITTED",
        {
            "order_id": "o-f",
            "market": "BTC-USD",
            "side": "buy",
            "quantity": "1",
            "price": "10",
            "order_type": "limit",
        },
        occurred_at_us=now + 3600 * 1_000_000,
    )
    before = counts()
    response = bot.client.post("/api/v1/orders/", item, format="json")
    assert response.json()["errors"][0]["code"] == "timestamp_out_of_range"
    assert counts() == before


def test_market_ids_are_normalized_for_restrictions(bot, submit, set_config):
    set_config(regulatory_limits={"restricted_markets": ["btc-usd"]})
    body = submit(bot, market="Btc-Usd").json()
    assert body["decision"] == "rejected"
    assert [r["code"] for r in body["reasons"]] == ["restricted_market"]
    assert Order.objects.get(order_id=body["order_id"]).market == "BTC-USD"


def test_market_ids_are_normalized_for_kill_switches(bot, submit, client_for):
    response = client_for("rita").post(
        "/api/v1/kill-switch/",
        {"action": "activate", "scope": "market", "target": "eth-usd", "reason": "venue"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert KillSwitch.objects.get(active=True).target == "ETH-USD"
    body = submit(bot, market="ETH-usd").json()
    assert body["decision"] == "rejected"
    assert body["reasons"][0]["code"] == "kill_switch"
    assert body["cancel_all"] is True
    # and deactivating with yet another spelling finds it
    response = client_for("rita").post(
        "/api/v1/kill-switch/",
        {"action": "deactivate", "scope": "market", "target": "Eth-Usd", "reason": "back"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert not KillSwitch.objects.filter(active=True).exists()


def test_positions_need_a_price_unless_flat(bot):
    flat = bot.signer.item("POSITION_CHANGED", {"market": "BTC-USD", "quantity": "0", "price": "0"})
    assert bot.post_events([flat]).status_code == 201
    before = counts()
    priced = bot.signer.item(
        "POSITION_CHANGED", {"market": "BTC-USD", "quantity": "5", "price": "0"}
    )
    response = bot.post_events([priced])
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_price"
    assert counts() == before
