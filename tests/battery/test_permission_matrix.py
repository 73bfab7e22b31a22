"""The permission matrix, generated from the URLconf (HOUSE_STYLE): every URL
pattern's every method must have a row in permission_matrix.MATRIX, and each
row is called by every caller. A 4xx leaves every table exactly as it was."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from tests.conftest import holding_on

from .permission_matrix import CALLERS, EXCLUDED_NAMESPACES, MATRIX
from .state import every_row

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")


def _walk(patterns: list[Any], namespace: str | None = None) -> Iterator[tuple[str, str]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = entry.namespace or namespace
            if inner in EXCLUDED_NAMESPACES:
                continue
            yield from _walk(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace else str(entry.name)
            view_class = getattr(entry.callback, "view_class", None)
            if view_class is None:  # a function view: GET (and HEAD) only here
                yield name, "GET"
                continue
            for method in METHODS:
                if hasattr(view_class, method):
                    yield name, method.upper()


def endpoints() -> list[tuple[str, str]]:
    return sorted(set(_walk(get_resolver().url_patterns)))


def test_every_endpoint_has_a_row_and_every_row_an_endpoint():
    found = set(endpoints())
    missing = sorted(found - MATRIX.keys())
    stale = sorted(MATRIX.keys() - found)
    assert not missing, f"endpoints without a permission-matrix row: {missing}"
    assert not stale, f"rows for endpoints that no longer exist: {stale}"


@pytest.fixture
def world(
    people, make_bot, client_for, settings, django_capture_on_commit_callbacks
) -> dict[str, Any]:
    """bot-1 (bob's) with a held order, an alert, and one of every object an
    endpoint names: a report, an export, a legal hold, a webhook, a verification."""
    from datetime import date

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit.services.checkpoints import checkpoint_create
    from audit.services.export import export_request
    from audit.services.witnesses import witness_register
    from audit.webhooks.services import webhook_endpoint_create
    from reporting.periods import day
    from reporting.services.delivery import subscription_create
    from reporting.services.reports import report_request
    from reporting.services.retention import legal_hold_place
    from surveillance.detectors import Finding
    from surveillance.services.alerts import alerts_create
    from surveillance.services.config import config_current

    settings.COMPLIANCE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    config_current()
    holding_on(people)
    bot = make_bot("bot-1", owner="bob")
    item = bot.signer.item(
        "ORDER_SUBMITTED",
        {
            "order_id": "o-1",
            "market": "BTC-USD",
            "side": "buy",
            "quantity": "100",
            "price": "100",
            "order_type": "limit",
        },
    )
    held = bot.client.post("/api/v1/orders/", item, format="json").json()
    assert held["decision"] == "held", held
    [alert] = alerts_create(
        findings=[
            Finding(
                detector="spoofing",
                severity="high",
                fingerprint="spoofing:matrix:1",
                agent_id="bot-1",
                market="BTC-USD",
                evidence=[1],
                detail="matrix",
                seq=1,
                ts=1_000_000,
                facts={},
            )
        ],
        config_hash="c" * 64,
    )
    with django_capture_on_commit_callbacks(execute=True):  # the jobs run (eager)
        report, _ = report_request(
            kind="daily_trade",
            period=day(date(2026, 1, 5)),
            fmt="json",
            acting_user=people["alice"],
        )
        export = export_request(acting_user=people["alice"], from_seq=None, to_seq=None)
        verification = client_for("alice").post("/api/v1/log/verify/").json()["id"]
    checkpoint = checkpoint_create(force=True)
    assert checkpoint is not None
    witness = witness_register(
        name="auditor.example/w1",
        public_key=base64.b64encode(
            Ed25519PrivateKey.generate().public_key().public_bytes_raw()
        ).decode(),
        acting_user=people["adam"],
    )
    subscription = subscription_create(
        kind="daily_trade", fmt="csv", recipients=["desk@example.com"], acting_user=people["alice"]
    )
    hold = legal_hold_place(reason="matrix", acting_user=people["adam"])
    webhook = webhook_endpoint_create(
        url="http://127.0.0.1:9/hook",
        event_types=["KILL_SWITCH_ACTIVATED"],
        acting_user=people["alice"],
    )
    return {
        "bot": bot,
        "values": {
            "order": "o-1",
            "agent": "bot-1",
            "key": bot.signer.key_id,
            "alert": alert.pk,
            "approval": held["approval"]["id"],
            "report": report.pk,
            "export": export.pk,
            "hold": hold.pk,
            "webhook": webhook.pk,
            "seq": held["seq"],
            "verification": verification,
            "tree_size": checkpoint.tree_size,
            "witness": witness.name,
            "subscription": subscription.pk,
            "username": "carol",
        },
    }


def client_of(caller: str, world: dict[str, Any], client_for: Any) -> APIClient:
    if caller == "anon":
        return APIClient()
    if caller == "bot":
        return world["bot"].client
    return client_for(caller)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("name", "method"), sorted(MATRIX), ids=lambda v: str(v))
def test_permission_matrix(world, client_for, name, method, caller):
    row = MATRIX[(name, method)]
    path = row.path.format(**world["values"])
    client = client_of(caller, world, client_for)
    before = every_row()
    call = getattr(client, method.lower())
    response = call(path, {}, format="json") if method != "GET" else call(path)
    expected = row.expected(caller)
    assert response.status_code in expected, (
        f"{method} {path} as {caller}: {response.status_code} (expected {expected}) "
        f"{response.content[:300]!r}"
    )
    if 400 <= response.status_code < 500:
        assert response["Content-Type"].startswith("application/json")
        assert "code" in response.json()
        assert every_row() == before, f"{method} {path} as {caller} was refused but changed state"


@pytest.mark.parametrize(
    ("url", "own", "other"),
    [
        ("/admin/audit/record/", "bot-1", "bot-2"),
        ("/admin/surveillance/order/", "o-1", "o-2"),
    ],
)
def test_the_admin_lists_are_scoped_like_the_api(world, make_bot, people, url, own, other):
    """The admin reads through the same rule: bob sees bot-1's rows, not bot-2's."""
    from django.test import Client

    bot2 = make_bot("bot-2", owner="oscar")
    item = bot2.signer.item(
        "ORDER_SUBMITTED",
        {
            "order_id": "o-2",
            "market": "ETH-USD",
            "side": "sell",
            "quantity": "1",
            "price": "10",
            "order_type": "limit",
        },
    )
    assert bot2.client.post("/api/v1/orders/", item, format="json").status_code == 201
    seen = {}
    for who in ("bob", "carol"):
        browser = Client()
        browser.force_login(people[who])
        response = browser.get(url)
        assert response.status_code == 200
        seen[who] = response.content.decode()
    assert own in seen["bob"]
    assert other not in seen["bob"]
    assert own in seen["carol"]
    assert other in seen["carol"]
