"""The flows that go through Celery, with a real worker on Redis and PostgreSQL.

Skipped (with the reason) unless the database is PostgreSQL and Redis answers
at CELERY_BROKER_URL; CI runs it (COMPLIANCE_REQUIRE_POSTGRES makes the
PostgreSQL skip a failure there)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from audit.models import LogExport
from tests.conftest import fill_payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
REPO = Path(__file__).resolve().parent.parent


def _redis_url() -> str:
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis://"):
        pytest.skip("needs Redis: set CELERY_BROKER_URL=redis://... (CI does)")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"Redis at {url} does not answer")
    return url


@pytest.fixture
def worker_env(settings, tmp_path):
    broker = _redis_url()
    import redis

    redis.Redis.from_url(broker).flushdb()  # no stale tasks from an earlier run
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "compliance_site.settings_test",
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "COMPLIANCE_VAR_DIR": str(Path(settings.COMPLIANCE_LOG_KEY_FILE).parent),
        "COMPLIANCE_MEDIA_ROOT": str(tmp_path),
    }
    settings.MEDIA_ROOT = tmp_path
    from compliance_site.celery import app

    app.conf.task_always_eager = False
    app.conf.broker_url = broker
    yield env
    app.conf.task_always_eager = True


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "compliance_site",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_export_queued_while_no_worker_runs_is_done_when_one_starts(bot, client_for, worker_env):
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload(n)) for n in range(20)])
    response = client_for("alice").post("/api/v1/log/exports/", {}, format="json")
    assert response.status_code == 202
    export_id = response.json()["id"]
    time.sleep(1)
    assert (
        LogExport.objects.get(pk=export_id).status == "pending"
    )  # acknowledged, kept in the broker
    worker = start_worker(worker_env)
    try:
        assert wait_for(lambda: LogExport.objects.get(pk=export_id).status == "done")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=20)
    export = LogExport.objects.get(pk=export_id)
    assert export.records == 21
    assert len(export.sha256) == 64


def test_worker_killed_while_idle_is_replaced_and_the_next_task_runs(bot, client_for, worker_env):
    """A worker dies (SIGKILL, no shutdown); the request acknowledged meanwhile
    waits in Redis and the replacement worker runs it."""
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload(n)) for n in range(5)])
    first = start_worker(worker_env)
    time.sleep(3)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=20)
    response = client_for("alice").post("/api/v1/log/exports/", {}, format="json")
    export_id = response.json()["id"]
    second = start_worker(worker_env)
    try:
        assert wait_for(lambda: LogExport.objects.get(pk=export_id).status == "done")
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=20)
