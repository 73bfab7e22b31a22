"""Redis really stopped during an outage: a private redis-server (not the shared
one) is started, stopped while notices commit, and started again empty (no
persistence, as in CI). The outbox keeps every notice; once Redis is back the
sweep delivers all of them, none twice."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from audit.models import WebhookDelivery

from .test_webhooks import (  # noqa: F401 - fixtures
    Receiver,
    _reset_broker_connections,
    drain,
    fast_webhooks,
    notify,
    receiver,
    register,
)

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        for _ in range(100):
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server binary")
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


def test_notices_committed_while_redis_is_stopped_are_delivered_when_it_is_back(
    people: dict[str, Any],
    fast_webhooks: Any,  # noqa: F811
    receiver: Receiver,  # noqa: F811
    private_redis: PrivateRedis,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from compliance_site.celery import app

    register(people, receiver.url)
    monkeypatch.setenv("CELERY_BROKER_URL", private_redis.url)
    saved = (app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_connection_timeout)
    app.conf.broker_url, app.conf.task_always_eager = private_redis.url, False
    app.conf.broker_connection_timeout = 0.5
    _reset_broker_connections(app)
    try:
        # a notice commits while Redis is up: its wake-up is queued in Redis
        with django_capture_on_commit_callbacks(execute=True):
            notify(1)
        # Redis stops; two more notices commit during the outage
        private_redis.stop()
        with django_capture_on_commit_callbacks(execute=True):
            notify(2)
        with django_capture_on_commit_callbacks(execute=True):
            notify(3)
        assert WebhookDelivery.objects.filter(status="pending").count() == 3
        # Redis comes back empty (no persistence): every queued wake-up is gone
        private_redis.start()
    finally:
        app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_connection_timeout = saved
        monkeypatch.undo()
        _reset_broker_connections(app)
    # the outbox still has all three; the sweep sends each once
    assert receiver.requests == []
    drain()
    assert len(receiver.requests) == 3
    ids = {
        {k.lower(): v for k, v in headers.items()}["webhook-id"]
        for headers, _, _ in receiver.requests
    }
    assert len(ids) == 3
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
