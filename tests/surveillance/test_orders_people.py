"""Traders act for their desks (CONTRACT 12): a manual order through the same
gate, a cancel request the bot hears of in its next gate answer, and positions
for viewers. Each refusal leaves orders, exposure and the log as they were."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.models import Record
from surveillance.models import AgentMarketRisk, MarketRisk, Order
from surveillance.services.cycle import events_from_records

pytestmark = pytest.mark.django_db

# Every caller but the bot: five roles, oscar (a trader who owns nothing) and anonymous.
CALLERS = ["carol", "bob", "oscar", "rita", "alice", "adam", None]


def manual(order_id: str = "m-1", **fields: Any) -> dict[str, Any]:
    return {
        "agent_id": "bot-1",
        "order_id": order_id,
        "market": "BTC-USD",
        "side": "buy",
        "quantity": "2",
        "price": "100",
        "order_type": "limit",
        **fields,
    }


def state() -> tuple[Any, ...]:
    """What a refused request must leave untouched."""
    return (
        list(Order.objects.order_by("pk").values()),
        list(MarketRisk.objects.order_by("pk").values()),
        list(AgentMarketRisk.objects.order_by("pk").values()),
        Record.objects.count(),
    )


def last_records(n: int) -> list[dict[str, Any]]:
    rows = Record.objects.order_by("-seq")[:n]
    return [json.loads(r.body) | {"agent_id_column": r.agent_id} for r in reversed(rows)]


@pytest.fixture
def caller(client_for):
    return lambda name: client_for(name) if name else APIClient()


# Manual orders


def test_trader_submits_a_manual_order_through_the_gate(bot, client_for):
    # given bob, who owns bot-1; when he submits an order for it
    response = client_for("bob").post("/api/v1/orders/", manual(), format="json")
    # then the gate decides it like a bot's, and answers the same way
    assert response.status_code == 201
    body = response.json()
    assert body["decision"] == "accepted"
    assert body["status"] == "open"
    assert body["cancel_orders"] == []
    # the record: the person is the actor, no envelope, the order as sent in its data
    [record] = last_records(1)
    assert record["event_type"] == "ORDER_SUBMITTED"
    assert record["actor"] == {"type": "user", "id": "bob"}
    assert record["source"] is None
    assert record["seq"] == body["seq"]
    assert record["data"]["manual"] is True
    assert record["data"]["order"] == {k: v for k, v in manual().items() if k != "agent_id"}
    assert record["data"]["config_hash"] == body["config_hash"]
    assert record["agent_id_column"] == "bot-1"
    # the order is the agent's, submitted by bob, and its exposure is reserved
    order = Order.objects.get(order_id="m-1")
    assert (order.agent.agent_id, order.submitted_by.username) == ("bot-1", "bob")
    assert MarketRisk.objects.get(market="BTC-USD").open_buy == Decimal(2)
    # and surveillance reads it as the agent's submission
    rows = list(
        Record.objects.filter(seq=body["seq"]).values_list(
            "seq", "event_type", "agent_id", "recorded_at_us", "body"
        )
    )
    [event] = events_from_records(rows)
    assert (event.agent_id, event.market, event.order_id) == ("bot-1", "BTC-USD", "m-1")


def test_manual_order_meets_the_same_checks(bot, client_for, set_config):
    set_config(regulatory_limits={"restricted_markets": ["BTC-USD"]})
    response = client_for("bob").post("/api/v1/orders/", manual(), format="json")
    body = response.json()
    assert body["decision"] == "rejected"
    assert [r["code"] for r in body["reasons"]] == ["restricted_market"]
    rejected, breach = last_records(2)
    assert rejected["event_type"] == "ORDER_REJECTED"
    assert rejected["actor"] == {"type": "user", "id": "bob"}
    assert breach["event_type"] == "LIMIT_BREACH"
    assert breach["data"]["order_id"] == "m-1"


@pytest.mark.parametrize("name", CALLERS)
def test_manual_order_permissions(bot, caller, name):
    before = state()
    response = caller(name).post("/api/v1/orders/", manual(), format="json")
    expected = {None: 401, "carol": 403, "oscar": 404}.get(name, 201)
    assert response.status_code == expected
    if expected != 201:
        assert state() == before
    else:
        # the actor is whoever sent it (risk managers and above act for any agent)
        assert last_records(1)[0]["actor"] == {"type": "user", "id": name}


@pytest.mark.parametrize(
    ("order", "status", "code"),
    [
        (manual(quantity=2.5), 400, "float_not_allowed"),
        (manual(side="hold"), 400, "schema_violation"),
        ({k: v for k, v in manual().items() if k != "price"}, 400, "schema_violation"),
        (manual(leverage="10"), 400, "schema_violation"),
        (manual(agent_id="bot-unknown"), 404, "not_found"),
        ({k: v for k, v in manual().items() if k != "agent_id"}, 400, "agent_id_required"),
    ],
)
def test_manual_order_bad_input_stores_nothing(bot, client_for, order, status, code):
    before = state()
    response = client_for("bob").post("/api/v1/orders/", order, format="json")
    assert response.status_code == status
    assert response.json()["code"] == code
    assert state() == before


def test_manual_order_reusing_an_order_id_is_a_conflict(bot, client_for, submit):
    submit(bot, order_id="o-1")
    before = state()
    response = client_for("bob").post("/api/v1/orders/", manual("o-1"), format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "order_id_conflict"
    assert state() == before


def test_manual_order_for_a_suspended_agent_is_refused(bot, client_for, people):
    from audit.services.agents import agent_set_status

    agent_set_status(agent=bot.agent, status="suspended", reason="x", acting_user=people["rita"])
    before = state()
    response = client_for("bob").post("/api/v1/orders/", manual(), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "agent_suspended"
    assert state() == before


# Cancel requests


def test_cancel_request_reaches_the_bot_in_its_next_gate_answer(bot, submit, client_for):
    # given an open order of bot-1
    assert submit(bot, order_id="o-1").json()["decision"] == "accepted"
    # when bob asks for it to be canceled
    response = client_for("bob").post(
        "/api/v1/orders/o-1/cancel/",
        {"agent_id": "bot-1", "reason": "stale quote"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["cancel_requested"] is True
    # then the request is a record with bob as actor
    [record] = last_records(1)
    assert record["event_type"] == "CANCEL_REQUESTED"
    assert record["actor"] == {"type": "user", "id": "bob"}
    assert record["data"] == {"order_id": "o-1", "agent_id": "bot-1", "reason": "stale quote"}
    # the order is still open: only the bot cancels on the venue
    assert Order.objects.get(order_id="o-1").status == "open"
    # the bot's next gate answer names it, and so does its order
    assert submit(bot, order_id="o-2").json()["cancel_orders"] == ["o-1"]
    assert bot.client.get("/api/v1/orders/o-1/").json()["cancel_requested"] is True
    # once the bot reports the cancel, the order is canceled and no longer named
    item = bot.signer.item("ORDER_CANCELED", {"order_id": "o-1", "reason": "asked by desk"})
    assert bot.post_events([item]).status_code == 201
    assert Order.objects.get(order_id="o-1").status == "canceled"
    assert submit(bot, order_id="o-3").json()["cancel_orders"] == []


def test_cancel_request_is_repeated_until_the_bot_acts(bot, submit, client_for):
    submit(bot, order_id="o-1")
    client_for("bob").post(
        "/api/v1/orders/o-1/cancel/", {"agent_id": "bot-1", "reason": "x"}, format="json"
    )
    assert submit(bot, order_id="o-2").json()["cancel_orders"] == ["o-1"]
    assert submit(bot, order_id="o-3").json()["cancel_orders"] == ["o-1"]


def test_manual_order_answer_carries_cancel_orders_too(bot, submit, client_for):
    submit(bot, order_id="o-1")
    client_for("bob").post(
        "/api/v1/orders/o-1/cancel/", {"agent_id": "bot-1", "reason": "x"}, format="json"
    )
    body = client_for("bob").post("/api/v1/orders/", manual(), format="json").json()
    assert body["cancel_orders"] == ["o-1"]


@pytest.mark.parametrize("name", CALLERS)
def test_cancel_request_permissions(bot, submit, caller, name):
    submit(bot, order_id="o-1")
    before = state()
    response = caller(name).post(
        "/api/v1/orders/o-1/cancel/", {"agent_id": "bot-1", "reason": "x"}, format="json"
    )
    expected = {None: 401, "carol": 403, "oscar": 404}.get(name, 200)
    assert response.status_code == expected
    if expected != 200:
        assert state() == before
    else:
        assert last_records(1)[0]["actor"] == {"type": "user", "id": name}


def test_a_bot_cannot_file_a_cancel_request(bot, submit):
    submit(bot, order_id="o-1")
    before = state()
    response = bot.client.post(
        "/api/v1/orders/o-1/cancel/", {"agent_id": "bot-1", "reason": "x"}, format="json"
    )
    assert response.status_code == 403
    assert state() == before


@pytest.mark.parametrize(
    ("setup", "order_id", "body", "status", "code"),
    [
        ("twice", "o-1", {"agent_id": "bot-1", "reason": "x"}, 409, "cancel_already_requested"),
        ("rejected", "o-r", {"agent_id": "bot-1", "reason": "x"}, 409, "order_not_open"),
        (None, "o-none", {"agent_id": "bot-1", "reason": "x"}, 404, "order_not_found"),
        (None, "o-1", {"agent_id": "bot-1"}, 400, "invalid"),
        (None, "o-1", {"agent_id": "bot-1", "reason": "   "}, 400, "invalid"),
        (None, "o-1", {"agent_id": "bot-9", "reason": "x"}, 404, "not_found"),
    ],
)
def test_cancel_request_refusals_store_nothing(
    bot, submit, client_for, set_config, setup, order_id, body, status, code
):
    submit(bot, order_id="o-1")
    if setup == "twice":
        client_for("bob").post(
            "/api/v1/orders/o-1/cancel/", {"agent_id": "bot-1", "reason": "x"}, format="json"
        )
    if setup == "rejected":
        set_config(regulatory_limits={"restricted_markets": ["ETH-USD"]})
        submit(bot, order_id="o-r", market="ETH-USD")
    before = state()
    response = client_for("bob").post(f"/api/v1/orders/{order_id}/cancel/", body, format="json")
    assert response.status_code == status
    assert response.json()["code"] == code
    assert state() == before


# Positions


@pytest.fixture
def two_desks(make_bot, submit, people):
    """bot-1 (bob's) has a resting buy of 2 BTC; bot-2 (no owner) a resting sell of 1 ETH."""
    one = make_bot("bot-1", owner="bob")
    two = make_bot("bot-2", owner=None)
    submit(one, order_id="a", quantity="2", price="100")
    submit(two, order_id="b", side="sell", market="ETH-USD", quantity="1", price="10")
    return one, two


def test_viewer_sees_every_agent_and_the_firm(two_desks, client_for):
    body = client_for("carol").get("/api/v1/positions/").json()
    assert body["results"] == [
        {
            "agent_id": "bot-1",
            "market": "BTC-USD",
            "position": "0",
            "open_buy": "2",
            "open_sell": "0",
        },
        {
            "agent_id": "bot-2",
            "market": "ETH-USD",
            "position": "0",
            "open_buy": "0",
            "open_sell": "1",
        },
    ]
    assert [(m["market"], m["open_buy"], m["open_sell"]) for m in body["firm"]] == [
        ("BTC-USD", "2", "0"),
        ("ETH-USD", "0", "1"),
    ]


def test_trader_sees_only_their_agents_and_not_the_firm(two_desks, client_for):
    body = client_for("bob").get("/api/v1/positions/").json()
    assert [r["agent_id"] for r in body["results"]] == ["bot-1"]
    assert body["firm"] is None
    assert client_for("oscar").get("/api/v1/positions/").json() == {"results": [], "firm": None}
    response = client_for("oscar").get("/api/v1/positions/?agent_id=bot-1")
    assert response.status_code == 404


def test_positions_filters(two_desks, client_for):
    client = client_for("rita")
    by_agent = client.get("/api/v1/positions/?agent_id=bot-2").json()
    assert [r["market"] for r in by_agent["results"]] == ["ETH-USD"]
    by_market = client.get("/api/v1/positions/?market=BTC-USD").json()
    assert [r["agent_id"] for r in by_market["results"]] == ["bot-1"]
    assert [m["market"] for m in by_market["firm"]] == ["BTC-USD"]


@pytest.mark.parametrize("name", CALLERS)
def test_positions_permissions(two_desks, caller, name):
    response = caller(name).get("/api/v1/positions/")
    assert response.status_code == (401 if name is None else 200)


def test_a_bot_cannot_read_positions(two_desks):
    one, _ = two_desks
    assert one.client.get("/api/v1/positions/").status_code == 403


# The read-only positions pages in the admin


def admin_page(people: dict[str, Any], name: str, path: str) -> Any:
    from django.test import Client

    client = Client()
    client.force_login(people[name])
    return client.get(path)


POSITIONS = "/admin/surveillance/agentmarketrisk/"
FIRM = "/admin/surveillance/marketrisk/"


def test_positions_admin_pages_are_read_only_and_filtered(two_desks, people):
    page = admin_page(people, "carol", POSITIONS).content.decode()
    assert "bot-1" in page
    assert "bot-2" in page
    assert "/add/" not in page  # nothing to add, change or delete
    mine = admin_page(people, "bob", POSITIONS).content.decode()
    assert "bot-1" in mine
    assert "bot-2" not in mine
    firm = admin_page(people, "carol", FIRM)
    assert firm.status_code == 200
    assert "ETH-USD" in firm.content.decode()
    assert admin_page(people, "bob", FIRM).status_code == 403
    row = AgentMarketRisk.objects.get(agent__agent_id="bot-1")
    change = admin_page(people, "adam", f"{POSITIONS}{row.pk}/change/").content.decode()
    assert 'name="position"' not in change  # shown, never an input


@pytest.mark.parametrize("name", CALLERS)
def test_order_lookup_shows_the_cancel_request_to_those_who_see_the_agent(
    bot, submit, client_for, caller, name
):
    submit(bot, order_id="o-1")
    client_for("bob").post(
        "/api/v1/orders/o-1/cancel/", {"agent_id": "bot-1", "reason": "x"}, format="json"
    )
    response = caller(name).get("/api/v1/orders/o-1/?agent_id=bot-1")
    expected = {None: 401, "oscar": 404}.get(name, 200)
    assert response.status_code == expected
    if expected == 200:
        assert response.json()["cancel_requested"] is True
        assert response.json()["cancel_requested_seq"] == last_records(1)[0]["seq"]


def test_a_person_may_not_grant_the_manual_order_they_held(bot, client_for, set_config):
    # given approvals on; alice (compliance officer, not bob's bot's owner)
    # submits a large manual order for bot-1, which is held
    set_config(approval_enabled=True, approval_threshold_notional="100")
    body = client_for("alice").post("/api/v1/orders/", manual(), format="json").json()
    assert body["decision"] == "held"
    requested = last_records(1)[0]
    assert requested["event_type"] == "APPROVAL_REQUESTED"
    assert requested["actor"] == {"type": "user", "id": "alice"}
    before = state()
    # then she may not approve it herself (four eyes); another officer may
    response = client_for("alice").post(
        f"/api/v1/approvals/{body['approval']['id']}/approve/", {"reason": "ok"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "four_eyes_requester"
    assert state() == before
    granted = client_for("adam").post(
        f"/api/v1/approvals/{body['approval']['id']}/approve/", {"reason": "ok"}, format="json"
    )
    assert granted.status_code == 200
    assert Order.objects.get(order_id="m-1").status == "open"
