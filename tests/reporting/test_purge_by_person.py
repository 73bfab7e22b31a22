"""A purge a person starts is an admin's act with a reason (API and admin page,
each with what would go shown first), recorded in DATA_PURGED; the scheduled
purge is unchanged. Every refusal purges nothing and records nothing."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from django.test import Client
from rest_framework.test import APIClient

from audit.models import Record

from .test_retention import NOW, aged, holds, purged_seqs  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

NOT_ADMINS = ["carol", "bob", "oscar", "rita", "alice"]


def state() -> tuple[int, set[int]]:
    return Record.objects.count(), purged_seqs()


def data_purged() -> list[dict[str, Any]]:
    return [r.as_dict() for r in Record.objects.filter(event_type="DATA_PURGED").order_by("seq")]


def test_admin_sees_what_would_go_then_purges_it_with_a_reason(aged, holds, client_for):  # noqa: F811
    with time_machine.travel(NOW, tick=False):
        client = client_for("adam")  # a token issued now, not years before
        response = client.get("/api/v1/retention/purge/")
        assert response.status_code == 200, response.content
        preview = response.json()
        assert preview["count"] == len(aged.purge)
        assert (preview["from_seq"], preview["to_seq"]) == (min(aged.purge), max(aged.purge))
        assert sum(preview["by_event_type"].values()) == len(aged.purge)
        assert preview["active_holds"] == [h.pk for h in holds]
        assert purged_seqs() == set()  # looking purges nothing
        response = client.post(
            "/api/v1/retention/purge/", {"reason": "annual clean-up, ticket 42"}, format="json"
        )
    assert response.status_code == 200
    assert response.json()["count"] == len(aged.purge)
    assert purged_seqs() == aged.purge
    [record] = data_purged()
    assert record["actor"] == {"type": "user", "id": "adam"}
    assert record["data"]["requested_reason"] == "annual clean-up, ticket 42"
    assert record["data"]["count"] == len(aged.purge)


@pytest.mark.parametrize("name", [*NOT_ADMINS, None])
@pytest.mark.parametrize("method", ["get", "post"])
def test_only_admins_purge_or_preview(aged, holds, client_for, name, method):  # noqa: F811
    before = state()
    with time_machine.travel(NOW, tick=False):
        client = client_for(name) if name else APIClient()
        response = getattr(client, method)(
            "/api/v1/retention/purge/", {"reason": "x"}, format="json"
        )
    assert response.status_code == (403 if name else 401)
    assert state() == before


@pytest.mark.parametrize("body", [{}, {"reason": "   "}, {"reason": 5 * "x" * 1000}])
def test_a_purge_needs_a_reason(aged, holds, client_for, body):  # noqa: F811
    before = state()
    with time_machine.travel(NOW, tick=False):
        response = client_for("adam").post("/api/v1/retention/purge/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert state() == before


def test_a_second_purge_clears_nothing_more_and_records_nothing(aged, holds, client_for):  # noqa: F811
    with time_machine.travel(NOW, tick=False):
        client = client_for("adam")
        client.post("/api/v1/retention/purge/", {"reason": "first"}, format="json")
        before = state()
        again = client.post("/api/v1/retention/purge/", {"reason": "second"}, format="json")
    assert again.json()["count"] == 0
    assert state() == before


# The admin page


def login(people: dict[str, Any], name: str) -> Client:
    client = Client()
    client.force_login(people[name])
    return client


PAGE = "/admin/reporting/legalhold/purge/"


def test_admin_page_confirms_what_would_go_then_purges(aged, holds, people):  # noqa: F811
    with time_machine.travel(NOW, tick=False):
        client = login(people, "adam")  # a session opened now
        page = client.get(PAGE).content.decode()
        assert f"{len(aged.purge)} records" in page
        assert f"between seq\n  {min(aged.purge)} and {max(aged.purge)}" in page
        # without the confirmation box ticked, nothing happens
        unconfirmed = client.post(PAGE, {"reason": "clean-up"})
        assert unconfirmed.status_code == 200
        assert purged_seqs() == set()
        response = client.post(PAGE, {"reason": "clean-up", "confirm": "on"})
    assert response.status_code == 302
    assert purged_seqs() == aged.purge
    assert data_purged()[0]["actor"] == {"type": "user", "id": "adam"}
    assert data_purged()[0]["data"]["requested_reason"] == "clean-up"


@pytest.mark.parametrize("name", NOT_ADMINS)
def test_admin_page_is_closed_below_admin(aged, holds, people, name):  # noqa: F811
    before = state()
    with time_machine.travel(NOW, tick=False):
        client = login(people, name)
        assert client.get(PAGE).status_code == 403
        assert client.post(PAGE, {"reason": "x", "confirm": "on"}).status_code == 403
    assert state() == before


def test_scheduled_purge_is_unchanged(aged, holds):  # noqa: F811
    from reporting.tasks import retention_purge_task

    with time_machine.travel(NOW, tick=False):
        retention_purge_task()
    [record] = data_purged()
    assert record["actor"] == {"type": "system", "id": "retention-beat"}
    assert "requested_reason" not in record["data"]
