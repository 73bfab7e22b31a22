"""Webhooks: registration, the SSRF guard, the outbox written with the change
that causes it, and delivery (Standard Webhooks) to a real local HTTP
receiver that fails for a while, verified with the `standardwebhooks`
reference library."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import transaction
from standardwebhooks import Webhook

from audit.models import Record, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from audit.services.checkpoints import checkpoint_create
from audit.webhooks import ssrf
from audit.webhooks.services import (
    backoff_delay,
    sign,
    webhook_deliver_due,
    webhook_endpoint_create,
    webhook_endpoint_enable,
    webhook_notify,
)
from compliance_site import dispatch

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "carol", "bob", "oscar", "rita", "alice", "adam"]


class Receiver:
    """A real HTTP receiver on 127.0.0.1. `script` says how to answer the
    successive requests ("500", "slow" (answers after the sender's timeout),
    "410", "redirect:<url>"); after the script it answers 204."""

    def __init__(self, script: list[str] | None = None, slow_secs: float = 1.0):
        self.script = list(script or [])
        self.slow_secs = slow_secs
        self.requests: list[tuple[dict[str, str], str, str]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                with receiver.lock:
                    n = len(receiver.requests)
                    receiver.requests.append((dict(self.headers.items()), body, self.path))
                    how = receiver.script[n] if n < len(receiver.script) else "204"
                try:
                    if how == "slow":
                        time.sleep(receiver.slow_secs)
                        self.send_response(200)
                    elif how.startswith("redirect:"):
                        self.send_response(307)
                        self.send_header("Location", how.removeprefix("redirect:"))
                    else:
                        self.send_response(int(how))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fast_webhooks(settings: Any) -> Any:
    """The tests' receiver is allow-listed; retries and timeouts are short."""
    settings.COMPLIANCE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.COMPLIANCE_WEBHOOK_TIMEOUT_SECS = 0.3
    settings.COMPLIANCE_WEBHOOK_BACKOFF_BASE_SECS = 0.01
    settings.COMPLIANCE_WEBHOOK_BACKOFF_MAX_SECS = 0.05
    return settings


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver that answers 204; tests give it a script of failures first."""
    server = Receiver()
    yield server
    server.close()


def register(people: dict[str, Any], url: str, types: list[str] | None = None) -> WebhookEndpoint:
    return webhook_endpoint_create(
        url=url,
        event_types=types or ["*"],
        acting_user=people["alice"],
        description="test receiver",
    )


def notify(n: int, event_type: str = "SURVEILLANCE_ALERT") -> WebhookMessage | None:
    with transaction.atomic():
        return webhook_notify(
            event_type, {"alert_id": n, "detail": f"notice {n}", "notional": "12.50"}, seq=n
        )


def drain(deadline_secs: float = 20) -> None:
    """Run the sweep (the beat task's service) until nothing is left to send."""
    deadline = time.monotonic() + deadline_secs
    while WebhookDelivery.objects.exclude(status="delivered").exists():
        assert time.monotonic() < deadline, list(
            WebhookDelivery.objects.values("status", "attempts", "last_error")
        )
        webhook_deliver_due()
        time.sleep(0.02)


def state() -> tuple[int, ...]:
    return (
        WebhookEndpoint.objects.count(),
        WebhookMessage.objects.count(),
        WebhookDelivery.objects.count(),
        Record.objects.count(),
    )


# --- signing -------------------------------------------------------------------------


def test_signature_is_the_standard_webhooks_one() -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    reference = Webhook(secret).sign(
        "msg_1", datetime.fromtimestamp(1_700_000_000, tz=UTC), '{"a":1}'
    )
    assert sign(secret, "msg_1", 1_700_000_000, '{"a":1}') == reference


def test_backoff_grows_exponentially_with_jitter(settings: Any) -> None:
    settings.COMPLIANCE_WEBHOOK_BACKOFF_BASE_SECS = 5
    settings.COMPLIANCE_WEBHOOK_BACKOFF_MAX_SECS = 3600
    delays = [[backoff_delay(n).total_seconds() for _ in range(20)] for n in (1, 2, 5, 20)]
    for step, samples in zip((5, 10, 80, 3600), delays, strict=True):
        assert all(step / 2 <= s <= step for s in samples)
        assert len(set(samples)) > 1  # jittered


# --- registration ------------------------------------------------------------------------


@pytest.mark.parametrize("who", ROLES)
def test_register_webhook_only_for_compliance_officers(
    client_for: Any, api: Any, who: str, fast_webhooks: Any, receiver: Receiver
) -> None:
    client = api if who == "anonymous" else client_for(who)
    before = state()
    response = client.post(
        "/api/v1/webhooks/",
        {"url": receiver.url, "event_types": ["SURVEILLANCE_ALERT"]},
        format="json",
    )
    if who in ("alice", "adam"):
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["secret"].startswith("whsec_")
        assert WebhookEndpoint.objects.get(pk=body["id"]).url == receiver.url
        # the secret is shown once: the list does not carry it
        assert "secret" not in client.get("/api/v1/webhooks/").json()[0]
    else:
        assert response.status_code == (401 if who == "anonymous" else 403)
        assert state() == before


def test_unknown_event_types_are_refused(
    client_for: Any, fast_webhooks: Any, receiver: Receiver
) -> None:
    before = state()
    for types in (["NOT_A_TYPE"], ["ORDER_FILLED", "order_filled"], [1], []):
        response = client_for("alice").post(
            "/api/v1/webhooks/", {"url": receiver.url, "event_types": types}, format="json"
        )
        assert response.status_code == 400, types
    assert state() == before


REFUSED = [
    "http://127.0.0.1/hook",
    "http://127.8.9.10:8080/hook",
    "http://localhost/hook",
    "http://10.0.0.5/hook",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://[::1]/hook",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[2002:7f00:1::]/",
    "http://2130706433/hook",
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://0x7f000001/",
    "http://127.1/",
    "ftp://example.com/",
    "http://user:secret@example.com/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_ssrf_guard_refuses_internal_addresses_at_registration(
    client_for: Any, settings: Any, url: str
) -> None:
    settings.COMPLIANCE_WEBHOOK_ALLOWED_HOSTS = []
    before = state()
    response = client_for("alice").post(
        "/api/v1/webhooks/", {"url": url, "event_types": ["*"]}, format="json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "unsafe_url"
    assert state() == before
    with pytest.raises(ssrf.UnsafeURL):
        ssrf.check_url(url)


def test_ssrf_guard_accepts_public_addresses_and_allow_listed_hosts(settings: Any) -> None:
    settings.COMPLIANCE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1", "intranet.example:8443"]
    assert ssrf.check_url("https://93.184.215.14/hook").address == "93.184.215.14"
    assert ssrf.check_url("http://[2606:4700::1111]/").address == "2606:4700::1111"
    assert ssrf.check_url("http://127.0.0.1:9000/hook").address == "127.0.0.1"
    # allow-listed with its port only
    with pytest.raises(ssrf.UnsafeURL):
        ssrf.check_url("http://10.0.0.1/")


def test_a_redirect_to_an_internal_host_is_refused(
    people: dict[str, Any], fast_webhooks: Any, receiver: Receiver
) -> None:
    receiver.script.extend(["redirect:http://169.254.169.254/latest/meta-data/"])
    endpoint = register(people, receiver.url)
    notify(1)
    webhook_deliver_due()
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.status == "pending"
    assert "169.254.169.254" in delivery.last_error
    [attempt] = WebhookAttempt.objects.all()
    assert attempt.outcome == "refused"
    assert attempt.status_code is None
    assert len(receiver.requests) == 1  # the allow-listed receiver only; the target never

    # a redirect to another port on the allow-listed host is not a way round it
    # either when that host is only allow-listed by name:port
    fast_webhooks.COMPLIANCE_WEBHOOK_ALLOWED_HOSTS = [
        f"127.0.0.1:{receiver.server.server_address[1]}"
    ]
    receiver.script.append("redirect:http://127.0.0.1:1/admin")
    WebhookDelivery.objects.update(next_attempt_at=delivery.next_attempt_at.replace(year=2000))
    webhook_deliver_due()
    assert WebhookAttempt.objects.order_by("-pk").first().outcome == "refused"  # type: ignore[union-attr]
    assert endpoint.deliveries.get().status == "pending"


def test_send_time_check_catches_a_host_no_longer_allowed(
    people: dict[str, Any], fast_webhooks: Any, receiver: Receiver
) -> None:
    register(people, receiver.url)
    notify(1)
    fast_webhooks.COMPLIANCE_WEBHOOK_ALLOWED_HOSTS = []
    webhook_deliver_due()
    assert receiver.requests == []
    assert WebhookAttempt.objects.get().outcome == "refused"
    fast_webhooks.COMPLIANCE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    drain()
    assert len(receiver.requests) == 1


# --- the outbox is written with the change -----------------------------------------------


def test_notices_are_written_in_the_causing_transaction(
    people: dict[str, Any], fast_webhooks: Any, receiver: Receiver
) -> None:
    register(people, receiver.url, ["KILL_SWITCH_ACTIVATED"])
    # nobody subscribes to this type: nothing is queued
    assert notify(1, "CHECKPOINT_CREATED") is None
    # a change that rolls back takes its notice with it
    with pytest.raises(RuntimeError), transaction.atomic():  # noqa: PT012 (rollback)
        webhook_notify("KILL_SWITCH_ACTIVATED", {"scope": "global"})
        raise RuntimeError("the change failed")
    assert WebhookMessage.objects.count() == 0


def test_kill_switch_approval_and_checkpoint_each_queue_a_notice(
    people: dict[str, Any], fast_webhooks: Any, receiver: Receiver, bot: Any
) -> None:
    from approvals.services import approval_open
    from surveillance.services.kill_switch import kill_switch_activate, kill_switch_deactivate

    register(people, receiver.url)
    switch = kill_switch_activate(
        scope="agent", target="bot-1", reason="runaway", acting_user=people["rita"]
    )
    kill_switch_deactivate(
        scope="agent", target="bot-1", reason="fixed", acting_user=people["rita"]
    )
    from approvals.registry import BaseResolver, register_resolver, unregister_resolver

    register_resolver("webhook-test", BaseResolver(), replace=True)
    try:
        request = approval_open(
            kind="webhook-test", subject_id="1", summary={"x": "1"}, requested_by_agent=bot.agent
        )
    finally:
        unregister_resolver("webhook-test")
    checkpoint = checkpoint_create(force=True)
    messages = {m.event_type: m for m in WebhookMessage.objects.all()}
    assert set(messages) == {
        "KILL_SWITCH_ACTIVATED",
        "KILL_SWITCH_DEACTIVATED",
        "APPROVAL_REQUESTED",
        "CHECKPOINT_CREATED",
    }
    activated = json.loads(messages["KILL_SWITCH_ACTIVATED"].body)
    assert activated["type"] == "KILL_SWITCH_ACTIVATED"
    assert activated["data"]["seq"] == switch.activated_seq
    assert activated["data"]["cancel_all"] is True
    assert json.loads(messages["APPROVAL_REQUESTED"].body)["data"]["approval"]["id"] == request.pk
    assert (
        json.loads(messages["CHECKPOINT_CREATED"].body)["data"]["tree_size"] == checkpoint.tree_size
    )  # type: ignore[union-attr]
    assert WebhookDelivery.objects.filter(status="pending").count() == 4
    drain()
    assert {json.loads(body)["type"] for _, body, _ in receiver.requests} == set(messages)


# --- delivery ---------------------------------------------------------------------------


def test_flaky_receiver_gets_every_notice_at_least_once_signed_and_deduplicable(
    people: dict[str, Any],
    fast_webhooks: Any,
    receiver: Receiver,
    client_for: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    receiver.script.extend(["500", "500", "slow", "500", "slow", "503", "500", "slow"])
    # given a receiver that fails for a while (500s, 503, timeouts), then recovers
    endpoint = register(people, receiver.url)
    secret = endpoint.secret

    # when notices are committed (the worker is woken after commit: eager here)
    with django_capture_on_commit_callbacks(execute=True):
        sent = [notify(n) for n in range(1, 6)]
    drain()

    # then every notice arrived at least once
    by_id: dict[str, list[str]] = defaultdict(list)
    for headers, body, _ in receiver.requests:
        lowered = {k.lower(): v for k, v in headers.items()}
        by_id[lowered["webhook-id"]].append(body)
        # every delivery, retries included, verifies with the reference library
        payload = Webhook(secret).verify(body, headers)
        assert payload["type"] == "SURVEILLANCE_ALERT"
        assert lowered["webhook-signature"].startswith("v1,")
    assert set(by_id) == {m.msg_id for m in sent if m is not None}
    # duplicates (a timed-out request the receiver did get) carry the same id and body
    assert any(len(bodies) > 1 for bodies in by_id.values())
    for bodies in by_id.values():
        assert len(set(bodies)) == 1
    assert len(receiver.requests) > len(by_id)

    # and every attempt is logged and visible
    rows = client_for("carol").get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/").json()
    assert {r["status"] for r in rows} == {"delivered"}
    outcomes = [a["outcome"] for r in rows for a in r["attempt_log"]]
    assert outcomes.count("delivered") == 5
    assert {"http_error", "timeout"} <= set(outcomes)
    assert sum(r["attempts"] for r in rows) == len(receiver.requests)
    endpoint.refresh_from_db()
    assert endpoint.is_active
    assert endpoint.consecutive_failures == 0


def test_410_disables_the_endpoint_and_keeps_the_rest_for_later(
    people: dict[str, Any], fast_webhooks: Any, receiver: Receiver
) -> None:
    receiver.script.extend(["410"])
    endpoint = register(people, receiver.url)
    notify(1)
    notify(2)
    webhook_deliver_due()
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert "410" in endpoint.disabled_reason
    statuses = sorted(WebhookDelivery.objects.values_list("status", flat=True))
    assert statuses == ["failed", "pending"]
    assert len(receiver.requests) == 1
    # a disabled endpoint gets no new notices and nothing is sent to it
    assert notify(3) is None
    webhook_deliver_due()
    assert len(receiver.requests) == 1
    # enabled again, what was pending goes out
    webhook_endpoint_enable(endpoint_id=endpoint.pk, acting_user=people["alice"])
    webhook_deliver_due()
    assert len(receiver.requests) == 2
    # each change of where notices go is in the log, with who made it
    changes = [
        (json.loads(r.body)["data"]["action"], json.loads(r.body)["actor"])
        for r in Record.objects.filter(event_type="WEBHOOK_CHANGED").order_by("seq")
    ]
    assert changes == [
        ("registered", {"type": "user", "id": "alice"}),
        ("disabled", {"type": "system", "id": "webhooks"}),
        ("enabled", {"type": "user", "id": "alice"}),
    ]
    disabled = json.loads(Record.objects.get(body__contains='"disabled"').body)["data"]
    assert disabled["url"] == receiver.url
    assert "410" in disabled["reason"]


def test_repeated_failures_disable_the_endpoint(
    people: dict[str, Any], fast_webhooks: Any, receiver: Receiver
) -> None:
    receiver.script.extend(["500"] * 10)
    fast_webhooks.COMPLIANCE_WEBHOOK_DISABLE_AFTER_FAILURES = 3
    fast_webhooks.COMPLIANCE_WEBHOOK_DISABLE_AFTER_SECS = 0
    endpoint = register(people, receiver.url)
    notify(1)
    for _ in range(10):
        webhook_deliver_due()
        time.sleep(0.06)
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert "3+ times" in endpoint.disabled_reason
    assert (
        Record.objects.filter(event_type="WEBHOOK_CHANGED", body__contains='"disabled"').count()
        == 1
    )
    assert len(receiver.requests) == 3
    assert WebhookDelivery.objects.get().status == "pending"  # kept, not dropped


def test_a_claimed_delivery_is_not_sent_twice_at_once(
    people: dict[str, Any], fast_webhooks: Any, receiver: Receiver
) -> None:
    from audit.webhooks.services import webhook_delivery_send

    register(people, receiver.url)
    notify(1)
    delivery = WebhookDelivery.objects.get()
    # another worker holds it (lease not expired): this one backs off
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="sending", claimed_until=delivery.next_attempt_at.replace(year=2999)
    )
    assert webhook_delivery_send(delivery_id=delivery.pk) == "not_claimed"
    # the lease runs out (the worker died): the sweep takes it back
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        claimed_until=delivery.next_attempt_at.replace(year=2000)
    )
    assert webhook_deliver_due() == {"delivered": 1}
    assert webhook_delivery_send(delivery_id=delivery.pk) == "not_claimed"
    assert len(receiver.requests) == 1


def _reset_broker_connections(app: Any) -> None:
    """Drop Celery's references to its broker connection pools (without closing
    them: kombu keeps them per URL and hands them out again) so the next
    publish uses the broker URL in force now."""
    app._pool = None
    if "amqp" in app.__dict__:
        app.__dict__["amqp"]._producer_pool = None


def test_broker_outage_keeps_the_row_and_the_sweep_delivers_it(
    people: dict[str, Any],
    fast_webhooks: Any,
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: Any,
) -> None:
    from compliance_site.celery import app

    register(people, receiver.url)
    # given a broker nobody listens on (Celery reads CELERY_BROKER_URL from the
    # environment first, so it is pointed there too)
    closed = "redis://127.0.0.1:1/0"
    monkeypatch.setenv("CELERY_BROKER_URL", closed)
    saved = (app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_connection_timeout)
    app.conf.broker_url, app.conf.task_always_eager = closed, False
    app.conf.broker_connection_timeout = 0.5  # give up on the dead broker quickly
    _reset_broker_connections(app)
    try:
        # when a notice commits, the wake-up after commit fails against the broker
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            notify(1)
        assert len(callbacks) == 1
        # the wake-up is published from the dispatch thread, never the request's
        assert dispatch.wait_idle(30)
        assert "Connection refused" in caplog.text or "Error 111" in caplog.text, caplog.text
    finally:
        app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_connection_timeout = saved
        monkeypatch.undo()
        _reset_broker_connections(app)
    # then nothing was sent and nothing is lost: the row waits in the outbox
    assert receiver.requests == []
    assert WebhookDelivery.objects.get().status == "pending"
    # and the beat sweep delivers it once a worker runs again
    drain()
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("who", ROLES)
def test_deliveries_are_visible_to_viewers_and_up(
    client_for: Any,
    api: Any,
    people: dict[str, Any],
    fast_webhooks: Any,
    receiver: Receiver,
    who: str,
) -> None:
    endpoint = register(people, receiver.url)
    notify(1)
    drain()
    response = (api if who == "anonymous" else client_for(who)).get(
        f"/api/v1/webhooks/{endpoint.pk}/deliveries/"
    )
    if who == "anonymous":
        assert response.status_code == 401
        return
    assert response.status_code == 200
    [row] = response.json()
    assert row["status"] == "delivered"
    assert row["attempt_log"][0]["status_code"] == 204
    assert client_for("alice").get("/api/v1/webhooks/999/deliveries/").status_code == 404
