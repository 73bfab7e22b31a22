"""Reports and the evidence at the edges (CONTRACT 12): a fill re-sent under a
new event_id counts once, venue rejections are counted apart from the gate's,
and executions the gate did not allow have their own section."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.storage import default_storage

from .conftest import D, at

pytestmark = pytest.mark.django_db


def as_json(report: Any) -> dict[str, Any]:
    with default_storage.open(report.file, "rb") as fh:
        return json.loads(fh.read())


def rows(doc: dict[str, Any], section: str) -> list[dict[str, Any]]:
    sec = doc["sections"][section]
    return [dict(zip(sec["columns"], row, strict=True)) for row in sec["rows"]]


@pytest.fixture
def day_with_edges(people, make_bot, clock) -> Any:
    """bot-e on D: two orders; o1 filled by f1, and f1 re-sent under a new event_id;
    o2 refused by the venue; a fill for an order the gate never saw."""
    from surveillance.services.config import config_current

    config_current()
    bot = make_bot("bot-e", owner="bob")

    def order(order_id: str) -> None:
        item = bot.signer.item(
            "ORDER_SUBMITTED",
            {"order_id": order_id, "market": "BTC-USD", "side": "buy", "quantity": "2",
             "price": f"10{order_id[-1]}", "order_type": "limit"},
        )  # fmt: skip
        response = bot.client.post("/api/v1/orders/", item, format="json")
        assert response.json()["decision"] == "accepted", response.content

    def event(event_type: str, payload: dict[str, Any]) -> None:
        response = bot.post_events([bot.signer.item(event_type, payload)])
        assert response.status_code == 201
        assert response.json()["results"][0]["status"] == "created"

    clock.move_to(at(9, 0))
    order("o1")
    order("o2")
    clock.move_to(at(9, 1))
    fill = {"order_id": "o1", "fill_id": "f1", "quantity": "2", "price": "101"}
    event("ORDER_FILLED", fill)
    clock.move_to(at(9, 2))
    event("ORDER_FILLED", fill)  # the SDK lost the answer and re-sent it, new event_id
    clock.move_to(at(9, 3))
    event("VENUE_REJECTED", {"order_id": "o2", "reason": "price band", "venue_code": "17"})
    clock.move_to(at(9, 4))
    event(
        "ORDER_FILLED",
        {"order_id": "ghost", "fill_id": "g1", "quantity": "1", "price": "100",
         "market": "BTC-USD", "side": "sell"},
    )  # fmt: skip
    clock.move_to(at(0, 0, 5, days=1))
    return bot


def test_a_re_sent_fill_counts_once(day_with_edges, generate):
    doc = as_json(generate("daily_trade", "json"))
    # two fills (f1 once, g1), from three fill records
    assert doc["summary"]["fills"] == 2
    [activity] = rows(doc, "activity")
    assert activity["fills"] == 2
    fills = [e for e in rows(doc, "order_events") if e["event_type"] == "ORDER_FILLED"]
    assert [e["detail"] for e in fills] == ["fill f1", "fill f1 (re-sent: counted once)", "fill g1"]
    [position] = rows(doc, "positions")
    assert (position["fills"], position["bought"], position["sold"]) == (2, "2", "1")


def test_venue_rejections_are_counted_apart(day_with_edges, generate):
    doc = as_json(generate("daily_trade", "json"))
    assert doc["summary"]["venue_rejections"] == 1
    assert doc["summary"]["orders_rejected"] == 0  # the gate rejected nothing
    [event] = [e for e in rows(doc, "order_events") if e["event_type"] == "VENUE_REJECTED"]
    assert (event["order_id"], event["detail"]) == ("o2", "venue: price band (17)")


def test_gate_bypasses_have_their_own_section(day_with_edges, generate):
    doc = as_json(generate("full_compliance", "json"))
    assert doc["summary"]["gate_bypasses"] == 1
    [bypass] = rows(doc, "gate_bypasses")
    assert (bypass["agent_id"], bypass["order_id"], bypass["reasons"]) == (
        "bot-e",
        "ghost",
        "unknown_order",
    )
    assert (bypass["market"], bypass["side"], bypass["quantity"]) == ("BTC-USD", "sell", "1")
    assert doc["report"]["period"]["label"] == D.isoformat()
