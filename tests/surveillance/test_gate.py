"""The pre-trade gate: one test per reason code (CONTRACT section 7), with the
decision, the reasons, the records written and the projections."""

from __future__ import annotations

from decimal import Decimal

import pytest

from audit.models import Record
from surveillance.models import AgentMarketRisk, MarketRisk, Order
from surveillance.services.config import config_current
from tests.conftest import fill_payload

pytestmark = pytest.mark.django_db


def records_after(seq: int) -> list[dict]:
    return [r.as_dict() for r in Record.objects.filter(seq__gt=seq).order_by("seq")]


def last_seq() -> int:
    return Record.objects.order_by("-seq").values_list("seq", flat=True).first()


def exposure(market: str = "BTC-USD") -> tuple[Decimal, Decimal, Decimal]:
    row = MarketRisk.objects.filter(market=market).first()
    return (row.position, row.open_buy, row.open_sell) if row else (Decimal(0),) * 3


def test_accepted_order_is_recorded_with_config_hash_and_reserves_exposure(bot, submit):
    config_current()
    before = last_seq()
    response = submit(bot, quantity="2", price="100", order_id="o-1")
    assert response.status_code == 201
    body = response.json()
    assert body["decision"] == "accepted"
    assert body["status"] == "open"
    assert body["reasons"] == []
    assert body["approval"] is None
    assert body["cancel_all"] is False
    assert body["config_hash"] == config_current().hash
    (record,) = records_after(before)
    assert record["seq"] == body["seq"]
    assert record["event_type"] == "ORDER_SUBMITTED"
    assert record["source"]["envelope"]["payload"]["order_id"] == "o-1"
    assert record["data"]["decision"] == "accepted"
    assert record["data"]["config_hash"] == body["config_hash"]
    assert exposure() == (0, 2, 0)
    order = Order.objects.get(order_id="o-1")
    assert order.status == "open"
    assert order.seq == body["seq"]


def test_fill_and_cancel_update_order_and_positions(bot, submit):
    submit(bot, quantity="5", price="100", order_id="o-1")
    bot.post_events(
        [bot.signer.item("ORDER_FILLED", {**fill_payload(), "order_id": "o-1", "quantity": "2"})]
    )
    order = Order.objects.get(order_id="o-1")
    assert order.status == "partially_filled"
    assert order.filled_quantity == 2
    assert exposure() == (2, 3, 0)
    assert AgentMarketRisk.objects.get(agent=bot.agent, market="BTC-USD").position == 2
    bot.post_events([bot.signer.item("ORDER_CANCELED", {"order_id": "o-1", "reason": "done"})])
    assert Order.objects.get(order_id="o-1").status == "canceled"
    assert exposure() == (2, 0, 0)


def test_same_fill_reported_twice_moves_position_once(bot, submit):
    submit(bot, quantity="5", price="100", order_id="o-1")
    fill = {**fill_payload(), "order_id": "o-1", "quantity": "2"}
    bot.post_events([bot.signer.item("ORDER_FILLED", fill)])
    bot.post_events([bot.signer.item("ORDER_FILLED", fill)])  # new event_id, same fill_id
    assert exposure() == (2, 3, 0)
    assert Record.objects.filter(event_type="ORDER_FILLED").count() == 2


def test_position_changed_sets_agent_position(bot):
    bot.post_events(
        [
            bot.signer.item(
                "POSITION_CHANGED", {"market": "ETH-USD", "quantity": "-3", "price": "10"}
            )
        ]
    )
    assert AgentMarketRisk.objects.get(agent=bot.agent, market="ETH-USD").position == -3
    assert exposure("ETH-USD") == (-3, 0, 0)


def rejected(response, code: str, *, limit=None, value=None):
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["decision"] == "rejected"
    assert body["status"] == "rejected"
    reasons = {r["code"]: r for r in body["reasons"]}
    assert code in reasons, body["reasons"]
    if limit is not None:
        assert reasons[code]["limit"] == limit
    if value is not None:
        assert reasons[code]["value"] == value
    assert reasons[code]["detail"]
    return body


def assert_rejection_records(before: int, body: dict, breaches: list[str]) -> None:
    records = records_after(before)
    assert records[0]["event_type"] == "ORDER_REJECTED"
    assert records[0]["seq"] == body["seq"]
    assert records[0]["source"]["envelope"]["event_type"] == "ORDER_SUBMITTED"
    assert records[0]["data"]["reasons"] == body["reasons"]
    assert [r["data"]["code"] for r in records[1:] if r["event_type"] == "LIMIT_BREACH"] == breaches


def test_rejects_order_when_kill_switch_active(bot, submit, client_for):
    submit(bot, quantity="1", price="100", order_id="o-1")
    bot.post_events(
        [bot.signer.item("ORDER_FILLED", {**fill_payload(), "order_id": "o-1", "quantity": "1"})]
    )
    activated = client_for("rita").post(
        "/api/v1/kill-switch/",
        {"action": "activate", "scope": "agent", "target": "bot-1", "reason": "runaway"},
        format="json",
    )
    assert activated.status_code == 200
    (switch,) = activated.json()["active"]
    assert switch["snapshot"]["positions"] == [
        {"agent_id": "bot-1", "market": "BTC-USD", "position": "1"}
    ]
    record = Record.objects.get(seq=switch["activated_seq"]).as_dict()
    assert record["event_type"] == "KILL_SWITCH_ACTIVATED"
    assert record["data"]["snapshot"] == switch["snapshot"]
    before = last_seq()
    body = rejected(submit(bot), "kill_switch", limit="agent:bot-1")
    assert body["cancel_all"] is True
    assert_rejection_records(before, body, [])  # a kill switch is not a regulatory limit breach
    # and deactivation lets the next order through
    off = client_for("rita").post(
        "/api/v1/kill-switch/",
        {"action": "deactivate", "scope": "agent", "target": "bot-1", "reason": "fixed"},
        format="json",
    )
    assert off.json()["active"] == []
    assert Record.objects.filter(event_type="KILL_SWITCH_DEACTIVATED").count() == 1
    assert submit(bot).json()["decision"] == "accepted"


def test_kill_switch_needs_configured_role(bot, client_for, set_config):
    response = client_for("bob").post(
        "/api/v1/kill-switch/",
        {"action": "activate", "scope": "global", "reason": "x"},
        format="json",
    )
    assert response.status_code == 403
    set_config(kill_switch_requires_role="compliance_officer")
    before = last_seq()
    response = client_for("rita").post(
        "/api/v1/kill-switch/",
        {"action": "activate", "scope": "global", "reason": "x"},
        format="json",
    )
    assert response.status_code == 403
    assert last_seq() == before
    assert (
        client_for("alice")
        .post(
            "/api/v1/kill-switch/",
            {"action": "activate", "scope": "global", "reason": "x"},
            format="json",
        )
        .status_code
        == 200
    )


def test_rejects_order_in_restricted_market(bot, submit, set_config):
    set_config(regulatory_limits={"restricted_markets": ["GME-USD"]})
    before = last_seq()
    body = rejected(submit(bot, market="GME-USD"), "restricted_market", limit="GME-USD")
    assert_rejection_records(before, body, ["restricted_market"])
    assert exposure("GME-USD") == (0, 0, 0)


def test_rejects_order_outside_price_collar(bot, submit, set_config):
    set_config(regulatory_limits={"price_collar_pct": "5"})
    submit(bot, price="100", order_id="o-1")
    bot.post_events(
        [
            bot.signer.item(
                "ORDER_FILLED",
                {**fill_payload(), "order_id": "o-1", "quantity": "1", "price": "100"},
            )
        ]
    )
    assert submit(bot, price="104").json()["decision"] == "accepted"
    before = last_seq()
    body = rejected(submit(bot, price="110"), "price_collar", limit="5", value="10")
    assert_rejection_records(before, body, ["price_collar"])


def test_rejects_order_above_max_quantity(bot, submit, set_config):
    set_config(regulatory_limits={"max_order_quantity": "10"})
    before = last_seq()
    body = rejected(submit(bot, quantity="11"), "max_order_quantity", limit="10", value="11")
    assert_rejection_records(before, body, ["max_order_quantity"])


def test_rejects_order_above_max_notional(bot, submit, set_config):
    set_config(regulatory_limits={"max_order_notional": "1000"})
    body = rejected(
        submit(bot, quantity="11", price="100"), "max_order_notional", limit="1000", value="1100"
    )
    assert len(body["reasons"]) == 1


def test_rejects_duplicate_order_within_window(bot, submit, set_config):
    set_config(regulatory_limits={"duplicate_window_secs": 60})
    assert submit(bot, quantity="3", price="100").json()["decision"] == "accepted"
    before = last_seq()
    body = rejected(submit(bot, quantity="3", price="100"), "duplicate_order")
    assert_rejection_records(before, body, ["duplicate_order"])
    assert submit(bot, quantity="3", price="101").json()["decision"] == "accepted"


def test_rejects_orders_beyond_rate_limit(bot, submit, set_config):
    set_config(regulatory_limits={"max_orders_per_minute": 3, "duplicate_window_secs": 0})
    for _ in range(3):
        assert submit(bot).json()["decision"] == "accepted"
    rejected(submit(bot), "rate_limit", limit=3, value=4)


def test_rejects_order_breaching_position_cap_counting_resting_orders(bot, submit, set_config):
    set_config(regulatory_limits={"max_position_per_market": "10"})
    assert submit(bot, quantity="6").json()["decision"] == "accepted"
    before = last_seq()
    body = rejected(submit(bot, quantity="5"), "max_position", limit="10", value="11")
    assert_rejection_records(before, body, ["max_position"])
    assert exposure() == (0, 6, 0)
    assert submit(bot, quantity="5", side="sell").json()["decision"] == "accepted"


def test_rejects_order_breaching_total_notional(bot, submit, set_config):
    set_config(regulatory_limits={"max_total_notional": "1000", "max_concentration_pct": None})
    assert submit(bot, market="A", quantity="5", price="100").json()["decision"] == "accepted"
    rejected(
        submit(bot, market="B", quantity="6", price="100"),
        "max_total_notional",
        limit="1000",
        value="1100",
    )


def test_rejects_order_breaching_concentration(bot, submit, set_config):
    set_config(regulatory_limits={"max_concentration_pct": "25", "portfolio_capital": "1000"})
    rejected(submit(bot, quantity="3", price="100"), "max_concentration", limit="25", value="30")
    assert submit(bot, quantity="2", price="100").json()["decision"] == "accepted"


def test_first_small_order_is_not_concentrated(bot, submit):
    assert submit(bot, quantity="1", price="100").json()["decision"] == "accepted"


def test_rejects_order_breaching_daily_volume(bot, submit, set_config):
    set_config(regulatory_limits={"max_daily_volume": "500"})
    assert submit(bot, quantity="4", price="100").json()["decision"] == "accepted"
    rejected(submit(bot, quantity="2", price="100"), "max_daily_volume", limit="500", value="600")


def test_rejects_order_when_cancel_ratio_too_high(bot, submit, set_config):
    set_config(
        regulatory_limits={
            "max_cancel_ratio": "0.5",
            "cancel_ratio_min_orders": 4,
            "duplicate_window_secs": 0,
        }
    )
    for n in range(4):
        submit(bot, order_id=f"c-{n}")
    for n in range(3):
        bot.post_events([bot.signer.item("ORDER_CANCELED", {"order_id": f"c-{n}", "reason": "x"})])
    rejected(submit(bot), "max_cancel_ratio", limit="0.5", value="0.75")


def test_rejects_order_breaching_agent_risk_limit(bot, submit, client_for):
    response = client_for("rita").put(
        "/api/v1/agents/bot-1/risk-limits/",
        {
            "max_position": "5",
            "max_order_notional": None,
            "max_daily_notional": None,
            "max_orders_per_minute": None,
        },
        format="json",
    )
    assert response.status_code == 200
    assert Record.objects.filter(event_type="RISK_LIMITS_CHANGED").count() == 1
    before = last_seq()
    body = rejected(submit(bot, quantity="6"), "agent_risk_limit", limit="5", value="6")
    assert_rejection_records(before, body, [])


def test_every_failing_check_is_reported_in_order(bot, submit, set_config):
    set_config(
        regulatory_limits={
            "restricted_markets": ["X"],
            "max_order_quantity": "1",
            "max_order_notional": "10",
        }
    )
    body = rejected(submit(bot, market="X", quantity="2", price="100"), "restricted_market")
    assert [r["code"] for r in body["reasons"]] == [
        "restricted_market",
        "max_order_quantity",
        "max_order_notional",
    ]
    assert Record.objects.filter(event_type="LIMIT_BREACH").count() == 3


def test_order_above_threshold_is_held_with_approval(approvals_on, bot, submit):
    before = last_seq()
    response = submit(bot, quantity="60", price="100", order_id="big")
    body = response.json()
    assert body["decision"] == "held"
    assert body["status"] == "pending_approval"
    assert body["reasons"][0]["code"] == "approval_required"
    assert body["approval"]["id"]
    assert body["approval"]["expires_at"]
    types = [r["event_type"] for r in records_after(before)]
    assert types[:2] == ["ORDER_SUBMITTED", "APPROVAL_REQUESTED"]
    assert exposure() == (0, 60, 0)


def test_resent_order_envelope_gets_the_same_decision(bot, order_item):
    item = order_item(bot, order_id="o-1")
    first = bot.client.post("/api/v1/orders/", item, format="json")
    before = last_seq()
    again = bot.client.post("/api/v1/orders/", item, format="json")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert last_seq() == before


def test_reused_order_id_is_409(bot, submit):
    submit(bot, order_id="o-1")
    before = last_seq()
    response = submit(bot, order_id="o-1", quantity="2")
    assert response.status_code == 409
    assert response.json()["code"] == "order_id_conflict"
    assert last_seq() == before


def test_bad_signature_on_intent_is_400_and_nothing_stored(bot, order_item):
    item = order_item(bot)
    item["payload"]["quantity"] = "999"
    before = (last_seq(), Order.objects.count())
    response = bot.client.post("/api/v1/orders/", item, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert (last_seq(), Order.objects.count()) == before


def test_amendment_is_rechecked(bot, submit, set_config):
    set_config(regulatory_limits={"max_position_per_market": "10"})
    submit(bot, quantity="5", order_id="o-1")
    amend = bot.signer.item("ORDER_AMENDED", {"order_id": "o-1", "quantity": "8"})
    body = bot.client.post("/api/v1/orders/", amend, format="json").json()
    assert body["decision"] == "accepted"
    assert exposure() == (0, 8, 0)
    assert Record.objects.get(seq=body["seq"]).event_type == "ORDER_AMENDED"
    too_big = bot.signer.item("ORDER_AMENDED", {"order_id": "o-1", "quantity": "11"})
    body = bot.client.post("/api/v1/orders/", too_big, format="json").json()
    assert body["decision"] == "rejected"
    assert body["reasons"][0]["code"] == "max_position"
    assert Order.objects.get(order_id="o-1").quantity == 8
    assert exposure() == (0, 8, 0)


def test_amending_unknown_order_is_404(bot):
    amend = bot.signer.item("ORDER_AMENDED", {"order_id": "nope", "quantity": "8"})
    assert bot.client.post("/api/v1/orders/", amend, format="json").status_code == 404


def test_order_lookup_for_bot_and_humans(bot, make_bot, submit, client_for):
    submit(bot, order_id="o-1")
    assert bot.client.get("/api/v1/orders/o-1/").json()["status"] == "open"
    other = make_bot("bot-2", owner="oscar")
    assert other.client.get("/api/v1/orders/o-1/").status_code == 404
    assert (
        client_for("carol").get("/api/v1/orders/o-1/", {"agent_id": "bot-1"}).json()["order_id"]
        == "o-1"
    )
    assert client_for("oscar").get("/api/v1/orders/o-1/", {"agent_id": "bot-1"}).status_code == 404
    assert client_for("carol").get("/api/v1/orders/o-1/").status_code == 400


def test_config_versions_are_recorded(client_for):
    alice = client_for("alice")
    current = alice.get("/api/v1/config/").json()
    assert current["version"] == 1
    assert current["config"]["regulatory_limits"]["max_concentration_pct"] == "25"
    new = {**current["config"], "approval_threshold_notional": 10000}
    response = alice.put("/api/v1/config/", new, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == 2
    assert body["config"]["approval_threshold_notional"] == "10000"
    record = Record.objects.filter(event_type="CONFIG_CHANGED").order_by("-seq").first().as_dict()
    assert record["data"]["hash"] == body["hash"]
    assert record["data"]["config"] == body["config"]
    assert record["data"]["previous_hash"] == current["hash"]


@pytest.mark.parametrize(
    "change",
    [{"approval_timeout_secs": -1}, {"bogus": 1}, {"regulatory_limits": {"max_cancel_ratio": "2"}}],
)
def test_invalid_config_is_400_and_nothing_changes(client_for, change):
    alice = client_for("alice")
    current = alice.get("/api/v1/config/").json()
    body = {**current["config"], **change}
    if "regulatory_limits" in change:
        body["regulatory_limits"] = {
            **current["config"]["regulatory_limits"],
            **change["regulatory_limits"],
        }
    before = last_seq()
    response = alice.put("/api/v1/config/", body, format="json")
    assert response.status_code == 400
    assert alice.get("/api/v1/config/").json()["version"] == 1
    assert last_seq() == before


def test_only_compliance_officers_change_config(client_for):
    rita = client_for("rita")
    current = rita.get("/api/v1/config/").json()
    assert rita.put("/api/v1/config/", current["config"], format="json").status_code == 403


def test_one_batch_of_fills_and_cancels_is_applied_in_seq_order(bot, submit):
    submit(bot, quantity="5", price="100", order_id="o-1")
    submit(bot, quantity="4", price="100", order_id="o-2", side="sell")
    items = [
        bot.signer.item(
            "ORDER_FILLED", {"order_id": "o-1", "fill_id": "a", "quantity": "2", "price": "101"}
        ),
        bot.signer.item(
            "ORDER_FILLED", {"order_id": "o-1", "fill_id": "b", "quantity": "1", "price": "102"}
        ),
        bot.signer.item(
            "ORDER_FILLED", {"order_id": "o-1", "fill_id": "b", "quantity": "1", "price": "102"}
        ),
        bot.signer.item("ORDER_CANCELED", {"order_id": "o-1", "reason": "rest"}),
        bot.signer.item(
            "ORDER_FILLED", {"order_id": "o-2", "fill_id": "c", "quantity": "4", "price": "103"}
        ),
        bot.signer.item(
            "ORDER_FILLED", {"order_id": "ghost", "fill_id": "d", "quantity": "9", "price": "1"}
        ),
    ]
    assert bot.post_events(items).status_code == 201
    one, two = Order.objects.get(order_id="o-1"), Order.objects.get(order_id="o-2")
    assert (one.status, one.filled_quantity) == ("canceled", 3)
    assert (two.status, two.filled_quantity) == ("filled", 4)
    assert exposure() == (-1, 0, 0)
    assert MarketRisk.objects.get(market="BTC-USD").last_price == 103
    assert AgentMarketRisk.objects.get(agent=bot.agent, market="BTC-USD").position == -1
