"""python -m bench.profile_proofs: where a server process spends its time on
the proof endpoints (GET /api/v1/log/proofs/inclusion/ and consistency/), in
one process, on PostgreSQL.

It grows the benchmark database's log to --size records through the same
path as the proofs benchmark (bench.proofs.child_seed: really signed bot
events through `audit.services.append`) and keeps it: a later run on a log
that is already large enough reuses it instead of seeding again (--fresh
drops it first). Then it asks for proofs at random positions against the
whole tree, as the benchmark does, through Django's WSGI handler (what a
gunicorn worker calls, minus the socket): p50/p99 per request, every phase's
wall and CPU time, the buffer reads of the tables the proofs read (a read is
a page PostgreSQL did not hold in shared_buffers), and the cProfile top.
--http also serves the same database with gunicorn and runs the benchmark's
own client loop (bench.proofs.measure) against it.

    BENCH_DB_NAME=compliance_bench_proof python -m bench.profile_proofs [--size 1000000]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from .profile_ingest import PhaseTimer, profile_requests, wsgi_environ

VIEWER = "profile-proofs-carol"
AGENT = "profile-proofs-bot"


def _statio(cursor: Any) -> dict[str, tuple[int, int]]:
    """(blocks read, blocks hit) per proof table and its indexes, so far."""
    cursor.execute(
        "SELECT relname, coalesce(heap_blks_read, 0) + coalesce(idx_blks_read, 0),"
        " coalesce(heap_blks_hit, 0) + coalesce(idx_blks_hit, 0)"
        " FROM pg_statio_user_tables WHERE relname IN ('audit_record', 'audit_merklenode')"
    )
    return {name: (read, hit) for name, read, hit in cursor.fetchall()}


def _storage_reads(pid: int) -> int:
    """Bytes a process has had read from storage, not from the page cache
    (0 where /proc does not tell)."""
    try:
        with open(f"/proc/{pid}/io") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("read_bytes:"))
    except (OSError, StopIteration):
        return 0


def _percentiles(samples: list[float]) -> str:
    from .core import percentile

    return (
        f"p50 {percentile(samples, 50) * 1000:.2f} ms, p90 {percentile(samples, 90) * 1000:.2f} ms,"
        f" p99 {percentile(samples, 99) * 1000:.2f} ms, max {max(samples) * 1000:.2f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_proofs")
    parser.add_argument("--size", type=int, default=1_000_000, help="log size to prove against")
    parser.add_argument("--requests", type=int, default=400, help="proofs of each kind")
    parser.add_argument("--fresh", action="store_true", help="drop the database and seed anew")
    parser.add_argument("--http", action="store_true", help="also measure through gunicorn")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", help="also write the cProfile stats to this file")
    parser.add_argument(
        "--cpu", action="store_true", help="cProfile on CPU time (robust to a busy machine)"
    )
    args = parser.parse_args(argv)

    from . import proofs
    from .core import process_cpu_seconds
    from .server import BenchServer

    server = BenchServer()
    if args.fresh or not _has_log(server):
        server.django_here()
    else:
        server.django_setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.db.backends.base.base import BaseDatabaseWrapper
    from rest_framework.renderers import JSONRenderer

    from accounts.authentication import BearerAuthentication
    from accounts.services import token_issue
    from audit.models import Log
    from audit.services import tree as tree_mod
    from compliance_client import merkle

    token, _ = token_issue(user=_user_once(VIEWER, "viewer"))
    size = Log.objects.get(name="default").size
    if size < args.size:
        private_b64 = _seeding_agent(server)
        server.manage("ensure_log_key")  # the seed ends with a signed checkpoint
        print(f"growing the log from {size:,} to {args.size:,} records ...", flush=True)
        seeded = proofs._child(server, "seed", private_b64, AGENT, str(args.size))
        size = seeded["size"]
        print(f"  +{seeded['added']:,} in {seeded['seconds']}s", flush=True)
    print(f"log of {size:,} records (database {server.config.db_name})")
    handler = WSGIHandler()

    def requests(count: int, salt: int = 0) -> list[str]:
        rng = random.Random(size + salt)
        base = "/api/v1/log/proofs"
        out = []
        for _ in range(count):
            out.append(f"{base}/inclusion/?seq={rng.randrange(size)}&tree_size={size}")
            out.append(f"{base}/consistency/?first={rng.randrange(1, size)}&second={size}")
        return out

    def through_wsgi(urls: list[str], timings: dict[str, list[float]] | None = None) -> float:
        start = time.perf_counter()
        for url in urls:
            path, query = url.split("?", 1)
            environ = wsgi_environ(b"", token, path)
            environ.update(REQUEST_METHOD="GET", QUERY_STRING=query, CONTENT_LENGTH="")
            status: list[str] = []

            def start_response(
                s: str, h: Any, exc_info: Any = None, status: list[str] = status
            ) -> None:
                status.append(s)

            t0 = time.perf_counter()
            out = b"".join(handler(environ, start_response))
            if timings is not None:
                timings[path.split("/")[-2]].append(time.perf_counter() - t0)
            if not status[0].startswith("200"):
                raise RuntimeError(f"{url}: {status[0]} {out[:300]!r}")
        return time.perf_counter() - start

    try:
        through_wsgi(requests(20, salt=1))  # connection, imports, prepared statements
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
            io0 = _statio(cursor)
        disk0 = _storage_reads(backend)
        timings: dict[str, list[float]] = {"inclusion": [], "consistency": []}
        pg0, cpu0 = process_cpu_seconds(backend), time.thread_time()
        plain = through_wsgi(requests(args.requests), timings)
        cpu, pg_cpu = time.thread_time() - cpu0, process_cpu_seconds(backend) - pg0
        n = 2 * args.requests
        print(f"\n=== unprofiled, in one process, {n} requests ===")
        for kind, samples in timings.items():
            print(f"{kind:12} {_percentiles(samples)}")
        ms = {k: round(v / n * 1000, 2) for k, v in (("wall", plain), ("cpu", cpu), ("pg", pg_cpu))}
        print(f"per request: wall {ms['wall']} ms, this process's CPU {ms['cpu']} ms,"
              f" PostgreSQL backend CPU {ms['pg']} ms")  # fmt: skip
        time.sleep(0.6)  # pg_statio is flushed by the backend at most every 500 ms
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_force_next_flush()")
            io1 = _statio(cursor)
        for name, (read, hit) in sorted(io1.items()):
            r0, h0 = io0.get(name, (0, 0))
            print(f"{name:18} blocks per request: {(read - r0) / n:6.2f} read (not in "
                  f"shared_buffers), {(hit - h0) / n:6.2f} hit")  # fmt: skip
        disk = (_storage_reads(backend) - disk0) / n / 8192
        print(f"of the blocks read, from storage rather than the OS page cache: {disk:.2f}/request")

        timer = PhaseTimer()
        timer.wrap_all([
            (BearerAuthentication, "authenticate", "auth (token, user, role)"),
            (tree_mod, "_log", "  log size"),
            (tree_mod, "_fetch_stored", "  node reads"),
            (tree_mod, "_read", "  log size and node reads, one round trip"),
            (merkle, "root_from_leaf_hashes", "  inner nodes from a tile"),
            (tree_mod, "inclusion_proof", "inclusion_proof (service)"),
            (tree_mod, "consistency_proof", "consistency_proof (service)"),
            (JSONRenderer, "render", "render JSON response"),
            (BaseDatabaseWrapper, "connect", "  connect to PostgreSQL"),
        ])  # fmt: skip
        cpu0 = time.thread_time()
        with connection.execute_wrapper(timer.sql):
            total = through_wsgi(requests(args.requests, salt=2))
        total_cpu = time.thread_time() - cpu0
        timer.restore()
        print(f"\n=== phases ({n} requests), unprofiled, one process ===")
        timer.print(total, total_cpu, 0.0, n, n)

        urls = requests(args.requests, salt=3)
        profile_requests(lambda: through_wsgi(urls), n, cpu=args.cpu, top=args.top, out=args.out)

        if args.http:
            _over_http(server, token, size, args.requests, proofs._proofs)
        print(json.dumps({"ms_per_request": round(plain / n * 1000, 3)}))
    finally:
        from django.db import connections

        connections.close_all()
        server.stop()
    return 0


def _has_log(server: Any) -> bool:
    try:
        return bool(server.sql("SELECT 1 FROM audit_log WHERE name = 'default'"))
    except Exception:  # no database, or not migrated
        return False


def _seeding_agent(server: Any) -> str:
    """A registered agent to sign the seeded events; its private key, base64."""
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    from accounts.models import Agent
    from audit.services.agents import agent_register
    from compliance_client.signing import Signer

    if Agent.objects.filter(agent_id=AGENT).exists():
        raise SystemExit(
            f"{AGENT} exists but its private key is gone: grow the log with --fresh instead"
        )
    signer = Signer.generate(AGENT)
    admin = _user_once("profile-proofs-rita", "risk_manager")
    agent_register(
        agent_id=AGENT, name=AGENT, public_key=signer.public_key_b64, owner=None, acting_user=admin
    )
    raw = signer.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


def _user_once(username: str, role: str) -> Any:
    from accounts.models import User
    from accounts.services import user_create

    found = User.objects.filter(username=username).first()
    return found or user_create(username=username, role=role, password=None)


def _over_http(
    server: Any, token: str, size: int, requests: int, measure: Callable[..., dict[str, Any]]
) -> None:
    from .core import wait_for_quiet

    server.start_gunicorn()
    wait_for_quiet()
    figures = measure(server, token, size, requests)
    print(f"\n=== over HTTP (gunicorn, one client, the benchmark's loop) ===\n{figures}")


if __name__ == "__main__":
    sys.exit(main())
