"""Every error is JSON with a code (issue 18, item 4): hostile nesting and NUL
characters are refused at the parser or before any middleware, and an outage is
a 503 with Retry-After instead of an HTML 500."""

from __future__ import annotations

import socket

import pytest
from django.db import connection
from rest_framework.test import APIClient

from audit.models import Record

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _config(db):
    """The compliance config exists (its first read would otherwise record it)."""
    from surveillance.services.config import config_current

    config_current()


def nested(depth: int) -> bytes:
    return b'{"events": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("depth", [65, 950, 5000])
@pytest.mark.parametrize(
    ("method", "path", "who"),
    [
        ("post", "/api/v1/events/", "bot"),
        ("post", "/api/v1/orders/", "bot"),
        ("put", "/api/v1/config/", "alice"),
        ("post", "/api/v1/auth/token/", None),
        ("post", "/api/v1/kill-switch/", "rita"),
    ],
)
def test_deep_nesting_is_400_json_at_the_parser(bot, client_for, depth, method, path, who):
    client = bot.client if who == "bot" else client_for(who) if who else APIClient()
    before = Record.objects.count()
    response = getattr(client, method)(path, nested(depth), content_type="application/json")
    assert response.status_code == 400, response.content[:200]
    assert response.json()["code"] == "nesting_too_deep"
    assert Record.objects.count() == before


def test_nesting_within_the_limit_parses(bot):
    body = b'{"events": ' + b"[" * 60 + b"]" * 60 + b"}"
    response = bot.client.post("/api/v1/events/", body, content_type="application/json")
    # parsed: refused by the endpoint's own rules, not by the parser
    assert response.status_code == 400
    assert response.json()["code"] != "nesting_too_deep"


@pytest.mark.parametrize(
    "body",
    [
        b'{"events": [{"agent_id": "bot-1\\u0000"}]}',
        b'{"username": "adam\\u0000", "password": "x"}',
        b'{"events": [], "x": "\x00"}',
    ],
    ids=["escaped-in-id", "escaped-in-username", "raw"],
)
@pytest.mark.parametrize("path", ["/api/v1/events/", "/api/v1/orders/", "/api/v1/auth/token/"])
def test_nul_in_a_body_is_400_everywhere(bot, body, path):
    before = Record.objects.count()
    client = APIClient() if "auth" in path else bot.client
    response = client.post(path, body, content_type="application/json")
    assert response.status_code == 400, response.content[:200]
    assert response.json()["code"] == "nul_not_allowed"
    assert Record.objects.count() == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/events/?agent_id=bot%00",
        "/api/v1/events/?event_type=%00",
        "/api/v1/orders/o%001/?agent_id=bot-1",
        "/api/v1/alerts/?detector=wash%00",
        "/api/v1/agents/bot-1%00/keys/",
        "/admin/login/?next=/admin/%00",
    ],
)
def test_nul_in_a_path_or_query_is_400_json(client_for, path):
    response = client_for("carol").get(path)
    assert response.status_code == 400, response.content[:200]
    assert response.json()["code"] == "nul_not_allowed"


def test_nul_in_a_header_is_400_json(api):
    response = api.get("/api/v1/events/", HTTP_AUTHORIZATION="Bearer abc\x00def")
    assert response.status_code == 400
    assert response.json()["code"] == "nul_not_allowed"


def test_unknown_url_is_404_json(api):
    response = api.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_database_outage_is_503_json_with_retry_after(client_for):
    """A database that stops answering mid-request (every statement fails as a
    dropped connection does) gives 503 database_unavailable, not an HTML 500."""
    client = client_for("carol")
    client.raise_request_exception = False

    def gone(execute, sql, params, many, context):
        from django.db import OperationalError

        raise OperationalError("server closed the connection unexpectedly")

    with connection.execute_wrapper(gone):
        response = client.get("/api/v1/events/")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "database_unavailable"
    assert int(response["Retry-After"]) > 0


def test_broker_errors_map_to_broker_unavailable():
    """A real connection refusal from kombu (nothing listens on the port)."""
    from kombu import Connection

    from compliance_site.errors import outage_code

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # whatever kombu raises for a refused connection: outage_code must know it
    with pytest.raises(Exception) as caught:  # noqa: PT011
        Connection(f"redis://127.0.0.1:{port}/0", connect_timeout=0.5).ensure_connection(
            max_retries=0
        )
    assert outage_code(caught.value) == "broker_unavailable"
    assert outage_code(ValueError("x")) is None
