"""The admin pages: generate, list and download reports; place and release holds."""

from __future__ import annotations

import hashlib

import pytest
from django.test import Client

from audit.models import Record
from reporting.models import LegalHold, Report

pytestmark = pytest.mark.django_db


def login(people, name: str) -> Client:
    client = Client()
    client.force_login(people[name])
    return client


def test_officer_generates_lists_and_downloads_a_report(
    dataset, people, django_capture_on_commit_callbacks
):
    alice = login(people, "alice")
    assert "Generate a report" in alice.get("/admin/reporting/report/").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(
            "/admin/reporting/report/generate/",
            {"kind": "daily_trade", "format": "pdf", "regulator": "bafin", "date": "2025-03-10"},
        )
    assert response.status_code == 302
    report = Report.objects.get()
    assert (report.kind, report.format, report.regulator, report.status) == (
        "daily_trade",
        "pdf",
        "bafin",
        "done",
    )
    listing = alice.get("/admin/reporting/report/").content.decode()
    assert f"/admin/reporting/report/{report.pk}/download/" in listing

    download = login(people, "carol").get(f"/admin/reporting/report/{report.pk}/download/")
    assert download.status_code == 200
    assert hashlib.sha256(b"".join(download.streaming_content)).hexdigest() == report.sha256


def test_viewer_sees_reports_but_cannot_generate(dataset, people):
    carol = login(people, "carol")
    records = Record.objects.count()

    page = carol.get("/admin/reporting/report/")
    response = carol.post(
        "/admin/reporting/report/generate/",
        {"kind": "daily_trade", "format": "json", "date": "2025-03-10"},
    )

    assert page.status_code == 200
    assert "Generate a report" not in page.content.decode()
    assert response.status_code == 302
    assert Report.objects.count() == 0
    assert Record.objects.count() == records


def test_generate_form_refuses_an_open_period(dataset, people):
    response = login(people, "alice").post(
        "/admin/reporting/report/generate/",
        {"kind": "daily_trade", "format": "json", "date": "2025-03-11"},
    )

    assert response.status_code == 200
    assert "has not ended yet" in response.content.decode()
    assert Report.objects.count() == 0


def test_admin_places_and_releases_a_hold_and_officers_cannot(dataset, people):
    adam, alice = login(people, "adam"), login(people, "alice")

    refused = alice.post("/admin/reporting/legalhold/place/", {"reason": "x"})
    assert refused.status_code == 302
    assert LegalHold.objects.count() == 0
    placed = adam.post(
        "/admin/reporting/legalhold/place/",
        {
            "reason": "inquiry",
            "agent_id": "bot-b",
            "event_types": "ORDER_SUBMITTED, ORDER_CANCELED",
        },
    )
    assert placed.status_code == 302
    hold = LegalHold.objects.get()
    assert hold.event_types == ["ORDER_CANCELED", "ORDER_SUBMITTED"]
    assert hold.agent_id == "bot-b"
    assert "Place a legal hold" not in alice.get("/admin/reporting/legalhold/").content.decode()
    assert alice.get("/admin/reporting/legalhold/manifest/").status_code == 200

    released = adam.post(f"/admin/reporting/legalhold/{hold.pk}/release/", {"reason": "closed"})
    assert released.status_code == 302
    hold.refresh_from_db()
    assert not hold.is_active
    assert hold.release_reason == "closed"
    assert Record.objects.get(seq=hold.released_seq).event_type == "LEGAL_HOLD_RELEASED"
