"""Evidence at the edges (CONTRACT 12): what a venue did that the gate never
allowed is stored (201 created), positions follow the real fills, and the
gate_bypass detector raises exactly one critical alert per offending order.
Venue rejections release the order's reserved exposure."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from approvals.services import approval_expire_due
from audit.models import Record
from surveillance.models import AgentMarketRisk, Alert, GateBypass, MarketRisk, Order
from surveillance.services.cycle import surveillance_cycle
from surveillance.services.kill_switch import kill_switch_activate

pytestmark = pytest.mark.django_db


def fill(handle: Any, order_id: str, quantity: str, *, n: int = 1, **extra: str) -> Any:
    payload = {
        "order_id": order_id,
        "fill_id": f"{order_id}-f{n}",
        "quantity": quantity,
        "price": "100",
        **extra,
    }
    return handle.post_events([handle.signer.item("ORDER_FILLED", payload)])


def position(agent_id: str, market: str = "BTC-USD") -> Decimal:
    row = AgentMarketRisk.objects.filter(agent__agent_id=agent_id, market=market).first()
    return row.position if row else Decimal(0)


def bypass_alerts() -> list[Alert]:
    return list(Alert.objects.filter(detector="gate_bypass"))


def assert_one_alert(order_id: str, reason: str, fill_seq: int) -> Alert:
    surveillance_cycle()
    [alert] = bypass_alerts()
    assert alert.severity == "critical"
    assert alert.agent_id == "bot-1"
    assert alert.facts["order_id"] == order_id
    assert reason in alert.facts["reasons"]
    assert order_id in alert.detail
    assert reason in alert.detail
    assert fill_seq in alert.evidence
    # the alert is itself a record
    assert Record.objects.filter(seq=alert.seq, event_type="SURVEILLANCE_ALERT").exists()
    # rerunning the cycle adds none
    surveillance_cycle()
    assert len(bypass_alerts()) == 1
    return alert


def stored(response: Any) -> int:
    assert response.status_code == 201, response.content
    [result] = response.json()["results"]
    assert result["status"] == "created"
    return int(result["seq"])


def test_fill_for_an_unknown_order_is_stored_moves_the_position_and_alerts(bot):
    # when a bot reports a fill for an order it never asked the gate about
    seq = stored(fill(bot, "ghost", "3", market="BTC-USD", side="buy"))
    # then the position follows the real fill
    assert position("bot-1") == 3
    assert MarketRisk.objects.get(market="BTC-USD").position == 3
    # and exactly one critical alert names the order
    alert = assert_one_alert("ghost", "unknown_order", seq)
    assert alert.evidence == [seq]


def test_cancel_for_an_unknown_order_alerts(bot):
    item = bot.signer.item("ORDER_CANCELED", {"order_id": "ghost", "reason": "venue"})
    seq = stored(bot.post_events([item]))
    assert_one_alert("ghost", "unknown_order", seq)


def test_fill_for_a_rejected_order(bot, submit, set_config):
    set_config(regulatory_limits={"max_order_quantity": "5"})
    body = submit(bot, quantity="10", order_id="too-big").json()
    assert body["decision"] == "rejected"
    seq = stored(fill(bot, "too-big", "10"))
    assert position("bot-1") == 10
    alert = assert_one_alert("too-big", "order_not_open", seq)
    assert body["seq"] in alert.evidence  # the gate's decision is evidence too
    assert Order.objects.get(order_id="too-big").status == "rejected"


def test_fill_for_an_expired_order(bot, submit, approvals_on):
    body = submit(bot, quantity="60", price="100", order_id="big").json()
    assert body["decision"] == "held"
    assert approval_expire_due(now=timezone.now() + timedelta(seconds=301)) == 1
    seq = stored(fill(bot, "big", "60"))
    assert position("bot-1") == 60
    assert MarketRisk.objects.get(market="BTC-USD").open_buy == 0
    assert_one_alert("big", "order_not_open", seq)


def test_fill_for_an_order_still_pending_approval(bot, submit, approvals_on):
    body = submit(bot, quantity="60", price="100", order_id="big").json()
    assert body["decision"] == "held"
    seq = stored(fill(bot, "big", "20"))
    assert position("bot-1") == 20
    assert_one_alert("big", "order_not_open", seq)


def test_overfill(bot, submit):
    assert submit(bot, quantity="2", order_id="small").json()["decision"] == "accepted"
    stored(fill(bot, "small", "2", n=1))  # a full fill: no bypass
    surveillance_cycle()
    assert bypass_alerts() == []
    seq = stored(fill(bot, "small", "3", n=2))
    assert position("bot-1") == 5
    assert Order.objects.get(order_id="small").filled_quantity == 5
    assert_one_alert("small", "overfill", seq)
    # a further offence of the same order is part of the same case
    stored(fill(bot, "small", "1", n=3))
    surveillance_cycle()
    assert len(bypass_alerts()) == 1


@pytest.mark.parametrize("scope", ["agent", "market", "global"])
def test_fill_under_a_kill_switch(bot, submit, people, scope):
    assert submit(bot, quantity="2", order_id="resting").json()["decision"] == "accepted"
    target = {"agent": "bot-1", "market": "BTC-USD", "global": None}[scope]
    kill_switch_activate(scope=scope, target=target, reason="runaway", acting_user=people["rita"])
    seq = stored(fill(bot, "resting", "2"))
    assert position("bot-1") == 2
    assert_one_alert("resting", "kill_switch", seq)


def test_fill_in_a_restricted_market(bot, submit, set_config):
    assert submit(bot, quantity="2", order_id="resting").json()["decision"] == "accepted"
    set_config(regulatory_limits={"restricted_markets": ["BTC-USD"]})
    seq = stored(fill(bot, "resting", "2"))
    assert position("bot-1") == 2
    assert_one_alert("resting", "restricted_market", seq)


def test_ordinary_fills_and_a_resent_fill_raise_nothing(bot, submit):
    assert submit(bot, quantity="2", order_id="ok").json()["decision"] == "accepted"
    stored(fill(bot, "ok", "1", n=1))
    # the same fill again under a new event_id: stored, moves nothing, no bypass
    stored(fill(bot, "ok", "1", n=1))
    stored(fill(bot, "ok", "1", n=2))
    item = bot.signer.item("ORDER_CANCELED", {"order_id": "ok", "reason": "done"})
    stored(bot.post_events([item]))
    surveillance_cycle()
    assert position("bot-1") == 2
    assert GateBypass.objects.count() == 0
    assert bypass_alerts() == []


def test_venue_rejection_rejects_the_order_and_releases_its_exposure(bot, submit):
    assert submit(bot, quantity="4", order_id="o-v").json()["decision"] == "accepted"
    assert MarketRisk.objects.get(market="BTC-USD").open_buy == 4
    item = bot.signer.item(
        "VENUE_REJECTED",
        {"order_id": "o-v", "reason": "insufficient margin", "venue": "XNAS", "venue_code": "201"},
    )
    seq = stored(bot.post_events([item]))
    order = Order.objects.get(order_id="o-v")
    assert order.status == "rejected"
    assert MarketRisk.objects.get(market="BTC-USD").open_buy == 0
    assert AgentMarketRisk.objects.get(agent__agent_id="bot-1", market="BTC-USD").open_buy == 0
    record = Record.objects.get(seq=seq).as_dict()
    assert record["event_type"] == "VENUE_REJECTED"
    assert record["source"]["envelope"]["payload"]["venue_code"] == "201"
    assert bot.client.get("/api/v1/orders/o-v/").json()["status"] == "rejected"
    # a venue refusal of an accepted order is no bypass
    surveillance_cycle()
    assert bypass_alerts() == []


def test_venue_rejection_schema_is_enforced(bot):
    item = bot.signer.item("VENUE_REJECTED", {"order_id": "o-v"})
    response = bot.post_events([item])
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "schema_violation"
    assert not Record.objects.filter(event_type="VENUE_REJECTED").exists()


def test_fills_of_a_manual_order_the_gate_accepted_raise_nothing(bot, client_for):
    """A trader's manual order goes through the same gate (CONTRACT 12), so its
    fills, reported by the bot that trades it, are not a bypass."""
    body = {
        "agent_id": "bot-1",
        "order_id": "m-1",
        "market": "BTC-USD",
        "side": "buy",
        "quantity": "2",
        "price": "100",
        "order_type": "limit",
    }
    response = client_for("bob").post("/api/v1/orders/", body, format="json")
    assert response.status_code == 201
    assert response.json()["decision"] == "accepted"
    stored(fill(bot, "m-1", "2"))
    surveillance_cycle()
    assert position("bot-1") == 2
    assert GateBypass.objects.count() == 0
    assert bypass_alerts() == []
