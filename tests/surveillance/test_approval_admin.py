"""Approvals with context in the admin, for held orders: the request page shows
the order, bot, owner, position and limits and the re-check now; the
confirmation page warns before a grant that the re-check would refuse; the
queue shows market, agent, side, quantity, notional and time left, and is
searchable by agent, market and order id."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from approvals.models import ApprovalRequest
from audit.models import Record
from surveillance.models import Order
from surveillance.services.kill_switch import kill_switch_activate

pytestmark = pytest.mark.django_db

QUEUE = "/admin/approvals/approvalrequest/"


@pytest.fixture
def officer(people) -> Client:
    client = Client()
    client.force_login(people["alice"])
    return client


@pytest.fixture
def held(bot, submit, approvals_on) -> ApprovalRequest:
    body = submit(bot, quantity="60", price="100", order_id="big-1").json()
    assert body["decision"] == "held"
    return ApprovalRequest.objects.get(pk=body["approval"]["id"])


def test_request_page_shows_the_order_in_context(officer, held, set_config):
    set_config(regulatory_limits={"max_position_per_market": "500"})
    html = officer.get(f"{QUEUE}{held.pk}/change/").content.decode()
    assert 'id="approval-context"' in html
    for text in (
        "big-1: buy 60 BTC-USD @ 100 (limit)",
        "bot-1 (Bot bot-1)",
        '<th scope="row">Owner</th><td>bob</td>',
        "Bot position in BTC-USD",
        "0 (open buy 60, open sell 0)",
        '<th scope="row">Firm max position in BTC-USD</th><td>500</td>',
        "the kill switch and the hard limits pass",
    ):
        assert text in html, text
    assert "recheck-failed" not in html
    # Approve and Deny lead to the confirmation page (which asks for the reason)
    assert 'value="approve_selected"' in html
    assert 'value="deny_selected"' in html
    assert 'name="reason"' not in html


def test_request_page_warns_when_the_recheck_fails(officer, held, people):
    kill_switch_activate(scope="agent", target="bot-1", reason="stop", acting_user=people["rita"])
    html = officer.get(f"{QUEUE}{held.pk}/change/").content.decode()
    assert "Warning: the re-check fails now" in html
    assert "<code>kill_switch</code>" in html


def test_confirmation_page_warns_before_a_grant_the_recheck_refuses(officer, held, people):
    kill_switch_activate(
        scope="market", target="BTC-USD", reason="halt", acting_user=people["rita"]
    )
    # when the officer picks "approve" for the held order
    first = officer.post(
        QUEUE, {"action": "approve_selected", "_selected_action": [held.pk], "index": 0}
    )
    # then, before she confirms, the page warns that the re-check fails and why
    assert first.templates[0].name == "admin/approvals/approvalrequest/decide_confirmation.html"
    page = first.content.decode()
    assert "Warning: the re-check fails now" in page
    assert "kill switch active (market:BTC-USD)" in page
    assert 'name="reason"' in page
    before = Record.objects.count()
    # when she confirms anyway, the grant is refused and nothing changes
    second = officer.post(
        QUEUE,
        {
            "action": "approve_selected",
            "_selected_action": [held.pk],
            "post": "yes",
            "reason": "go",
        },
    )
    assert second.status_code == 302
    shown = " ".join(str(m) for m in get_messages(second.wsgi_request))
    assert "re-check at the grant failed" in shown
    assert "kill switch" in shown
    held.refresh_from_db()
    assert held.status == "pending"
    assert Order.objects.get(order_id="big-1").status == "pending_approval"
    assert Record.objects.count() == before


def test_confirmation_page_has_no_warning_when_the_recheck_passes(officer, held):
    page = officer.post(
        QUEUE, {"action": "approve_selected", "_selected_action": [held.pk], "index": 0}
    ).content.decode()
    assert "Warning: the re-check fails now" not in page


def test_queue_columns_and_search(officer, bot, make_bot, submit, held):
    other = make_bot("bot-2", owner="oscar")
    body = submit(other, market="ETH-USD", side="sell", quantity="70", price="100", order_id="e-9")
    assert body.json()["decision"] == "held"
    html = officer.get(QUEUE).content.decode()
    row = next(
        r for r in re.findall(r"<tr>.*?</tr>", html, flags=re.S) if f"{QUEUE}{held.pk}/change/" in r
    )
    for column, value in (
        ("market", "BTC-USD"),
        ("agent", "bot-1"),
        ("side", "buy"),
        ("quantity", "60"),
        ("notional", "6000"),
    ):
        assert f'<td class="field-{column}">{value}</td>' in row, column
    assert re.search(r'<td class="field-time_left">4m 5\ds</td>', row)

    def found(query: str) -> list[str]:
        response = officer.get(QUEUE, {"q": query})
        return sorted(a.summary["order_id"] for a in response.context["cl"].result_list)

    assert found("ETH-USD") == ["e-9"]
    assert found("bot-1") == ["big-1"]
    assert found("big-1") == ["big-1"]
    assert found("USD") == ["big-1", "e-9"]
