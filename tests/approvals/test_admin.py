"""The officer's work queue in the Django admin, driven with the test client as
alice (compliance officer) and carol (viewer)."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from approvals.models import ApprovalRequest
from approvals.services import approval_grant

from .conftest import records
from .factories import ApprovalRequestFactory, open_overdue

pytestmark = pytest.mark.django_db

QUEUE = "/admin/approvals/approvalrequest/"


@pytest.fixture
def browser(people):
    def login(name: str) -> Client:
        client = Client()
        client.force_login(people[name])
        return client

    return login


@pytest.fixture
def queue(resolver, people, bot):
    """Requests with 10 min, 1 min and 10 s overdue left, and one decided."""
    late = ApprovalRequestFactory(requested_by_agent=bot.agent, timeout_secs=600, subject_id="late")
    decided = ApprovalRequestFactory(requested_by_agent=bot.agent, subject_id="decided")
    approval_grant(request_id=decided.pk, acting_user=people["adam"], reason="fine")
    soon = ApprovalRequestFactory(requested_by_agent=bot.agent, timeout_secs=60, subject_id="soon")
    overdue = open_overdue(requested_by_agent=bot.agent, subject_id="overdue")
    return {"late": late, "soon": soon, "overdue": overdue, "decided": decided}


def row_of(html: str, approval: ApprovalRequest) -> str:
    """The changelist row of one request."""
    rows = re.findall(r"<tr>.*?</tr>", html, flags=re.S)
    link = f"/admin/approvals/approvalrequest/{approval.pk}/change/"
    [row] = [r for r in rows if link in r]
    return row


def decide_in_admin(client: Client, action: str, approval: ApprovalRequest, reason: str | None):
    """Select the request, pick the action, then confirm with a reason."""
    first = client.post(QUEUE, {"action": action, "_selected_action": [approval.pk], "index": 0})
    if reason is None:
        return first, None
    second = client.post(
        QUEUE,
        {"action": action, "_selected_action": [approval.pk], "post": "yes", "reason": reason},
    )
    return first, second


@pytest.mark.parametrize("name", ["alice", "carol"])
def test_queue_shows_pending_first_by_time_left_then_decided(browser, queue, name):
    # when the officer (or the viewer) opens the queue
    response = browser(name).get(QUEUE)
    assert response.status_code == 200
    # then pending requests come first, least time left first, then decided ones
    order = [a.subject_id for a in response.context["cl"].result_list]
    assert order == ["overdue", "soon", "late", "decided"]
    html = response.content.decode()
    # and each row shows the time left and what is asked
    assert re.search(r"overdue 1\ds", row_of(html, queue["overdue"]))
    assert re.search(r"<td class=\"field-time_left\">5\ds</td>", row_of(html, queue["soon"]))
    assert re.search(r"9m 5\ds", row_of(html, queue["late"]))
    assert '<td class="field-time_left">-</td>' in row_of(html, queue["decided"])
    assert "notional <b>75001.5</b>" in row_of(html, queue["soon"])
    assert "agent bot-1 (owner bob)" in row_of(html, queue["soon"])


def test_officer_is_offered_approve_and_deny(browser, queue):
    html = browser("alice").get(QUEUE).content.decode()
    assert 'value="approve_selected"' in html
    assert 'value="deny_selected"' in html
    assert 'name="_selected_action"' in html


def test_viewer_sees_the_queue_without_any_action(browser, queue):
    html = browser("carol").get(QUEUE).content.decode()
    assert 'name="action"' not in html
    assert 'name="_selected_action"' not in html
    assert "approve_selected" not in html
    assert 'href="/admin/approvals/approvalrequest/add/"' not in html


def test_officer_approves_with_a_reason_through_a_confirmation_page(browser, queue, resolver):
    client = browser("alice")
    soon = queue["soon"]
    # when alice picks "approve" for a request
    first, _ = decide_in_admin(client, "approve_selected", soon, reason=None)
    # then she is shown what is asked, the time left, and asked for a reason
    assert first.status_code == 200
    assert first.templates[0].name == "admin/approvals/approvalrequest/decide_confirmation.html"
    page = first.content.decode()
    assert "notional <b>75001.5</b>" in page
    assert re.search(r'<td class="time-left">5\ds</td>', page)
    assert 'name="reason"' in page
    assert ">Reason:</label>" in page
    assert ApprovalRequest.objects.get(pk=soon.pk).status == "pending"
    # when she confirms with a reason
    _, second = decide_in_admin(client, "approve_selected", soon, reason="within mandate")
    # then the request is granted by her through the service, and recorded
    assert second.status_code == 302
    soon.refresh_from_db()
    assert (soon.status, soon.decided_by.username, soon.reason) == (
        "granted",
        "alice",
        "within mandate",
    )
    [record] = records("APPROVAL_GRANTED", soon.pk)
    assert record["data"]["reason"] == "within mandate"
    assert ("grant", soon.pk) in resolver.calls
    assert "1 request(s) approved." in [str(m) for m in get_messages(second.wsgi_request)]


def test_officer_denies_through_the_admin(browser, queue):
    _, response = decide_in_admin(browser("alice"), "deny_selected", queue["late"], "too big")
    assert response.status_code == 302
    assert ApprovalRequest.objects.get(pk=queue["late"].pk).status == "denied"
    assert len(records("APPROVAL_DENIED", queue["late"].pk)) == 1


def test_confirming_without_a_reason_asks_again_and_changes_nothing(browser, queue, snapshot):
    before = snapshot()
    _, response = decide_in_admin(browser("alice"), "approve_selected", queue["soon"], "   ")
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert snapshot() == before


def test_refusals_are_reported_and_change_nothing(browser, queue, snapshot):
    # given an overdue request and an already decided one
    before = snapshot()
    client = browser("alice")
    _, expired = decide_in_admin(client, "approve_selected", queue["overdue"], "late")
    _, decided = decide_in_admin(client, "deny_selected", queue["decided"], "again")
    # then each refusal is shown, and nothing changed or was recorded
    assert "has expired" in " ".join(str(m) for m in get_messages(expired.wsgi_request))
    assert "already granted" in " ".join(str(m) for m in get_messages(decided.wsgi_request))
    assert snapshot() == before


def test_four_eyes_holds_in_the_admin(browser, make_bot, resolver, snapshot):
    request = ApprovalRequestFactory(requested_by_agent=make_bot("alice-bot", owner="alice").agent)
    before = snapshot()
    _, response = decide_in_admin(browser("alice"), "approve_selected", request, "mine is fine")
    assert "another officer must decide" in " ".join(
        str(m) for m in get_messages(response.wsgi_request)
    )
    assert snapshot() == before


def test_viewer_cannot_run_an_action_by_posting_it(browser, queue, snapshot):
    before = snapshot()
    first, second = decide_in_admin(browser("carol"), "approve_selected", queue["soon"], "me")
    # the viewer has no actions, so the POSTs just show the queue again
    for response in (first, second):
        assert response.status_code == 200
        assert "admin/approvals/approvalrequest/decide_confirmation.html" not in [
            t.name for t in response.templates
        ]
    assert snapshot() == before


@pytest.mark.parametrize("which", ["decided", "soon"])
def test_a_request_page_is_read_only(browser, queue, which):
    response = browser("alice").get(f"{QUEUE}{queue[which].pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="_save"' not in html
    assert 'name="reason"' not in html
    assert browser("alice").get(f"{QUEUE}add/").status_code == 403
