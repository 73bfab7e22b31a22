"""Alert cases as case managers work them: SLA due times, notes as records,
escalation to a person or a role, reopening, the case's history from its
records, the evidence timeline, and a disposition the officer must pick.
Every refusal asserts that nothing changed and no record was written."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client, override_settings

from audit.models import Record
from compliance_site.exceptions import Conflict, Forbidden, Invalid
from surveillance.models import Alert, AlertLogEntry
from surveillance.selectors import alert_history
from surveillance.services.alerts import (
    alert_assign,
    alert_escalate,
    alert_note_add,
    alert_reopen,
    alert_resolve,
)
from tests.surveillance.test_alerts import finding, make_alerts, state

pytestmark = pytest.mark.django_db


@pytest.fixture
def olga(people: dict[str, Any]) -> Any:
    """A second compliance officer."""
    from accounts.services import user_create

    return user_create(username="olga", role="compliance_officer", password="pw-olga")


@pytest.fixture
def alert(people: dict[str, Any]) -> Alert:
    return make_alerts(finding(1, severity="critical"))[0]


def login(people: dict[str, Any], name: str) -> Client:
    client = Client()
    client.force_login(people[name])
    return client


def case_url(alert: Alert, action: str = "") -> str:
    base = f"/admin/surveillance/alert/{alert.pk}/"
    return base + (f"case/{action}/" if action else "change/")


@override_settings(COMPLIANCE_ALERT_SLA_HOURS={"critical": 2, "high": 8})
def test_alerts_are_due_by_their_severity_sla(people: dict[str, Any]) -> None:
    critical, low = make_alerts(finding(1, severity="critical"), finding(2, severity="low"))
    assert critical.due_at == critical.created_at + timedelta(hours=2)
    assert low.due_at == low.created_at + timedelta(hours=168)  # the default for the rest


def test_a_note_is_a_record_indexed_under_its_case(alert: Alert, people: dict[str, Any]) -> None:
    before = alert.status
    alert_note_add(alert_id=alert.pk, acting_user=people["alice"], note="called the desk")
    alert.refresh_from_db()
    assert alert.status == before
    assert alert.assigned_to is None
    entry = AlertLogEntry.objects.get(alert=alert)
    record = json.loads(Record.objects.get(seq=entry.seq).body)
    assert record["event_type"] == "ALERT_UPDATED"
    assert record["data"]["action"] == "note"
    assert record["data"]["note"] == "called the desk"
    assert record["actor"] == {"type": "user", "id": "alice"}


def test_notes_are_refused_to_viewers_and_when_empty(alert: Alert, people: dict[str, Any]) -> None:
    before = state()
    with pytest.raises(Forbidden):
        alert_note_add(alert_id=alert.pk, acting_user=people["carol"], note="hello")
    with pytest.raises(Invalid):
        alert_note_add(alert_id=alert.pk, acting_user=people["alice"], note="   ")
    assert state() == before
    assert not AlertLogEntry.objects.exists()


def test_escalation_to_a_named_person_hands_them_the_case(
    alert: Alert, people: dict[str, Any], olga: Any
) -> None:
    alert_assign(alert_id=alert.pk, acting_user=people["alice"])
    alert_escalate(
        alert_id=alert.pk, acting_user=people["alice"], note="needs a senior", to_user=olga
    )
    alert.refresh_from_db()
    assert alert.status == "escalated"
    assert alert.escalated_to == olga
    assert alert.assigned_to == olga
    assert alert.escalation_reason == "needs a senior"
    data = json.loads(Record.objects.filter(event_type="ALERT_UPDATED").order_by("-seq")[0].body)
    assert data["data"]["escalated_to"] == "olga"
    assert data["data"]["note"] == "needs a senior"
    # olga now holds it and may close it; alice no longer may
    with pytest.raises(Forbidden):
        alert_resolve(
            alert_id=alert.pk, acting_user=people["alice"], disposition="no_action", note="x"
        )
    alert_resolve(alert_id=alert.pk, acting_user=olga, disposition="reported", note="STOR filed")


def test_escalation_to_a_role_and_bad_escalations(alert: Alert, people: dict[str, Any]) -> None:
    alert_assign(alert_id=alert.pk, acting_user=people["alice"])
    before = state()
    with pytest.raises(Invalid):
        alert_escalate(alert_id=alert.pk, acting_user=people["alice"], note="x", to_role="trader")
    with pytest.raises(Invalid):
        alert_escalate(
            alert_id=alert.pk, acting_user=people["alice"], note="x", to_user=people["bob"]
        )
    assert state() == before
    alert_escalate(alert_id=alert.pk, acting_user=people["alice"], note="MLRO", to_role="admin")
    alert.refresh_from_db()
    assert alert.escalated_to_role == "admin"
    assert alert.assigned_to == people["alice"]


def test_reopening_a_closed_case_needs_a_reason_and_restarts_its_sla(
    alert: Alert, people: dict[str, Any], olga: Any
) -> None:
    alert_resolve(
        alert_id=alert.pk, acting_user=people["alice"], disposition="false_positive", note="hedge"
    )
    before = state()
    with pytest.raises(Invalid):
        alert_reopen(alert_id=alert.pk, acting_user=olga, reason=" ")
    with pytest.raises(Forbidden):
        alert_reopen(alert_id=alert.pk, acting_user=people["carol"], reason="looks wrong")
    assert state() == before
    alert_reopen(alert_id=alert.pk, acting_user=olga, reason="new fills came in")
    alert.refresh_from_db()
    assert alert.status == "assigned"
    assert alert.assigned_to == olga
    assert alert.disposition == ""
    assert alert.closed_at is None
    assert alert.due_at > alert.created_at
    history = alert_history(alert=alert)
    assert [h["action"] for h in history] == ["created", "resolve", "reopen"]
    assert history[-1]["data"]["previous_disposition"] == "false_positive"
    # a case that is not closed cannot be reopened
    with pytest.raises(Conflict):
        alert_reopen(alert_id=alert.pk, acting_user=olga, reason="again")


def test_the_case_page_shows_evidence_thread_and_actions(
    people: dict[str, Any], bot: Any, submit: Any
) -> None:
    from surveillance.models import Order

    assert submit(bot, quantity="2", price="100.5", order_id="o-7").status_code == 201
    order = Order.objects.get(order_id="o-7")
    alert = make_alerts(_with_evidence(finding(1, severity="high"), [order.seq]))[0]
    alert_note_add(alert_id=alert.pk, acting_user=people["alice"], note="first look: <b>odd</b>")
    page = login(people, "alice").get(case_url(alert))
    assert page.status_code == 200
    html = page.content.decode()
    # the evidence timeline links the record and the order, values readable
    assert f"/admin/surveillance/order/{order.pk}/change/" in html
    assert ">o-7<" in html
    assert "100.5<" in html
    assert "ORDER_SUBMITTED" in html
    assert "100.500000000000" not in html
    # the note is there, escaped
    assert "first look: &lt;b&gt;odd&lt;/b&gt;" in html
    # the actions, and a disposition with no default
    assert 'id="form-note"' in html
    assert 'id="form-resolve"' in html
    assert '<option value="" selected>— choose a disposition —</option>' in html
    # a viewer reads the case without any action
    viewer = login(people, "carol").get(case_url(alert)).content.decode()
    assert "first look" in viewer
    assert 'id="form-note"' not in viewer


def _with_evidence(f: Any, evidence: list[int]) -> Any:
    from dataclasses import replace

    return replace(f, evidence=evidence)


def test_working_a_case_from_the_page(alert: Alert, people: dict[str, Any], olga: Any) -> None:
    client = login(people, "alice")
    client.post(case_url(alert, "assign"), {"to_me": "1"})
    assert Alert.objects.get(pk=alert.pk).assigned_to == people["alice"]
    client.post(case_url(alert, "note"), {"note": "pulled the venue tape"})
    # closing without picking a disposition is refused on the page
    before = state()
    page = client.post(case_url(alert, "resolve"), {"disposition": "", "note": "done"})
    assert page.status_code == 200
    assert "This field is required" in page.content.decode()
    assert state() == before
    client.post(
        case_url(alert, "escalate"), {"to_user": olga.pk, "to_role": "", "reason": "senior"}
    )
    assert Alert.objects.get(pk=alert.pk).status == "escalated"
    olga_client = Client()
    olga_client.force_login(olga)
    olga_client.post(case_url(alert, "resolve"), {"disposition": "reported", "note": "filed"})
    closed = Alert.objects.get(pk=alert.pk)
    assert closed.status == "closed"
    assert closed.disposition == "reported"
    client.post(case_url(alert, "reopen"), {"reason": "regulator asked again"})
    assert Alert.objects.get(pk=alert.pk).status == "assigned"
    history = login(people, "carol").get(f"/admin/surveillance/alert/{alert.pk}/history/")
    text = history.content.decode()
    for step in ("assign", "note", "escalate", "resolve", "reopen", "regulator asked again"):
        assert step in text


def test_a_viewer_posting_a_case_action_changes_nothing(
    alert: Alert, people: dict[str, Any]
) -> None:
    before = state()
    login(people, "carol").post(case_url(alert, "note"), {"note": "sneaky"})
    assert state() == before


# --- the same case work through the API ------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"),
    [("anonymous", 401), ("carol", 403), ("bob", 403), ("rita", 403), ("alice", 201)],
)
def test_notes_through_the_api_for_officers_only(
    alert: Alert, people: dict[str, Any], client_for: Any, api: Any, who: str, expected: int
) -> None:
    client = api if who == "anonymous" else client_for(who)
    before = state()
    response = client.post(
        f"/api/v1/alerts/{alert.pk}/notes/", {"note": "checked the tape"}, format="json"
    )
    assert response.status_code == expected
    if expected == 201:
        history = client_for("carol").get(f"/api/v1/alerts/{alert.pk}/history/").json()
        assert [(h["action"], h["note"]) for h in history] == [
            ("created", ""),
            ("note", "checked the tape"),
        ]
    else:
        assert state() == before


def test_escalate_and_reopen_through_the_api(
    alert: Alert, people: dict[str, Any], client_for: Any, olga: Any
) -> None:
    alice = client_for("alice")
    assert alice.post(f"/api/v1/alerts/{alert.pk}/assign/", {}, format="json").status_code == 200
    before = state()
    unknown = alice.post(
        f"/api/v1/alerts/{alert.pk}/escalate/", {"note": "x", "to_user": "nobody"}, format="json"
    )
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "invalid_assignee"
    bad_role = alice.post(
        f"/api/v1/alerts/{alert.pk}/escalate/", {"note": "x", "to_role": "trader"}, format="json"
    )
    assert bad_role.status_code == 400
    assert state() == before
    escalated = alice.post(
        f"/api/v1/alerts/{alert.pk}/escalate/",
        {"note": "for the MLRO", "to_user": "olga"},
        format="json",
    )
    assert escalated.status_code == 200
    assert escalated.json()["assigned_to"] == "olga"
    olga_client = Client()
    olga_client.force_login(olga)
    closed = olga_client.post(
        f"/api/v1/alerts/{alert.pk}/resolve/",
        {"disposition": "reported", "note": "STOR filed"},
        content_type="application/json",
    )
    assert closed.status_code == 200
    before = state()
    assert (
        alice.post(f"/api/v1/alerts/{alert.pk}/reopen/", {"reason": ""}, format="json").status_code
        == 400
    )
    assert state() == before
    reopened = alice.post(
        f"/api/v1/alerts/{alert.pk}/reopen/", {"reason": "new evidence"}, format="json"
    )
    assert reopened.status_code == 200
    assert reopened.json()["status"] == "assigned"
    again = alice.post(f"/api/v1/alerts/{alert.pk}/reopen/", {"reason": "again"}, format="json")
    assert again.status_code == 409
    actions = [
        h["action"] for h in client_for("carol").get(f"/api/v1/alerts/{alert.pk}/history/").json()
    ]
    assert actions == ["created", "assign", "escalate", "resolve", "reopen"]
    assert client_for("carol").get("/api/v1/alerts/999999/history/").status_code == 404
