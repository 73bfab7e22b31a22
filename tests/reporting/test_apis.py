"""CONTRACT section 10 reports API, the retention manifest and legal holds,
with a permission matrix: every refusal changes nothing and records nothing."""

from __future__ import annotations

import hashlib

import pytest

from audit.models import Record
from reporting.models import LegalHold, Report

pytestmark = pytest.mark.django_db

DAY = {"kind": "daily_trade", "date": "2025-03-10", "format": "json"}


def test_compliance_officer_asks_for_a_report_and_downloads_the_proven_file(
    dataset, client_for, django_capture_on_commit_callbacks
):
    alice = client_for("alice")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post("/api/v1/reports/", DAY, format="json")
    assert response.status_code == 202, response.content
    assert set(response.json()) >= {"id", "status"}

    detail = alice.get(f"/api/v1/reports/{response.json()['id']}/").json()
    assert detail["status"] == "done"
    assert detail["download_url"].endswith(f"/api/v1/reports/{response.json()['id']}/download/")
    download = client_for("carol").get(detail["download_url"])
    assert download.status_code == 200
    body = b"".join(download.streaming_content)
    assert hashlib.sha256(body).hexdigest() == detail["sha256"] == download["X-Report-SHA256"]
    record = Record.objects.get(seq=detail["seq"]).as_dict()
    assert record["event_type"] == "REPORT_GENERATED"
    assert record["data"]["sha256"] == detail["sha256"]


def test_asking_twice_returns_the_same_report(
    dataset, client_for, django_capture_on_commit_callbacks
):
    alice = client_for("alice")
    with django_capture_on_commit_callbacks(execute=True):
        first = alice.post("/api/v1/reports/", DAY, format="json").json()
    with django_capture_on_commit_callbacks(execute=True):
        second = alice.post("/api/v1/reports/", DAY, format="json").json()

    assert first["id"] == second["id"]
    assert second["created"] is False
    assert second["status"] == "done"
    assert Record.objects.filter(event_type="REPORT_GENERATED").count() == 1


@pytest.mark.parametrize("who", ["carol", "bob", "rita"])
def test_roles_below_compliance_officer_cannot_ask_for_reports(dataset, client_for, who):
    records = Record.objects.count()

    response = client_for(who).post("/api/v1/reports/", DAY, format="json")

    assert response.status_code == 403
    assert Report.objects.count() == 0
    assert Record.objects.count() == records


def test_bots_and_strangers_read_no_reports(dataset, client_for, api, generate):
    generate()
    bot = dataset.bots["bot-a"].client

    assert bot.get("/api/v1/reports/").status_code == 403
    assert api.get("/api/v1/reports/").status_code == 401
    listed = client_for("carol").get("/api/v1/reports/").json()
    assert [r["kind"] for r in listed] == ["daily_trade"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"kind": "daily_trade", "format": "json"}, "invalid"),
        ({"kind": "daily_trade", "format": "json", "date": "2025-03-10", "year": 2025}, "invalid"),
        ({"kind": "quarterly", "format": "json", "date": "2025-03-10"}, "invalid"),
        ({"kind": "daily_trade", "format": "xls", "date": "2025-03-10"}, "invalid"),
        (
            {"kind": "daily_trade", "format": "json", "date": "2025-03-10", "regulator": "rts25"},
            "invalid",
        ),
        ({"kind": "daily_trade", "format": "json", "date": "2025-03-11"}, "period_not_ended"),
    ],
)
def test_bad_report_requests_are_refused(dataset, client_for, body, code):
    response = client_for("alice").post("/api/v1/reports/", body, format="json")

    assert response.status_code == 400, response.content
    if code == "period_not_ended":
        assert response.json()["code"] == code
    assert Report.objects.count() == 0


def test_report_of_another_id_is_404(dataset, client_for):
    assert client_for("alice").get("/api/v1/reports/999/").status_code == 404
    assert client_for("alice").get("/api/v1/reports/999/download/").status_code == 404


def test_admin_places_and_releases_holds_through_the_api(dataset, client_for):
    adam = client_for("adam")
    placed = adam.post(
        "/api/v1/legal-holds/",
        {"reason": "SEC inquiry", "agent_id": "bot-b", "event_types": ["ORDER_CANCELED"]},
        format="json",
    )
    assert placed.status_code == 201, placed.content
    hold = placed.json()
    assert hold["active"]
    assert hold["agent_id"] == "bot-b"
    assert hold["placed_by"] == "adam"
    assert Record.objects.get(seq=hold["placed_seq"]).event_type == "LEGAL_HOLD_PLACED"
    assert [h["id"] for h in client_for("alice").get("/api/v1/legal-holds/").json()] == [hold["id"]]

    released = adam.post(
        f"/api/v1/legal-holds/{hold['id']}/release/", {"reason": "closed"}, format="json"
    )
    assert released.status_code == 200
    assert released.json()["active"] is False
    again = adam.post(
        f"/api/v1/legal-holds/{hold['id']}/release/", {"reason": "closed"}, format="json"
    )
    assert again.status_code == 409


@pytest.mark.parametrize("who", ["carol", "bob", "rita", "alice"])
def test_only_admins_place_holds(dataset, client_for, who):
    records = Record.objects.count()

    response = client_for(who).post("/api/v1/legal-holds/", {"reason": "x"}, format="json")

    assert response.status_code == 403
    assert LegalHold.objects.count() == 0
    assert Record.objects.count() == records


def test_viewers_do_not_list_holds_but_read_the_retention_manifest(dataset, client_for):
    carol = client_for("carol")

    assert carol.get("/api/v1/legal-holds/").status_code == 403
    manifest = carol.get("/api/v1/retention/manifest/")
    assert manifest.status_code == 200
    assert [p["policy"] for p in manifest.json()["policies"]] == [
        "order_records",
        "blotters",
        "communications",
        "default",
    ]
    assert manifest.json()["retention_days"] == 2555


ROLES = ["anonymous", "carol", "bob", "oscar", "rita", "alice", "adam"]
MATRIX_READS = {
    "/api/v1/reports/": [401, 200, 200, 200, 200, 200, 200],
    "/api/v1/retention/manifest/": [401, 200, 200, 200, 200, 200, 200],
    "/api/v1/legal-holds/": [401, 403, 403, 403, 403, 200, 200],
}


@pytest.mark.parametrize("path", list(MATRIX_READS))
@pytest.mark.parametrize("who", ROLES)
def test_read_matrix(people, client_for, api, path, who):
    client = api if who == "anonymous" else client_for(who)

    assert client.get(path).status_code == MATRIX_READS[path][ROLES.index(who)]


def test_openapi_schema_lists_the_reporting_endpoints(people, client_for):
    response = client_for("carol").get("/api/schema/?format=json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/reports/",
        "/api/v1/reports/{report_id}/",
        "/api/v1/reports/{report_id}/download/",
    ):
        assert path in paths
