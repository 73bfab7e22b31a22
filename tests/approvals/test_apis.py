"""GET /api/v1/approvals/, approve and deny (CONTRACT section 8): the
permission matrix, four eyes, 409s, and a refused call changes nothing."""

from __future__ import annotations

import pytest

from approvals.models import ApprovalRequest
from approvals.services import approval_deny

from .conftest import records
from .factories import ApprovalRequestFactory, open_overdue

pytestmark = pytest.mark.django_db

URL = "/api/v1/approvals/"


@pytest.fixture
def held(resolver, bot):
    """A pending request from bob's bot."""
    return ApprovalRequestFactory(requested_by_agent=bot.agent, subject_id="o-held")


# --- reading ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["carol", "bob", "oscar", "rita", "alice", "adam"])
def test_every_human_role_lists_the_requests_in_its_scope(client_for, held, make_bot, name):
    """Viewers and risk managers up read every request; a trader only those of
    the agents they own (issue 18: a trader read other desks' held orders)."""
    other = ApprovalRequestFactory(requested_by_agent=make_bot("bot-2", owner="oscar").agent)
    response = client_for(name).get(URL)
    assert response.status_code == 200
    expected = {"bob": {held.pk}, "oscar": {other.pk}}.get(name, {held.pk, other.pk})
    assert {a["id"] for a in response.json()} == expected
    for pk in {held.pk, other.pk}:
        detail = client_for(name).get(f"{URL}{pk}/")
        assert detail.status_code == (200 if pk in expected else 404)


def test_list_filters_by_status_and_shows_what_is_asked(client_for, held, people):
    decided = ApprovalRequestFactory()
    approval_deny(request_id=decided.pk, acting_user=people["alice"], reason="no")
    response = client_for("carol").get(URL, {"status": "pending"})
    assert response.status_code == 200
    [item] = response.json()
    assert item["id"] == held.pk
    assert item["status"] == "pending"
    assert item["kind"] == "test_action"
    assert item["subject_id"] == "o-held"
    assert item["agent_id"] == "bot-1"
    assert item["summary"]["notional"] == "75001.5"
    assert item["decided_by"] is None
    denied = client_for("carol").get(URL, {"status": "denied"}).json()
    assert [(a["id"], a["decided_by"], a["reason"]) for a in denied] == [
        (decided.pk, "alice", "no")
    ]


def test_list_refuses_an_unknown_status(client_for, held):
    response = client_for("carol").get(URL, {"status": "maybe"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_a_bot_lists_only_its_own_requests(bot, held, make_bot, resolver):
    other_bot = make_bot("bot-2", owner="oscar")
    other = ApprovalRequestFactory(requested_by_agent=other_bot.agent)
    assert [a["id"] for a in bot.client.get(URL).json()] == [held.pk]
    assert [a["id"] for a in other_bot.client.get(URL).json()] == [other.pk]
    # and reading another bot's request is outside its scope
    assert bot.client.get(f"{URL}{other.pk}/").status_code == 404
    assert bot.client.get(f"{URL}{held.pk}/").json()["status"] == "pending"


def test_anonymous_callers_are_refused(api, held):
    assert api.get(URL).status_code == 401
    assert api.post(f"{URL}{held.pk}/approve/", {"reason": "x"}, format="json").status_code == 401


def test_detail_of_an_unknown_request_is_not_found(client_for, held):
    response = client_for("carol").get(f"{URL}999999/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- deciding -----------------------------------------------------------------------


@pytest.mark.parametrize("action", ["approve", "deny"])
def test_compliance_officer_decides_with_a_reason(client_for, held, resolver, action):
    response = client_for("alice").post(
        f"{URL}{held.pk}/{action}/", {"reason": "checked the book"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    status = "granted" if action == "approve" else "denied"
    assert (body["status"], body["decided_by"], body["reason"]) == (
        status,
        "alice",
        "checked the book",
    )
    assert ApprovalRequest.objects.get(pk=held.pk).status == status
    [record] = records(f"APPROVAL_{status.upper()}", held.pk)
    assert record["data"]["reason"] == "checked the book"
    assert resolver.calls == [(action.replace("approve", "grant"), held.pk)]


@pytest.mark.parametrize("action", ["approve", "deny"])
@pytest.mark.parametrize("name", ["carol", "bob", "oscar", "rita"])
def test_roles_below_compliance_officer_cannot_decide(client_for, held, snapshot, action, name):
    before = snapshot()
    response = client_for(name).post(f"{URL}{held.pk}/{action}/", {"reason": "x"}, format="json")
    assert response.status_code == 403
    assert snapshot() == before


def test_a_bot_cannot_decide_its_own_request(bot, held, snapshot):
    before = snapshot()
    response = bot.client.post(f"{URL}{held.pk}/approve/", {"reason": "me"}, format="json")
    assert response.status_code == 403
    assert snapshot() == before


def test_four_eyes_refuses_the_requester(client_for, people, resolver, snapshot):
    request = ApprovalRequestFactory(requested_by_user=people["alice"])
    before = snapshot()
    response = client_for("alice").post(
        f"{URL}{request.pk}/approve/", {"reason": "mine"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "four_eyes_requester"
    assert snapshot() == before


def test_four_eyes_refuses_the_agents_owner(client_for, make_bot, resolver, snapshot):
    request = ApprovalRequestFactory(requested_by_agent=make_bot("alice-bot", owner="alice").agent)
    before = snapshot()
    response = client_for("alice").post(f"{URL}{request.pk}/deny/", {"reason": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "four_eyes_owner"
    assert snapshot() == before


def test_deciding_a_decided_request_is_a_conflict(client_for, held, snapshot):
    assert (
        client_for("alice")
        .post(f"{URL}{held.pk}/approve/", {"reason": "ok"}, format="json")
        .status_code
        == 200
    )
    before = snapshot()
    response = client_for("adam").post(f"{URL}{held.pk}/deny/", {"reason": "no"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "already_decided"
    assert snapshot() == before


def test_deciding_an_expired_request_is_a_conflict(client_for, resolver, bot, snapshot):
    request = open_overdue(requested_by_agent=bot.agent)
    before = snapshot()
    response = client_for("alice").post(
        f"{URL}{request.pk}/approve/", {"reason": "late"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "expired"
    assert snapshot() == before


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": None}])
def test_a_decision_needs_a_reason(client_for, held, snapshot, body):
    before = snapshot()
    response = client_for("alice").post(f"{URL}{held.pk}/approve/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert snapshot() == before


def test_deciding_an_unknown_request_is_not_found(client_for, resolver, snapshot):
    before = snapshot()
    response = client_for("alice").post(f"{URL}424242/approve/", {"reason": "x"}, format="json")
    assert response.status_code == 404
    assert snapshot() == before
