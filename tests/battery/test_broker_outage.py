"""Redis stopped (issue 18, item 5): nothing on a request path waits for the
broker, held orders and webhooks due during the outage are kept in their
outbox rows, an approval past its deadline reads as expired everywhere without
the expiry task, and everything is sent once Redis is back."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from approvals.models import ApprovalRequest, Notification
from audit.models import WebhookDelivery
from compliance_site import dispatch
from tests.audit.test_webhooks import (  # noqa: F401 - fixtures
    Receiver,
    _reset_broker_connections,
    drain,
    fast_webhooks,
    receiver,
    register,
)
from tests.audit.test_webhooks_redis_outage import PrivateRedis, private_redis  # noqa: F401

from .conftest import report

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ORDER = {
    "order_id": "o-held",
    "market": "BTC-USD",
    "side": "buy",
    "quantity": "100",
    "price": "100",
    "order_type": "limit",
}


class Blackhole:
    """A broker that accepts connections and never answers: whoever publishes
    to it waits until it lets go (when released, or on its own after a while)."""

    def __init__(self, give_up_secs: float = 20) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"
        self.accepted = threading.Event()
        self.released = threading.Event()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()
        threading.Timer(give_up_secs, self.release).start()

    def _accept(self) -> None:
        while not self.released.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            self.accepted.set()

    def release(self) -> None:
        self.released.set()
        for conn in self._conns:
            conn.close()
        self.sock.close()


def use_broker(app: Any, url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    saved = (app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_connection_timeout)
    app.conf.broker_url, app.conf.task_always_eager = url, False
    app.conf.broker_connection_timeout = 30
    _reset_broker_connections(app)
    return saved


def restore_broker(app: Any, saved: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_connection_timeout = saved
    monkeypatch.undo()
    _reset_broker_connections(app)


@pytest.fixture
def gate_ready(people, make_bot, settings):
    from tests.conftest import holding_on

    settings.COMPLIANCE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    holding_on(people)  # approval threshold 5000: the order below (10,000) is held
    return make_bot("bot-1", owner="bob")


def test_a_held_order_is_answered_while_the_broker_hangs(gate_ready, monkeypatch):
    """The broker accepts the connection and never answers. The held order's
    notices are published after commit; if that happened on the request's
    thread the answer could only come once the broker let go."""
    from compliance_site.celery import app

    bot = gate_ready
    hole = Blackhole()
    saved = use_broker(app, hole.url, monkeypatch)
    try:
        response = bot.client.post(
            "/api/v1/orders/", bot.signer.item("ORDER_SUBMITTED", ORDER), format="json"
        )
        answered_while_hanging = not hole.released.is_set()
        assert response.status_code == 201, response.content
        assert response.json()["decision"] == "held"
        assert answered_while_hanging, "the request waited for the broker"
        # the wake-up did go to the broker, from the dispatch thread
        assert hole.accepted.wait(20)
    finally:
        hole.release()
        dispatch.wait_idle(30)
        restore_broker(app, saved, monkeypatch)
    assert Notification.objects.filter(sent_at__isnull=True).exists()


def test_redis_stopped_with_held_orders_and_webhooks_due(
    gate_ready,
    people: dict[str, Any],
    fast_webhooks: Any,  # noqa: F811
    receiver: Receiver,  # noqa: F811
    private_redis: PrivateRedis,  # noqa: F811
    client_for: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from approvals.tasks import approval_expire_due_task
    from compliance_site.celery import app

    bot = gate_ready
    register(people, receiver.url, ["APPROVAL_REQUESTED", "KILL_SWITCH_ACTIVATED"])
    saved = use_broker(app, private_redis.url, monkeypatch)
    try:
        private_redis.stop()  # Redis is down from here
        held = []
        for n in range(3):
            payload = {**ORDER, "order_id": f"o-held-{n}", "price": f"10{n}"}
            item = bot.signer.item("ORDER_SUBMITTED", payload)
            response = bot.client.post("/api/v1/orders/", item, format="json")
            assert response.status_code == 201, response.content
            assert response.json()["decision"] == "held"
            held.append(response.json()["approval"]["id"])
        kill = client_for("rita").post(
            "/api/v1/kill-switch/",
            {"action": "activate", "scope": "market", "target": "ETH-USD", "reason": "outage"},
            format="json",
        )
        assert kill.status_code == 200
        assert dispatch.wait_idle(60)
        # every notice is in the outbox, none sent
        due = WebhookDelivery.objects.filter(status="pending").count()
        assert due == 4
        assert receiver.requests == []
        # past the deadline, with no expiry task able to run, the approvals read
        # as expired in every listing and cannot be granted
        alice = client_for("alice")
        deadline = ApprovalRequest.objects.get(pk=held[0]).expires_at
        with time_machine.travel(deadline + timedelta(seconds=1), tick=False):
            assert alice.get(f"/api/v1/approvals/{held[0]}/").json()["status"] == "expired"
            assert alice.get("/api/v1/approvals/?status=pending").json() == []
            expired = alice.get("/api/v1/approvals/?status=expired").json()
            assert sorted(a["id"] for a in expired) == sorted(held)
            grant = alice.post(
                f"/api/v1/approvals/{held[0]}/approve/", {"reason": "late"}, format="json"
            )
            assert grant.status_code == 409
        private_redis.start()  # back, empty
    finally:
        restore_broker(app, saved, monkeypatch)
    # once a worker runs again: the sweep sends every notice once, expiry records them
    drain()
    assert len(receiver.requests) == 4
    with time_machine.travel(timezone.now() + timedelta(hours=1), tick=False):
        approval_expire_due_task()
    assert set(ApprovalRequest.objects.filter(pk__in=held).values_list("status", flat=True)) == {
        "expired"
    }
    report(
        f"battery redis: stopped with 3 held orders and {due} webhooks due; requests "
        "answered, 0 notices lost, all delivered once after restart; approvals past "
        "their deadline read expired during the outage"
    )
