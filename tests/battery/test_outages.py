"""Crashes and outages on a production-like stack (slow; CI runs them):

* gunicorn on PostgreSQL, SIGKILL of a worker (twice) and of the whole process
  tree during signed batch ingest: every acknowledged event present once,
  seqs contiguous, verify_audit clean;
* a private PostgreSQL cluster restarted under load: clients see 503 JSON
  (database_unavailable, Retry-After), nothing acknowledged is lost, and the
  same gunicorn answers again without a restart.
"""

from __future__ import annotations

import shutil
import time

import pytest

from .conftest import report
from .stack import (
    Loader,
    PrivatePostgres,
    battery_server,
    check_log,
    crash_gunicorn,
    kill_worker,
    shared_pg,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def acked(loader: Loader) -> int:
    with loader.tally.lock:
        return len(loader.tally.acked)


def test_sigkill_of_workers_and_master_during_ingest_loses_nothing():
    pg_url, db_name = shared_pg()
    with battery_server(pg_url, db_name) as server:
        agent = server.register_agent("battery-crash")
        kills = 0
        with Loader(agent, threads=2, batch=20) as loader:
            for _ in range(2):
                target = acked(loader) + 400
                wait_until(lambda t=target: acked(loader) >= t, 120, "events acknowledged")
                kill_worker(server)
                kills += 1
            target = acked(loader) + 400
            wait_until(lambda t=target: acked(loader) >= t, 120, "events acknowledged")
            crash_gunicorn(server)
            kills += 1
            target = acked(loader) + 400
            wait_until(lambda t=target: acked(loader) >= t, 120, "events after the crash")
        figures = check_log(server, agent.agent_id, loader.tally.acked)
        tally = loader.tally
        report(
            f"battery crash: {figures['acked']} events acknowledged, {kills} SIGKILLs "
            f"(2 workers, 1 master and its workers), {figures['records']} records, "
            f"0 lost, 0 duplicated, verify_audit OK; responses {dict(tally.statuses)}, "
            f"connection errors {tally.connection_errors}"
        )
        assert not tally.non_json_errors, tally.non_json_errors[:5]


@pytest.fixture
def private_pg():
    if shutil.which("runuser") is None:
        pytest.skip("needs runuser to start a private PostgreSQL as the postgres user")
    cluster = PrivatePostgres()
    cluster.init()
    yield cluster
    cluster.destroy()


def test_postgres_restart_under_load_is_503_json_and_recovers(private_pg):
    with battery_server(private_pg.url, "battery_bench") as server:
        agent = server.register_agent("battery-pg")
        restarts = 0
        with Loader(agent, threads=2, batch=20) as loader:
            for _ in range(2):
                target = acked(loader) + 300
                wait_until(lambda t=target: acked(loader) >= t, 120, "events acknowledged")
                private_pg.stop("fast")
                # while it is down, clients get 503 database_unavailable (or no
                # connection at all while a worker is between requests)
                before = loader.tally.codes["database_unavailable"]
                wait_until(
                    lambda b=before: loader.tally.codes["database_unavailable"] > b,
                    60,
                    "a 503 database_unavailable during the outage",
                )
                time.sleep(1)
                private_pg.start()
                restarts += 1
            # the same gunicorn recovers: new batches are acknowledged again
            target = acked(loader) + 300
            wait_until(lambda t=target: acked(loader) >= t, 120, "events after the restarts")
        tally = loader.tally
        errors = {s: n for s, n in tally.statuses.items() if s != 201}
        assert set(errors) <= {503}, tally.statuses
        assert set(tally.codes) <= {"database_unavailable"}, tally.codes
        assert not tally.non_json_errors, tally.non_json_errors[:5]
        figures = check_log(server, agent.agent_id, tally.acked)
        report(
            f"battery postgres: {restarts} restarts under load, {figures['acked']} events "
            f"acknowledged, 0 lost, 0 duplicated, verify_audit OK; "
            f"{errors.get(503, 0)} answers 503 database_unavailable (all JSON), "
            f"connection errors {tally.connection_errors}, gunicorn not restarted"
        )
