"""A held order is re-checked at the moment of its grant (CONTRACT 12): the
kill switch and the hard limits against the state now. A failed re-check is
409 `recheck_failed` with the reasons; nothing changes, nothing is recorded,
and the request stays pending until an officer denies it or it expires."""

from __future__ import annotations

from typing import Any

import pytest

from approvals.models import ApprovalRequest
from audit.models import Record
from surveillance.models import MarketRisk, Order
from surveillance.services.kill_switch import kill_switch_activate

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(bot, submit, approvals_on) -> dict[str, Any]:
    body = submit(bot, quantity="60", price="100", order_id="big").json()
    assert body["decision"] == "held"
    return body


def grant(client_for, held) -> Any:
    return client_for("alice").post(
        f"/api/v1/approvals/{held['approval']['id']}/approve/", {"reason": "ok"}, format="json"
    )


def assert_nothing_changed(held, records_before: int) -> None:
    approval = ApprovalRequest.objects.get(pk=held["approval"]["id"])
    assert approval.status == "pending"
    assert approval.decided_by is None
    assert Order.objects.get(order_id="big").status == "pending_approval"
    assert Record.objects.count() == records_before
    assert not Record.objects.filter(event_type="APPROVAL_GRANTED").exists()
    # the order's reservation is still there, as held
    assert MarketRisk.objects.get(market="BTC-USD").open_buy == 60


@pytest.mark.parametrize(("scope", "target"), [("agent", "bot-1"), ("market", "BTC-USD")])
def test_grant_under_a_kill_switch_is_refused(client_for, people, held, scope, target):
    kill_switch_activate(scope=scope, target=target, reason="stop", acting_user=people["rita"])
    before = Record.objects.count()
    response = grant(client_for, held)
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "recheck_failed"
    assert [r["code"] for r in body["reasons"]] == ["kill_switch"]
    assert f"{scope}:{target}" in body["reasons"][0]["limit"]
    assert_nothing_changed(held, before)


def test_grant_that_now_breaches_the_position_cap_is_refused(client_for, held, set_config):
    # the cap was lowered while the order waited
    set_config(regulatory_limits={"max_position_per_market": "50"})
    before = Record.objects.count()
    response = grant(client_for, held)
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "recheck_failed"
    [reason] = body["reasons"]
    assert (reason["code"], reason["limit"], reason["value"]) == ("max_position", "50", "60")
    assert_nothing_changed(held, before)
    # the request can still be denied
    denied = client_for("alice").post(
        f"/api/v1/approvals/{held['approval']['id']}/deny/", {"reason": "cap"}, format="json"
    )
    assert denied.status_code == 200
    assert Order.objects.get(order_id="big").status == "rejected"


def test_grant_that_still_fits_counts_the_order_once(client_for, held, set_config):
    # a cap the order fits exactly: its own reservation is not counted twice
    set_config(regulatory_limits={"max_position_per_market": "60", "max_daily_volume": "6000"})
    response = grant(client_for, held)
    assert response.status_code == 200, response.content
    assert Order.objects.get(order_id="big").status == "open"


def test_grant_after_the_kill_switch_is_lifted(client_for, people, held):
    from surveillance.services.kill_switch import kill_switch_deactivate

    kill_switch_activate(scope="agent", target="bot-1", reason="stop", acting_user=people["rita"])
    assert grant(client_for, held).status_code == 409
    kill_switch_deactivate(scope="agent", target="bot-1", reason="ok", acting_user=people["rita"])
    assert grant(client_for, held).status_code == 200
