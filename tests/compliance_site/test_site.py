"""The site's own endpoints: health, OpenAPI schema and docs, deploy checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_broker_and_checkpoint_age(api, bot):
    from audit.services.checkpoints import checkpoint_create

    checkpoint_create(force=True)
    body = api.get("/healthz").json()
    assert body["database"] == "ok"
    assert body["broker"] in {"ok", "down"}
    assert body["last_checkpoint_age_s"] is not None
    assert body["last_checkpoint_age_s"] < 60


def test_openapi_schema_lists_the_contract_endpoints(api, client_for):
    # behind a login unless COMPLIANCE_API_DOCS_PUBLIC (issue 18): anonymous gets 401 JSON
    assert api.get("/api/schema/").status_code == 401
    response = client_for("carol").get(
        "/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    )
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/v1/events/",
        "/api/v1/orders/",
        "/api/v1/log/proofs/inclusion/",
        "/api/v1/approvals/",
        "/api/v1/kill-switch/",
        "/api/v1/config/",
    ]:
        assert path in paths, path
    assert client_for("carol").get("/api/docs/").status_code == 200


def test_production_settings_pass_check_deploy():
    env = {k: v for k, v in os.environ.items() if k not in {"COMPLIANCE_TESTING", "DJANGO_DEBUG"}}
    env.update(
        DJANGO_SETTINGS_MODULE="compliance_site.settings",
        DJANGO_SECRET_KEY="a-long-random-production-secret-" + "x7Q9" * 10,
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="compliance.example.com",
    )
    proc = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_wsgi_application_loads_its_views_and_keeps_them_out_of_the_collector():
    # A full garbage collection would otherwise walk every object Django and
    # the apps loaded: tens of milliseconds in which a worker answers no one.
    env = {k: v for k, v in os.environ.items() if k != "COMPLIANCE_TESTING"}
    env.update(DJANGO_SETTINGS_MODULE="compliance_site.settings", DJANGO_DEBUG="1")
    script = (
        "import gc, json, sys; import compliance_site.wsgi;"
        "print(json.dumps([gc.get_freeze_count(), len(gc.get_objects()),"
        " 'surveillance.apis' in sys.modules]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    frozen, tracked, views_loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert views_loaded  # imported with the URLconf before the freeze, not on a first request
    assert frozen > 50_000
    assert tracked < frozen // 20


def test_production_settings_refuse_to_start_without_a_secret():
    env = {
        k: v for k, v in os.environ.items() if k not in {"COMPLIANCE_TESTING", "DJANGO_SECRET_KEY"}
    }
    env.update(DJANGO_SETTINGS_MODULE="compliance_site.settings", DJANGO_DEBUG="0")
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"], capture_output=True, text=True, env=env
    )
    assert proc.returncode != 0
    assert "DJANGO_SECRET_KEY" in proc.stderr


@pytest.mark.parametrize(
    ("accept", "query", "status"),
    [
        (None, "", 200),
        ("*/*", "", 200),
        ("application/json", "", 200),
        ("application/json; indent=2", "", 200),
        ("text/html", "", 406),
        ("*/*", "?format=xml", 404),
    ],
)
def test_content_negotiation_fast_path_answers_as_drf_would(client_for, accept, query, status):
    """JSONContentNegotiation skips parsing for the plain cases only: another
    media type is still 406, a format override is still honoured (404 for an
    unknown format), and a parameterised JSON type still gets JSON."""
    client = client_for("carol")  # a viewer
    headers = {"HTTP_ACCEPT": accept} if accept is not None else {}
    response = client.get(f"/api/v1/log/public-key/{query}", **headers)
    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"].startswith("application/json")
        assert "public_key" in response.json() or response.json()


def test_the_openapi_schema_validates_with_no_warning_and_documents_every_body():
    """`manage.py spectacular --validate --fail-on-warn`, and the schema's
    content: request bodies on the writes, the status codes they answer."""
    import yaml

    env = {k: v for k, v in os.environ.items()}
    env.update(DJANGO_SETTINGS_MODULE="compliance_site.settings_test")
    proc = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    schema = yaml.safe_load(proc.stdout)
    without_body = {
        # actions whose path says everything: nothing to send
        ("/api/v1/agents/{agent_id}/keys/{key_id}/revoke/", "post"),
        ("/api/v1/log/checkpoints/", "post"),
        ("/api/v1/log/verify/", "post"),
        ("/api/v1/surveillance/run/", "post"),
        ("/api/v1/webhooks/{endpoint_id}/enable/", "post"),
        ("/api/v1/reports/subscriptions/{subscription_id}/deactivate/", "post"),
    }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method in {"post", "put", "patch"} and (path, method) not in without_body:
                assert "requestBody" in operation, (path, method)
            assert {"401", "403"} <= set(operation["responses"]) or operation.get("security") == [
                {}
            ], (path, method)
    orders = schema["paths"]["/api/v1/orders/"]["post"]
    assert orders["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "SignedItemRequest"
    )
    assert {"201", "200", "400", "409"} <= set(orders["responses"])
    events = schema["paths"]["/api/v1/events/"]["post"]
    assert {"201", "400", "409", "413"} <= set(events["responses"])
    assert "200" not in events["responses"]
    assert "201" in schema["paths"]["/api/v1/agents/"]["post"]["responses"]
    assert "202" in schema["paths"]["/api/v1/log/exports/"]["post"]["responses"]


def test_openapi_schema_names_the_second_wave_codes_and_types(client_for):
    """CONTRACT 12: VENUE_REJECTED, the gate_bypass detector and recheck_failed."""
    response = client_for("carol").get(
        "/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    )
    schema = response.json()
    events = schema["paths"]["/api/v1/events/"]["post"]["description"]
    assert "`VENUE_REJECTED` ['order_id', 'reason', 'venue', 'venue_code']" in events
    assert "gate_bypass" in events
    alerts = schema["paths"]["/api/v1/alerts/"]["get"]["parameters"]
    [detector] = [p for p in alerts if p["name"] == "detector"]
    assert "gate_bypass" in detector["schema"]["enum"]
    approve = schema["paths"]["/api/v1/approvals/{approval_id}/approve/"]["post"]["responses"]
    assert "recheck_failed" in approve["409"]["description"]
    assert "reasons" in schema["components"]["schemas"]["DecideError"]["properties"]
