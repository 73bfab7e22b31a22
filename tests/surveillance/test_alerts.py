"""The alert case workflow (services, API, admin queue) and the run-now endpoint.
Every refusal also asserts that nothing changed and no record was written."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from accounts.services import user_create
from audit.models import Record
from compliance_site.exceptions import Conflict, Forbidden, Invalid
from surveillance.detectors import Finding
from surveillance.models import Alert
from surveillance.services.alerts import (
    alert_assign,
    alert_escalate,
    alert_resolve,
    alerts_create,
)

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "carol", "bob", "oscar", "rita", "alice", "adam"]
QUEUE = "/admin/surveillance/alert/"


def finding(
    n: int, detector: str = "spoofing", severity: str = "high", agent_id: str = "bot-1"
) -> Finding:
    return Finding(
        detector=detector,
        severity=severity,
        fingerprint=f"{detector}:test:{n}",
        agent_id=agent_id,
        market="BTC-USD",
        evidence=[n, n + 1],
        detail=f"case {n}",
        seq=n + 1,
        ts=1_000_000 * n,
        facts={"n": str(n)},
    )


def make_alerts(*findings: Finding) -> list[Alert]:
    with transaction.atomic():
        return alerts_create(findings=list(findings), config_hash="c" * 64)


@pytest.fixture
def alert(people: dict[str, Any]) -> Alert:
    return make_alerts(finding(1))[0]


@pytest.fixture
def olga(people: dict[str, Any]) -> Any:
    """A second compliance officer."""
    return user_create(username="olga", role="compliance_officer", password="pw-olga")


def state() -> tuple[Any, ...]:
    return (
        list(
            Alert.objects.order_by("pk").values(
                "status",
                "assigned_to",
                "disposition",
                "note",
                "closed_at",
                "escalated_at",
                "updated_at",
            )
        ),
        Record.objects.count(),
    )


def updates(alert_id: int) -> list[dict[str, Any]]:
    out = []
    for record in Record.objects.filter(event_type="ALERT_UPDATED").order_by("seq"):
        body = json.loads(record.body)
        if body["data"]["alert_id"] == alert_id:
            out.append(body)
    return out


# --- creation ----------------------------------------------------------------------


def test_alert_is_created_once_per_fingerprint_with_its_record(people: dict[str, Any]) -> None:
    [first] = make_alerts(finding(1), finding(1))
    assert make_alerts(finding(1)) == []
    assert Alert.objects.count() == 1
    record = json.loads(Record.objects.get(seq=first.seq).body)
    assert record["event_type"] == "SURVEILLANCE_ALERT"
    assert record["actor"] == {"type": "system", "id": "surveillance"}
    assert record["data"]["alert_id"] == first.pk
    assert record["data"]["evidence"] == [1, 2]
    assert record["data"]["fingerprint"] == "spoofing:test:1"
    assert first.status == "open"
    assert first.severity_rank == 3


# --- the API -------------------------------------------------------------------------


@pytest.fixture
def call(client_for: Any, api: Any) -> Any:
    def make(who: str) -> Any:
        return api if who == "anonymous" else client_for(who)

    return make


@pytest.mark.parametrize("who", ROLES)
def test_alert_list_is_for_viewers_and_up(call: Any, who: str, alert: Alert, bot: Any) -> None:
    """bot-1 is bob's: oscar, a trader of another desk, sees none of its alerts."""
    response = call(who).get("/api/v1/alerts/?status=open&detector=spoofing")
    if who == "anonymous":
        assert response.status_code == 401
        return
    assert response.status_code == 200
    if who == "oscar":
        assert response.json() == []
        assert call(who).get(f"/api/v1/alerts/{alert.pk}/").status_code == 404
        return
    [row] = response.json()
    assert set(row) == {
        "id",
        "detector",
        "severity",
        "agent_id",
        "market",
        "status",
        "created_at",
        "evidence",
        "detail",
    }
    assert row["id"] == alert.pk
    assert row["evidence"] == [1, 2]
    assert row["detail"] == "case 1"


def test_alert_list_filters_and_orders_by_severity_then_age(
    client_for: Any, people: dict[str, Any]
) -> None:
    low, critical, high = make_alerts(
        finding(1, "rapid_fire", "medium"),
        finding(2, "wash_trading", "critical"),
        finding(3, "layering", "high"),
    )
    client = client_for("carol")
    assert [a["id"] for a in client.get("/api/v1/alerts/").json()] == [critical.pk, high.pk, low.pk]
    assert [a["id"] for a in client.get("/api/v1/alerts/?detector=layering").json()] == [high.pk]
    alert_resolve(
        alert_id=critical.pk, acting_user=people["alice"], disposition="reported", note="STOR filed"
    )
    assert [a["id"] for a in client.get("/api/v1/alerts/?status=open").json()] == [high.pk, low.pk]
    assert [a["id"] for a in client.get("/api/v1/alerts/?status=closed").json()] == [critical.pk]
    assert client.get("/api/v1/alerts/?detector=nonsense").status_code == 400


def test_a_bot_reads_no_alerts(bot: Any, alert: Alert) -> None:
    assert bot.client.get("/api/v1/alerts/").status_code == 403


@pytest.mark.parametrize("who", ROLES)
def test_resolve_via_api_only_for_compliance_officers(call: Any, who: str, alert: Alert) -> None:
    before = state()
    response = call(who).post(
        f"/api/v1/alerts/{alert.pk}/resolve/",
        {"disposition": "false_positive", "note": "benign"},
        format="json",
    )
    if who in ("alice", "adam"):
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["status"] == "closed"
        assert body["disposition"] == "false_positive"
        assert body["closed_by"] == who
        assert body["assigned_to"] == who
        [update] = updates(alert.pk)
        assert update["actor"] == {"type": "user", "id": who}
        assert update["data"]["action"] == "resolve"
        assert update["data"]["note"] == "benign"
        assert update["data"]["from_status"] == "open"
        assert update["data"]["status"] == "closed"
    else:
        assert response.status_code == (401 if who == "anonymous" else 403)
        assert state() == before


def test_full_case_through_the_api(client_for: Any, alert: Alert, people: dict[str, Any]) -> None:
    alice = client_for("alice")
    base = f"/api/v1/alerts/{alert.pk}"
    assert alice.post(f"{base}/assign/", {}, format="json").json()["status"] == "assigned"
    escalated = alice.post(f"{base}/escalate/", {"note": "pattern repeats"}, format="json").json()
    assert escalated["status"] == "escalated"
    assert escalated["escalated_by"] == "alice"
    closed = alice.post(
        f"{base}/resolve/", {"disposition": "reported", "note": "STOR filed"}, format="json"
    )
    assert closed.status_code == 200
    assert closed.json()["disposition"] == "reported"
    assert [u["data"]["action"] for u in updates(alert.pk)] == ["assign", "escalate", "resolve"]
    assert [u["data"]["status"] for u in updates(alert.pk)] == ["assigned", "escalated", "closed"]
    detail = client_for("carol").get(f"{base}/").json()
    assert detail["status"] == "closed"
    assert detail["note"] == "STOR filed"
    assert detail["seq"] == alert.seq


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"disposition": "ignored", "note": "x"}, 400),
        ({"disposition": "no_action"}, 400),
        ({"disposition": "no_action", "note": ""}, 400),
        ({"note": "x"}, 400),
    ],
)
def test_resolve_refuses_bad_input_and_changes_nothing(
    client_for: Any, alert: Alert, body: Any, code: int
) -> None:
    before = state()
    assert (
        client_for("alice")
        .post(f"/api/v1/alerts/{alert.pk}/resolve/", body, format="json")
        .status_code
        == code
    )
    assert state() == before


def test_unknown_alert_is_404_and_closed_alert_is_409(
    client_for: Any, alert: Alert, people: dict[str, Any]
) -> None:
    alice = client_for("alice")
    before = state()
    assert (
        alice.post(
            "/api/v1/alerts/999999/resolve/",
            {"disposition": "no_action", "note": "x"},
            format="json",
        ).status_code
        == 404
    )
    assert state() == before
    alert_resolve(
        alert_id=alert.pk, acting_user=people["alice"], disposition="no_action", note="seen"
    )
    before = state()
    again = alice.post(
        f"/api/v1/alerts/{alert.pk}/resolve/",
        {"disposition": "reported", "note": "x"},
        format="json",
    )
    assert again.status_code == 409
    assert again.json()["code"] == "already_closed"
    assert alice.post(f"/api/v1/alerts/{alert.pk}/assign/", {}, format="json").status_code == 409
    assert state() == before


def test_assign_to_someone_named(client_for: Any, alert: Alert, olga: Any) -> None:
    alice = client_for("alice")
    response = alice.post(f"/api/v1/alerts/{alert.pk}/assign/", {"assignee": "olga"}, format="json")
    assert response.status_code == 200
    assert response.json()["assigned_to"] == "olga"
    [update] = updates(alert.pk)
    assert update["actor"]["id"] == "alice"
    assert update["data"]["assigned_to"] == "olga"
    before = state()
    refused = alice.post(f"/api/v1/alerts/{alert.pk}/assign/", {"assignee": "carol"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_assignee"
    assert (
        alice.post(
            f"/api/v1/alerts/{alert.pk}/assign/", {"assignee": "nobody"}, format="json"
        ).status_code
        == 400
    )
    assert state() == before


# --- the rules, at the service --------------------------------------------------------


def test_only_the_assignee_escalates_or_closes(
    alert: Alert, people: dict[str, Any], olga: Any
) -> None:
    alice, adam = people["alice"], people["adam"]
    alert_assign(alert_id=alert.pk, acting_user=alice)
    before = state()
    with pytest.raises(Forbidden) as refused:
        alert_resolve(alert_id=alert.pk, acting_user=olga, disposition="no_action", note="mine now")
    assert refused.value.code == "not_assignee"
    with pytest.raises(Forbidden):
        alert_escalate(alert_id=alert.pk, acting_user=olga, note="up")
    assert state() == before
    # reassigning is allowed (and recorded), after which olga may act
    alert_assign(alert_id=alert.pk, acting_user=olga)
    alert_escalate(alert_id=alert.pk, acting_user=olga, note="needs legal")
    # an admin may close anyone's case
    closed = alert_resolve(
        alert_id=alert.pk, acting_user=adam, disposition="escalated", note="to legal"
    )
    assert closed.status == "closed"
    assert closed.assigned_to == olga
    assert closed.closed_by == adam


def test_workflow_refusals_change_nothing(alert: Alert, people: dict[str, Any]) -> None:
    alice, rita = people["alice"], people["rita"]
    cases = [
        (
            Conflict,
            "not_assigned",
            lambda: alert_escalate(alert_id=alert.pk, acting_user=alice, note="x"),
        ),
        (
            Forbidden,
            "permission_denied",
            lambda: alert_assign(alert_id=alert.pk, acting_user=rita),
        ),
        (
            Invalid,
            "invalid_assignee",
            lambda: alert_assign(alert_id=alert.pk, acting_user=alice, assignee=rita),
        ),
        (
            Invalid,
            "note_required",
            lambda: alert_resolve(
                alert_id=alert.pk, acting_user=alice, disposition="no_action", note="  "
            ),
        ),
    ]
    for exc, code, action in cases:
        before = state()
        with pytest.raises(exc) as refused:
            action()
        assert refused.value.code == code
        assert state() == before
    alert_assign(alert_id=alert.pk, acting_user=alice)
    before = state()
    with pytest.raises(Conflict) as refused:
        alert_assign(alert_id=alert.pk, acting_user=alice)
    assert refused.value.code == "already_assigned"
    alert_escalate(alert_id=alert.pk, acting_user=alice, note="x")
    with pytest.raises(Conflict):
        alert_escalate(alert_id=alert.pk, acting_user=alice, note="again")
    assert Alert.objects.get(pk=alert.pk).status == "escalated"


# --- run now -------------------------------------------------------------------------


@pytest.mark.parametrize("who", ROLES)
def test_run_surveillance_now(call: Any, who: str) -> None:
    response = call(who).post("/api/v1/surveillance/run/")
    if who in ("alice", "adam"):
        assert response.status_code == 200
        body = response.json()
        assert body["processed"] > 0
        assert body["alerts"] == []
        assert body["cursor"] >= 0
    else:
        assert response.status_code == (401 if who == "anonymous" else 403)


# --- the admin queue --------------------------------------------------------------------


@pytest.fixture
def browser(people: dict[str, Any]) -> Any:
    def login(name: str) -> Client:
        client = Client()
        client.force_login(people[name])
        return client

    return login


def test_queue_lists_active_alerts_by_severity_then_age(
    browser: Any, people: dict[str, Any]
) -> None:
    medium, critical, closed = make_alerts(
        finding(1, "rapid_fire", "medium"),
        finding(2, "wash_trading", "critical"),
        finding(3, "layering", "high"),
    )
    alert_resolve(
        alert_id=closed.pk, acting_user=people["alice"], disposition="no_action", note="ok"
    )
    html = browser("alice").get(QUEUE).content.decode()
    links = re.findall(r"/admin/surveillance/alert/(\d+)/change/", html)
    assert [int(x) for x in dict.fromkeys(links)] == [critical.pk, medium.pk, closed.pk]
    assert "Assign to me" in html
    assert "Resolve selected alerts" in html


def test_viewer_sees_the_queue_without_actions(browser: Any, alert: Alert) -> None:
    client = browser("carol")
    page = client.get(QUEUE)
    assert page.status_code == 200
    html = page.content.decode()
    assert f"/admin/surveillance/alert/{alert.pk}/change/" in html
    assert "Assign to me" not in html
    assert "resolve_selected" not in html
    before = state()
    client.post(QUEUE, {"action": "assign_to_me", "_selected_action": [alert.pk], "index": 0})
    assert state() == before
    assert client.get(f"/admin/surveillance/alert/{alert.pk}/change/").status_code == 200


def test_assign_to_me_then_resolve_with_disposition_and_note_in_the_admin(
    browser: Any, alert: Alert
) -> None:
    client = browser("alice")
    client.post(QUEUE, {"action": "assign_to_me", "_selected_action": [alert.pk], "index": 0})
    assert Alert.objects.get(pk=alert.pk).status == "assigned"

    # the first POST shows the intermediate page and changes nothing
    before = state()
    page = client.post(
        QUEUE, {"action": "resolve_selected", "_selected_action": [alert.pk], "index": 0}
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "case 1" in html
    assert 'name="disposition"' in html
    assert 'name="note"' in html
    assert state() == before
    # an empty note is refused on the page
    client.post(
        QUEUE,
        {
            "action": "resolve_selected",
            "_selected_action": [alert.pk],
            "post": "yes",
            "disposition": "no_action",
            "note": "",
        },
    )
    assert state() == before
    # the second POST resolves through the service
    client.post(
        QUEUE,
        {
            "action": "resolve_selected",
            "_selected_action": [alert.pk],
            "post": "yes",
            "disposition": "false_positive",
            "note": "market maker hedging",
        },
    )
    closed = Alert.objects.get(pk=alert.pk)
    assert closed.status == "closed"
    assert closed.disposition == "false_positive"
    assert [u["data"]["action"] for u in updates(alert.pk)] == ["assign", "resolve"]


def test_admin_reports_a_refusal_and_changes_nothing(browser: Any, alert: Alert, olga: Any) -> None:
    alert_assign(alert_id=alert.pk, acting_user=olga)
    client = browser("alice")
    before = state()
    response = client.post(
        QUEUE,
        {
            "action": "escalate_selected",
            "_selected_action": [alert.pk],
            "post": "yes",
            "note": "up",
        },
        follow=True,
    )
    assert "assigned to olga" in response.content.decode()
    assert state() == before


def test_alerts_and_case_actions_queue_webhook_notices(
    people: dict[str, Any], settings: Any
) -> None:
    from audit.models import WebhookMessage
    from audit.webhooks.services import webhook_endpoint_create

    settings.COMPLIANCE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    webhook_endpoint_create(
        url="http://127.0.0.1:9/hook",
        event_types=["SURVEILLANCE_ALERT", "ALERT_UPDATED"],
        acting_user=people["alice"],
    )
    [alert] = make_alerts(finding(1, "wash_trading", "critical"))
    alert_resolve(
        alert_id=alert.pk, acting_user=people["alice"], disposition="reported", note="filed"
    )
    created, updated = WebhookMessage.objects.order_by("pk")
    body = json.loads(created.body)
    assert body["type"] == "SURVEILLANCE_ALERT"
    assert created.seq == alert.seq
    assert body["data"]["alert_id"] == alert.pk
    assert body["data"]["severity"] == "critical"
    assert json.loads(updated.body)["data"]["disposition"] == "reported"
    assert updated.deliveries.get().status == "pending"
