"""The server every HTTP benchmark runs against: a fresh PostgreSQL database,
migrated, with a risk manager, behind gunicorn on 127.0.0.1.

    with BenchServer() as server:
        bot = server.register_agent("bench-bot-1")
        status, body = bot.client().request("POST", "/api/v1/events/", payload)

Leaving the block stops gunicorn (SIGTERM to the master, then SIGKILL to
its process group if it has not exited), also on errors and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from compliance_client.signing import Signer

from .core import HttpClient, child_pids, machine_cpu_seconds, process_cpu_seconds

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
RISK_MANAGER = "bench-rita"


def _venv_bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    fallback = REPO / ".venv" / "bin" / name
    if fallback.exists():
        return str(fallback)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found next to {sys.executable} nor in .venv/bin")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class ServerConfig:
    """Defaults for a 2-core machine that also runs PostgreSQL and the
    clients. Overridable from the command line (python -m bench --help)."""

    pg_url: str = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    db_name: str = os.environ.get("BENCH_DB_NAME", "compliance_bench")
    # Three sync workers: every write queues for the log head lock (and a gate
    # decision for the firm lock), so a fourth worker on two cores adds CPU
    # contention for the lock holder, not throughput. Measured 2/3/4 workers:
    # single-event p99 19/18/34 ms, gate p99 23/27/54 ms, batch 6.5k/7.3k/7.4k events/s.
    workers: int = 3
    worker_class: str = "sync"
    threads: int = 1
    port: int = 0  # 0: pick a free one
    conn_max_age: int = 600
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if "bench" not in self.db_name:
            # The database is dropped at every run: never let a typo drop a real one.
            raise ValueError(
                f"refusing to use database {self.db_name!r}: its name must contain 'bench'"
            )
        if not self.pg_url.startswith(
            ("postgres://postgres@127.0.0.1", "postgres://postgres@localhost")
        ):
            raise ValueError(
                "benchmarks use the local PostgreSQL only (postgres://postgres@127.0.0.1:5432)"
            )


@dataclass
class BenchAgent:
    """A registered bot: its signer (picklable parts only, so client
    processes can rebuild it) and API key."""

    agent_id: str
    private_key: bytes
    api_key: str
    key_id: str
    base_url: str

    def signer(self) -> Signer:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return Signer(self.agent_id, Ed25519PrivateKey.from_private_bytes(self.private_key))

    def client(self) -> HttpClient:
        return HttpClient(self.base_url, {"Authorization": f"Bearer {self.api_key}"})


class BenchServer:
    def __init__(self, config: ServerConfig | None = None, *, log: Any = None):
        self.config = config or ServerConfig()
        self.port = self.config.port or _free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.database_url = f"{self.config.pg_url.rstrip('/')}/{self.config.db_name}"
        self.var_dir = Path(tempfile.mkdtemp(prefix="compliance-bench-"))
        self.password = secrets.token_urlsafe(18)
        self.env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "DATABASE_CONN_MAX_AGE": str(self.config.conn_max_age),
            "DJANGO_SETTINGS_MODULE": "compliance_site.settings",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": HOST,
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_DEBUG": "0",
            "COMPLIANCE_VAR_DIR": str(self.var_dir),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **self.config.extra_env,
        }
        self.env.pop("COMPLIANCE_TESTING", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.var_dir / "gunicorn.log"
        self._log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self._token: str | None = None
        self.setup_seconds: dict[str, float] = {}

    # -- lifecycle ------------------------------------------------------------

    def __enter__(self) -> BenchServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        t = time.monotonic()
        self.reset_database()
        self.setup_seconds["create_database"] = time.monotonic() - t
        t = time.monotonic()
        self.manage("migrate", "--noinput", timeout=300)
        self.setup_seconds["migrate"] = time.monotonic() - t
        self.manage(
            "create_user", RISK_MANAGER, "--role", "risk_manager", "--noinput",
            env={"DJANGO_USER_PASSWORD": self.password},
        )  # fmt: skip
        t = time.monotonic()
        self.start_gunicorn()
        self.setup_seconds["gunicorn_ready"] = time.monotonic() - t

    def reset_database(self) -> None:
        import psycopg

        name = self.config.db_name
        with psycopg.connect(f"{self.config.pg_url.rstrip('/')}/postgres", autocommit=True) as conn:
            # Another benchmark run may be using it right now (several people
            # share this machine): wait for it a little, never kill it.
            deadline = time.monotonic() + 15
            while True:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
                ).fetchone()
                if not row or row[0] == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"database {name} is in use by {row[0]} connection(s), probably another "
                        "benchmark run: wait for it, or pass --db-name compliance_bench_<something>"
                    )
                time.sleep(1)
            self._log(f"bench: dropping and creating database {name}")
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')

    def django_here(self) -> None:
        """A fresh, migrated benchmark database, and Django set up in this
        process against it (for the in-process profilers)."""
        self.reset_database()
        self.manage("migrate", "--noinput", timeout=300)
        self.django_setup()

    def django_setup(self) -> None:
        """Django set up in this process against the benchmark database as it is."""
        os.environ.update(
            {
                k: v
                for k, v in self.env.items()
                if k.startswith(("DJANGO_", "DATABASE_", "COMPLIANCE_", "LOG_"))
            }
        )
        import django

        django.setup()

    def manage(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
        cmd = [sys.executable, str(REPO / "manage.py"), *args]
        proc = subprocess.run(
            cmd,
            cwd=REPO,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            command = " ".join(args)
            raise RuntimeError(
                f"manage.py {command} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc.stdout

    def gunicorn_command(self) -> list[str]:
        c = self.config
        cmd = [
            _venv_bin("gunicorn"), "compliance_site.wsgi:application",
            "--bind", f"{HOST}:{self.port}",
            "--workers", str(c.workers),
            "--worker-class", c.worker_class,
            "--backlog", "2048",
            "--timeout", "120",
            "--graceful-timeout", "10",
            "--keep-alive", "30",
            "--log-level", "warning",
            "--error-logfile", str(self.log_path),
            "--chdir", str(REPO),
        ]  # fmt: skip
        if c.worker_class == "gthread":
            cmd += ["--threads", str(c.threads)]
        return cmd

    def start_gunicorn(self, ready_timeout: float = 60) -> None:
        cmd = self.gunicorn_command()
        self._log(f"bench: starting {' '.join(cmd[1:6])} ... on {self.base_url}")
        self.process = subprocess.Popen(
            cmd, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, killed as one if it hangs
        )  # fmt: skip
        deadline = time.monotonic() + ready_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                client = HttpClient(self.base_url, timeout=5)
                status, _ = client.request("GET", "/healthz")
                client.close()
                if status in (200, 503):  # answering; 503 only means a dependency check failed
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"gunicorn not answering after {ready_timeout:.0f}s:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            self._log("bench: stopping gunicorn")
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._log("bench: gunicorn did not stop in 20s, killing its process group")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        shutil.rmtree(self.var_dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no gunicorn log)"

    # -- helpers for benchmarks ------------------------------------------------

    def client(self, token: str | None = None) -> HttpClient:
        return HttpClient(self.base_url, {"Authorization": f"Bearer {token}"} if token else None)

    def request_json(
        self, method: str, path: str, data: Any = None, *, token: str | None = None
    ) -> tuple[int, Any]:
        client = self.client(token)
        try:
            status, body = client.request(
                method, path, json.dumps(data).encode() if data is not None else None
            )
        finally:
            client.close()
        return status, json.loads(body) if body else None

    def token(self) -> str:
        """A bearer token for the risk manager."""
        if self._token is None:
            status, body = self.request_json(
                "POST", "/api/v1/auth/token/", {"username": RISK_MANAGER, "password": self.password}
            )
            if status != 201:
                raise RuntimeError(f"token request failed: {status} {body}")
            self._token = body["token"]
        return self._token

    def register_agent(self, agent_id: str) -> BenchAgent:
        signer = Signer.generate(agent_id)
        status, body = self.request_json(
            "POST",
            "/api/v1/agents/",
            {
                "agent_id": agent_id,
                "name": f"benchmark {agent_id}",
                "public_key": signer.public_key_b64,
            },
            token=self.token(),
        )
        if status != 201:
            raise RuntimeError(f"registering {agent_id} failed: {status} {body}")
        if body.get("key_id") not in (None, signer.key_id):
            raise RuntimeError(f"server key_id {body['key_id']} != client key_id {signer.key_id}")
        raw = signer.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return BenchAgent(agent_id, raw, body["api_key"], signer.key_id, self.base_url)

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """A direct look at the benchmark database (sanity checks, and setup the
        benchmarks write before their clocks start)."""
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def cpu_snapshot(self) -> dict[str, float]:
        """CPU seconds used so far by gunicorn (master and workers), by the
        PostgreSQL backends serving the benchmark database, and by the whole
        machine. Differences of two snapshots show where a run's CPU went."""
        gunicorn = 0.0
        if self.process is not None:
            gunicorn = sum(
                process_cpu_seconds(p) for p in [self.process.pid, *child_pids(self.process.pid)]
            )
        backends = self.sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            self.config.db_name,
        )
        busy, total = machine_cpu_seconds()
        return {
            "gunicorn": gunicorn,
            "postgres": sum(process_cpu_seconds(pid) for (pid,) in backends),
            "machine_busy": busy,
            "machine_total": total,
        }
