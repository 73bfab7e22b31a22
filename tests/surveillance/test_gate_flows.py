"""Held orders end to end, and the gate under concurrency on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.services import approval_expire_due
from audit.models import Record
from surveillance.models import MarketRisk, Order
from surveillance.services.gate import order_submit

pytestmark = pytest.mark.django_db


def types_since(seq: int) -> list[str]:
    return list(
        Record.objects.filter(seq__gt=seq).order_by("seq").values_list("event_type", flat=True)
    )


def test_held_order_opens_when_a_second_person_approves(approvals_on, bot, submit, client_for):
    body = submit(bot, quantity="60", price="100", order_id="big").json()
    assert body["decision"] == "held"
    start = body["seq"] - 1
    # the owner of the bot may not approve it (four eyes)
    denied = client_for("bob").post(
        f"/api/v1/approvals/{body['approval']['id']}/approve/", {"reason": "ok"}, format="json"
    )
    assert denied.status_code == 403
    approved = client_for("alice").post(
        f"/api/v1/approvals/{body['approval']['id']}/approve/",
        {"reason": "client order, checked"},
        format="json",
    )
    assert approved.status_code == 200, approved.content
    order = Order.objects.get(order_id="big")
    assert order.status == "open"
    assert bot.client.get("/api/v1/orders/big/").json()["status"] == "open"
    assert types_since(start) == ["ORDER_SUBMITTED", "APPROVAL_REQUESTED", "APPROVAL_GRANTED"]
    assert MarketRisk.objects.get(market="BTC-USD").open_buy == 60


def test_held_order_expires_when_nobody_decides(approvals_on, bot, submit):
    body = submit(bot, quantity="60", price="100", order_id="big").json()
    start = body["seq"] - 1
    expired = approval_expire_due(now=timezone.now() + timedelta(seconds=301))
    assert expired == 1
    order = Order.objects.get(order_id="big")
    assert order.status == "expired"
    assert types_since(start) == [
        "ORDER_SUBMITTED",
        "APPROVAL_REQUESTED",
        "APPROVAL_EXPIRED",
        "ORDER_REJECTED",
    ]
    last = Record.objects.order_by("-seq").first().as_dict()
    assert last["data"]["status"] == "expired"
    assert last["data"]["reasons"][0]["code"] == "approval_expired"
    assert MarketRisk.objects.get(market="BTC-USD").open_buy == 0
    assert ApprovalRequest.objects.get(pk=body["approval"]["id"]).status == "expired"


def test_denied_held_order_is_rejected_and_releases_exposure(approvals_on, bot, submit, client_for):
    body = submit(bot, quantity="60", price="100", order_id="big").json()
    response = client_for("alice").post(
        f"/api/v1/approvals/{body['approval']['id']}/deny/",
        {"reason": "too large today"},
        format="json",
    )
    assert response.status_code == 200
    assert Order.objects.get(order_id="big").status == "rejected"
    assert MarketRisk.objects.get(market="BTC-USD").open_buy == 0
    assert types_since(body["seq"])[-2:] == ["APPROVAL_DENIED", "ORDER_REJECTED"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_orders_never_breach_the_position_cap_together(
    make_bot, set_config, order_item
):
    set_config(regulatory_limits={"max_position_per_market": "10"})
    bots = [make_bot("bot-a", owner="bob"), make_bot("bot-b", owner="bob")]
    outcomes: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    for pair in range(50):
        market = f"M-{pair}"
        items = [
            order_item(b, market=market, quantity=q, price="10")
            for b, q in zip(bots, ["6", "7"], strict=True)
        ]
        barrier = threading.Barrier(2)

        def send(handle, item, market=market, barrier=barrier) -> None:
            try:
                barrier.wait()
                result = order_submit(agent=handle.agent, item=item)
                outcomes.append((market, result.decision))
            except BaseException as exc:
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [
            threading.Thread(target=send, args=(b, i)) for b, i in zip(bots, items, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    for pair in range(50):
        decisions = sorted(d for m, d in outcomes if m == f"M-{pair}")
        assert decisions == ["accepted", "rejected"], (pair, decisions)
        row = MarketRisk.objects.get(market=f"M-{pair}")
        assert row.position + row.open_buy <= 10


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("quantity", "decision"), [("1", "accepted"), ("999999", "rejected")])
def test_a_gate_decision_is_two_round_trips_under_its_locks(
    bot, submit, monkeypatch, quantity, decision
):
    """Lock and read (firm row, log head, snapshot) in one round trip; the
    records, the order, its counters and exposure in a second, with the COMMIT
    (the decision's block is the outermost one, as in a request: its BEGIN
    travels in the first). Nothing else reaches the database from the
    decision's BEGIN to its COMMIT."""
    from django.db.backends.utils import CursorWrapper

    from compliance_site import db
    from surveillance import store
    from surveillance.services import gate

    submit(bot)  # the first decision learns the config's windows
    trips: list[str] = []
    exchange, execute = db.pipeline_exchange, CursorWrapper.execute
    decide = gate.decide_submission

    def counted_exchange(raw, commands):
        trips.append("pipeline")
        return exchange(raw, commands)

    def counted_execute(self, sql, params=None):
        trips.append(f"cursor: {sql[:40]}")
        return execute(self, sql, params)

    def decide_counted(*args, **kwargs):
        monkeypatch.setattr(db, "pipeline_exchange", counted_exchange)
        monkeypatch.setattr(CursorWrapper, "execute", counted_execute)
        try:
            return decide(*args, **kwargs)
        finally:
            monkeypatch.setattr(db, "pipeline_exchange", exchange)
            monkeypatch.setattr(CursorWrapper, "execute", execute)

    monkeypatch.setattr(gate, "decide_submission", decide_counted)
    reads = store.gate_lock_and_read
    calls: list[str] = []
    monkeypatch.setattr(
        store, "gate_lock_and_read", lambda *a: (calls.append("read"), reads(*a))[1]
    )
    body = submit(bot, quantity=quantity).json()
    assert body["decision"] == decision
    assert calls == ["read"]
    assert trips == ["pipeline", "pipeline"]
