"""A production-like stack for the battery: gunicorn (DEBUG off) on PostgreSQL,
driven over HTTP by client threads that send signed batches and remember what
was acknowledged; and a private PostgreSQL cluster a test may stop and start.

The gunicorn side reuses the benchmark server (bench/server.py): a fresh
database whose name contains "bench", migrated, a risk manager, three workers.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.core import HttpClient, child_pids
from bench.server import BenchAgent, BenchServer, ServerConfig, _free_port


def battery_server(pg_url: str, db_name: str, **extra_env: str) -> BenchServer:
    return BenchServer(
        ServerConfig(pg_url=pg_url, db_name=db_name, extra_env=extra_env),
        log=lambda msg: print(msg, flush=True),
    )


def shared_pg() -> tuple[str, str]:
    """The machine's PostgreSQL (from DATABASE_URL) and a database name for the
    battery derived from the suite's, so parallel suites do not collide."""
    url = urlsplit(os.environ.get("DATABASE_URL", ""))
    base = f"{url.scheme}://{url.netloc}" if url.netloc else "postgres://postgres@127.0.0.1:5432"
    name = (url.path.strip("/") or "compliance") + "_battery_bench"
    return base, name


@dataclass
class Tally:
    """What the clients saw."""

    acked: set[str] = field(default_factory=set)  # event_ids answered 201
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    non_json_errors: list[str] = field(default_factory=list)
    connection_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Loader:
    """Client threads, each sending signed batches of new events in a loop and
    resending a batch until it is acknowledged (the SDK's behaviour: event_id
    is the idempotency key)."""

    def __init__(self, agent: BenchAgent, *, threads: int = 2, batch: int = 20):
        self.agent = agent
        self.threads = threads
        self.batch = batch
        self.tally = Tally()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def __enter__(self) -> Loader:
        for n in range(self.threads):
            thread = threading.Thread(target=self._run, args=(n,), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout=120)

    def _items(self, signer: Any) -> list[dict[str, Any]]:
        return [
            signer.item(
                "SYSTEM_ERROR",
                {"error_type": "battery", "message": f"m-{uuid.uuid4().hex[:8]}"},
            )
            for _ in range(self.batch)
        ]

    def _run(self, n: int) -> None:
        signer = self.agent.signer()
        client = HttpClient(self.agent.base_url, self.agent.client().headers, timeout=30)
        items = self._items(signer)
        while not self._stop.is_set():
            try:
                status, body = client.request(
                    "POST", "/api/v1/events/", json.dumps({"events": items}).encode()
                )
            except (OSError, http.client.HTTPException):
                # Refused, reset, or the answer cut off mid-body (a worker
                # killed while writing it): not acknowledged, so the same
                # batch goes again, as the SDK's outbox does.
                with self.tally.lock:
                    self.tally.connection_errors += 1
                client.close()
                client = HttpClient(self.agent.base_url, self.agent.client().headers, timeout=30)
                time.sleep(0.05)
                continue
            with self.tally.lock:
                self.tally.statuses[status] += 1
                if status != 201:
                    try:
                        self.tally.codes[json.loads(body)["code"]] += 1
                    except (ValueError, KeyError, TypeError):
                        self.tally.non_json_errors.append(f"{status}: {body[:120]!r}")
            if status == 201:
                with self.tally.lock:
                    self.tally.acked.update(i["event_id"] for i in items)
                items = self._items(signer)  # the next batch is new
            else:
                time.sleep(0.05)  # the same batch again, as the SDK's outbox does
        client.close()


def kill_worker(server: BenchServer) -> int:
    assert server.process is not None
    workers = child_pids(server.process.pid)
    assert workers, "gunicorn has no workers"
    os.kill(workers[0], signal.SIGKILL)
    return workers[0]


def crash_gunicorn(server: BenchServer) -> None:
    """SIGKILL the master, then whatever is left of its process group (a machine
    losing the process tree), and start it again."""
    assert server.process is not None
    pid = server.process.pid
    os.kill(pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    server.start_gunicorn()


def check_log(server: BenchServer, agent_id: str, acked: set[str]) -> dict[str, int]:
    """Every acknowledged event stored exactly once, seqs contiguous, and
    `manage.py verify_audit` clean. Returns the figures."""
    rows = server.sql(
        "SELECT event_id, count(*) FROM audit_record WHERE agent_id = %s GROUP BY event_id",
        agent_id,
    )
    stored = dict(rows)
    missing = [e for e in acked if e not in stored]
    twice = [e for e, n in stored.items() if n != 1]
    assert not missing, f"{len(missing)} acknowledged events are missing, e.g. {missing[:3]}"
    assert not twice, f"{len(twice)} events stored more than once, e.g. {twice[:3]}"
    [(count, low, high)] = server.sql("SELECT count(*), min(seq), max(seq) FROM audit_record")
    assert (low, high) == (0, count - 1), f"seqs not contiguous: {count} rows, {low}..{high}"
    server.manage("ensure_log_key")
    server.manage(
        "shell",
        "-c",
        "from audit.services.checkpoints import checkpoint_create; checkpoint_create(force=True)",
    )
    out = server.manage("verify_audit", timeout=600)
    assert out.startswith("OK"), out
    return {"acked": len(acked), "stored_for_agent": len(stored), "records": count}


# --- a private PostgreSQL ---------------------------------------------------------------


def pg_bin(name: str) -> str:
    found = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"{name} (PostgreSQL server binaries) not found")
    return found[-1]


class PrivatePostgres:
    """A throwaway cluster in a temporary directory on a free port, run as the
    postgres system user when this process is root (initdb refuses root)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="battery-pg-"))
        self.data = self.dir / "data"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}"

    def _run(self, *cmd: str, timeout: float = 120) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*prefix, *cmd],
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, user="postgres")
        self._run(
            pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self.start()

    def start(self) -> None:
        self._run(
            pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
            "-l", str(self.dir / "server.log"),
            "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=50",
            "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-m", mode, "stop")

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
