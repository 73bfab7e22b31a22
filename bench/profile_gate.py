"""python -m bench.profile_gate: where a server process spends its time on
POST /api/v1/orders/, in one process, on PostgreSQL.

It uses a benchmark database (BENCH_DB_NAME, dropped, recreated, migrated),
applies the gate benchmark's config, registers an agent, fills the orders
table with --history orders (the gate used to scan the agent's orders of the
last hour), then drives pre-signed order intents through Django's WSGI
handler (what a gunicorn worker calls, minus the socket). It prints every
phase's wall and CPU time per request, each SQL statement kind, and the
cProfile top functions.

    BENCH_DB_NAME=compliance_bench_profile python -m bench.profile_gate [--orders 400]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from .profile_ingest import SQL_HELP, PhaseTimer, post_through, profile_requests, sql_timing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_gate")
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument(
        "--history", type=int, default=20000, help="orders of the last hour stored first"
    )
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sql-only", action="store_true", help="print one request's SQL, stop")
    parser.add_argument(
        "--cpu", action="store_true", help="cProfile on CPU time (robust to a busy machine)"
    )
    parser.add_argument("--out", help="also write the cProfile stats to this file")
    parser.add_argument("--sql", action="store_true", help=SQL_HELP)
    args = parser.parse_args(argv)

    from .core import process_cpu_seconds
    from .gate import CONFIG_SCRIPT, _intents
    from .server import BenchAgent, BenchServer

    server = BenchServer()
    server.django_here()
    server.manage("shell", "-c", CONFIG_SCRIPT)
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.db.backends.base.base import BaseDatabaseWrapper

    from accounts.authentication import BearerAuthentication
    from accounts.services import user_create
    from audit.services import log as log_mod
    from audit.services.agents import agent_register
    from compliance_client.signing import Signer
    from compliance_site import db as db_mod
    from surveillance import store as store_mod
    from surveillance.services import gate as gate_mod
    from surveillance.services import risk as risk_mod

    rita = user_create(username="profile-rita", role="risk_manager", password=server.password)
    signer = Signer.generate("profile-gate")
    agent, key, api_key = agent_register(
        agent_id="profile-gate",
        name="profile-gate",
        public_key=signer.public_key_b64,
        owner=None,
        acting_user=rita,
    )
    raw = signer.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    bench_agent = BenchAgent("profile-gate", raw, api_key, key.key_id, server.base_url)
    handler = WSGIHandler()

    def through_wsgi(bodies: list[bytes]) -> float:
        return post_through(handler, bodies, api_key, "/api/v1/orders/")

    try:
        if args.history:
            # A busy bot's last hour, inserted directly (the gate's own path would take minutes).
            from surveillance.models import Order

            now = log_mod.now_us()
            step = 3_000_000_000 // args.history
            Order.objects.bulk_create(
                [
                    Order(
                        agent=agent, order_id=f"hist-{n}", market=f"M-{n % 20}", side="buy",
                        order_type="limit", quantity=1, price=100, status="filled",
                        decision="accepted", config_hash="", seq=-1,
                        created_at_us=now - 3_000_000_000 + n * step, updated_at_us=now,
                    )
                    for n in range(args.history)
                ],
                batch_size=2000,
            )  # fmt: skip
            from django.core.management import call_command

            call_command("shell", "-c", _REBUILD_SCRIPT)
        through_wsgi(_intents(bench_agent, "warm", 20))
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            through_wsgi(_intents(bench_agent, "one", 21)[-1:])
        print(f"\n=== the {len(captured)} SQL statements of one request ===")
        for query in captured.captured_queries:
            print(f"  {(query['sql'] or '(a prepared statement)')[:150]}")
        if args.sql_only:
            return 0
        cpu0 = time.thread_time()
        plain = through_wsgi(_intents(bench_agent, "plain", args.orders))
        plain_cpu = time.thread_time() - cpu0
        print(
            f"unprofiled: {plain / args.orders * 1000:.2f} ms/request in one process,"
            f" {plain_cpu / args.orders * 1000:.2f} ms of CPU"
        )

        timer = PhaseTimer()
        phases = [
            (BearerAuthentication, "authenticate", "auth (API key lookup)"),
            (gate_mod, "_check_intent", "check_items (JCS, Ed25519, schema, key)"),
            (gate_mod, "_replay", "replay lookup (event_id)"),
            (gate_mod, "decide_submission", "decide_submission (transaction, fused COMMIT)"),
            (gate_mod, "limits_current", "  limits_current"),
            (gate_mod, "limits_in_force", "  limits_in_force"),
            (store_mod, "gate_lock_and_read", "  locks + snapshot (one round trip)"),
            (risk_mod, "lock_firm", "  lock_firm (wait + lock)"),
            (gate_mod, "snapshot_for", "  snapshot_for (reads under the lock)"),
            (gate_mod, "append", "  log.append (head lock, hashes, COPY)"),
            (gate_mod, "evaluate", "  evaluate (the checks)"),
            (log_mod, "_append", "  records: hashes, Merkle, SQL"),
            (store_mod, "gate_write", "  store.gate_write (records, order, counters, exposure)"),
            (db_mod.Batch, "run", "  Batch.run (each a round trip)"),
            (risk_mod, "reservation", "  risk.reservation"),
            (BaseDatabaseWrapper, "commit", "COMMIT"),
        ]
        timer.wrap_all(phases)
        # How long the firm lock is held: from asking for it (no wait in one
        # process) to the end of COMMIT.
        held: dict[str, float] = {}
        lock_and_read, commit = store_mod.gate_lock_and_read, BaseDatabaseWrapper.commit

        def lock_and_read_timed(*args: Any) -> Any:
            held["since"] = time.perf_counter()
            return lock_and_read(*args)

        def commit_timed(self: Any) -> Any:
            try:
                return commit(self)
            finally:
                since = held.pop("since", None)
                if since is not None:
                    timer.add("firm lock held (to end of COMMIT)", time.perf_counter() - since)

        store_mod.gate_lock_and_read = lock_and_read_timed  # type: ignore[assignment]
        BaseDatabaseWrapper.commit = commit_timed  # type: ignore[method-assign]
        pg_pid = connection.cursor().connection.info.backend_pid
        pg0, cpu0 = process_cpu_seconds(pg_pid), time.thread_time()
        with sql_timing(connection, timer, args.sql):
            total = through_wsgi(_intents(bench_agent, "phases", args.orders))
        total_cpu, pg_cpu = time.thread_time() - cpu0, process_cpu_seconds(pg_pid) - pg0
        store_mod.gate_lock_and_read = lock_and_read  # type: ignore[assignment]
        BaseDatabaseWrapper.commit = commit  # type: ignore[method-assign]
        timer.restore()
        print(f"\n=== phases ({args.orders} orders), unprofiled, one process ===")
        timer.print(total, total_cpu, pg_cpu, args.orders, args.orders)

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, generic_plans, custom_plans, left(statement, 70)"
                " FROM pg_prepared_statements ORDER BY length(name), name"
            )
            print("prepared statements on this connection (generic, custom plans):")
            for row in cursor.fetchall():
                print(f"  {row}")
        bodies = _intents(bench_agent, "prof", args.orders)
        profile_requests(
            lambda: through_wsgi(bodies), args.orders, cpu=args.cpu, top=args.top, out=args.out
        )
        print(json.dumps({"ms_per_request": round(plain / args.orders * 1000, 3)}))
    finally:
        from django.db import connections

        connections.close_all()
        server.stop()
    return 0


# Counters kept incrementally (if this version of the gate has them) are
# rebuilt after the direct inserts above.
_REBUILD_SCRIPT = """
try:
    from surveillance.services.counters import counters_rebuild
except ImportError:
    pass
else:
    counters_rebuild()
"""


if __name__ == "__main__":
    sys.exit(main())
