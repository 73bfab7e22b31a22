"""python -m bench.profile_ingest: where a server process spends its time on
POST /api/v1/events/, in one process under cProfile, on PostgreSQL.

It uses the benchmark database (dropped, recreated, migrated), registers an
agent, and drives the same pre-signed bodies as the ingest benchmark through
Django's WSGI handler (what a gunicorn worker calls, minus the socket), and
through `ingest_events` alone. It prints wall time per request and per event
and the top functions by own time and by cumulative time.

    python -m bench.profile_ingest [--batches 60] [--singles 300] [--top 35] [--out DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def wsgi_environ(body: bytes, api_key: str, path: str = "/api/v1/events/") -> dict[str, Any]:
    """A POST of `body` as a bot, the way gunicorn hands it to Django."""
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": f"Bearer {api_key}",
        "HTTP_HOST": "127.0.0.1",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def post_through(
    handler: Any, bodies: list[bytes], api_key: str, path: str = "/api/v1/events/"
) -> float:
    """POST each body through a Django WSGI handler in this process (what a
    gunicorn worker calls, minus the socket); seconds taken. Anything but a
    201 stops the run."""
    start = time.perf_counter()
    for body in bodies:
        status: list[str] = []

        def start_response(
            s: str, h: Any, exc_info: Any = None, status: list[str] = status
        ) -> None:
            status.append(s)

        out = b"".join(handler(wsgi_environ(body, api_key, path), start_response))
        if not status[0].startswith("201"):
            raise RuntimeError(f"{status[0]} {out[:300]!r}")
    return time.perf_counter() - start


def print_top(profile: cProfile.Profile, top: int) -> None:
    """The `top` functions by own time, then by cumulative time."""
    for order in ("tottime", "cumulative"):
        stream = io.StringIO()
        pstats.Stats(profile, stream=stream).strip_dirs().sort_stats(order).print_stats(top)
        text = stream.getvalue()
        print(text[text.index("   ncalls") :] if "   ncalls" in text else text)


def profile_requests(
    run: Callable[[], float], requests: int, *, cpu: bool, top: int, out: str | None
) -> None:
    """cProfile `run` (it returns its wall seconds for `requests` requests) and
    print the top functions; `cpu` profiles on this thread's CPU time."""
    profile = cProfile.Profile(time.thread_time) if cpu else cProfile.Profile()
    profile.enable()
    seconds = run()
    profile.disable()
    if out:
        profile.dump_stats(out)
    print(f"\n=== cProfile: {seconds / requests * 1000:.2f} ms/request (profiled) ===")
    print_top(profile, top)


def _report(
    title: str,
    profile: cProfile.Profile,
    seconds: float,
    requests: int,
    events: int,
    top: int,
    out: Path | None,
) -> None:
    print(f"\n=== {title}: {requests} requests, {events} events in {seconds:.2f}s "
          f"-> {seconds / requests * 1000:.2f} ms/request, {seconds / events * 1e6:.0f} us/event, "
          f"{events / seconds:,.0f} events/s in one process (profiled) ===")  # fmt: skip
    print_top(profile, top)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / (title.replace(" ", "_").replace("/", "") + ".prof")
        profile.dump_stats(path)
        print(f"(raw profile: {path}; view with python -m pstats or snakeviz)")


class PhaseTimer:
    """Wall time per phase of a request, without cProfile's distortion: wraps
    the named functions (a few per request, so the wrappers cost nothing
    measurable) and times every SQL statement by kind."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self._undo: list[Any] = []

    def add(self, name: str, seconds: float, cpu: float = 0.0) -> None:
        self.totals[name] = self.totals.get(name, 0.0) + seconds
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu
        self.counts[name] = self.counts.get(name, 0) + 1

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        original = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - start, time.thread_time() - cpu)

        setattr(owner, attr, timed)
        self._undo.append((owner, attr, original))

    def wrap_all(self, phases: list[tuple[Any, str, str]]) -> None:
        """wrap() each (owner, attribute, name) the code has; versions differ."""
        for owner, attr, name in phases:
            if hasattr(owner, attr):
                self.wrap(owner, attr, name)

    def wrap_list(self, hooks: list[Any], name: str) -> None:
        """Time the callables kept in a list (e.g. ingest's projection hooks)."""
        for i, hook in enumerate(list(hooks)):

            class Owner:
                pass

            holder = Owner()
            holder.fn = hook  # type: ignore[attr-defined]
            self.wrap(
                holder,
                "fn",
                f"{name}: {getattr(hook, '__module__', '')}.{getattr(hook, '__name__', hook)}",
            )
            hooks[i] = holder.fn  # type: ignore[attr-defined]
            self._undo.append((hooks, i, hook))

    def sql(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        words = sql.split(None, 3)
        kind = " ".join(words[:3]) if words[0].upper() == "INSERT" else words[0]
        if "FOR UPDATE" in sql:
            kind = "SELECT ... FOR UPDATE"
        elif words[0].upper() == "SELECT":
            kind = "SELECT " + sql.split(" FROM ", 1)[1].split()[0] if " FROM " in sql else "SELECT"
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return execute(sql, params, many, context)
        finally:
            self.add(f"  sql: {kind}", time.perf_counter() - start, time.thread_time() - cpu)

    def restore(self) -> None:
        for owner, attr, original in reversed(self._undo):
            if isinstance(owner, list):
                owner[attr] = original
            else:
                setattr(owner, attr, original)
        self._undo.clear()

    def print(
        self, total: float, total_cpu: float, pg_cpu: float, requests: int, events: int
    ) -> None:
        """Wall time (includes waiting for PostgreSQL) and this process's CPU time."""
        print(f"{'phase':56} {'wall ms/req':>11} {'wall us/ev':>10} {'cpu us/ev':>9} {'share':>6}")
        for name, seconds in sorted(self.totals.items(), key=lambda kv: -kv[1]):
            print(
                f"{name[:56]:56} {seconds / requests * 1000:11.2f} {seconds / events * 1e6:10.1f} "
                f"{self.cpu[name] / events * 1e6:9.1f} {seconds / total * 100:5.1f}%  "
                f"({self.counts[name] / requests:g}/request)"
            )
        print(
            f"{'total (WSGI call)':56} {total / requests * 1000:11.2f} "
            f"{total / events * 1e6:10.1f} {total_cpu / events * 1e6:9.1f} 100.0%"
        )
        label = "PostgreSQL backend CPU (its own process)"
        print(f"{label:56} {'':11} {'':10} {pg_cpu / events * 1e6:9.1f}")


SQL_HELP = (
    "also time each SQL statement; they then go through Django's cursor wrapper,"
    " slower than the hot paths' direct road, so the totals are not production's"
)


def sql_timing(connection: Any, timer: PhaseTimer, on: bool) -> Any:
    """Time every statement as a phase of its own (see SQL_HELP), or do nothing."""
    return connection.execute_wrapper(timer.sql) if on else contextlib.nullcontext()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_ingest")
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--singles", type=int, default=300)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--out", type=Path, default=None, help="also dump .prof files here")
    parser.add_argument("--sql", action="store_true", help=SQL_HELP)
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="cProfile on this thread's CPU time (robust to a busy machine; a syscall per call)",
    )
    args = parser.parse_args(argv)

    from .core import process_cpu_seconds
    from .ingest import BATCH_SIZE, signed_bodies
    from .server import BenchAgent, BenchServer

    server = BenchServer()
    server.django_here()
    from django.core.handlers.wsgi import WSGIHandler

    from accounts.models import Agent
    from accounts.services import user_create
    from audit.apis.events import parse_float
    from audit.services.agents import agent_register
    from audit.services.ingest import ingest_events
    from compliance_client.signing import Signer

    rita = user_create(username="profile-rita", role="risk_manager", password=server.password)

    def new_agent(agent_id: str) -> tuple[BenchAgent, Agent]:
        signer = Signer.generate(agent_id)
        agent, key, api_key = agent_register(
            agent_id=agent_id,
            name=agent_id,
            public_key=signer.public_key_b64,
            owner=None,
            acting_user=rita,
        )
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
        )

        raw = signer.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return BenchAgent(agent_id, raw, api_key, key.key_id, server.base_url), agent

    handler = WSGIHandler()

    def make_profile() -> cProfile.Profile:
        return cProfile.Profile(time.thread_time) if args.cpu else cProfile.Profile()

    def through_wsgi(bodies: list[bytes], api_key: str) -> float:
        return post_through(handler, bodies, api_key)

    try:
        bench_agent, _ = new_agent("profile-wsgi")
        through_wsgi(
            signed_bodies(bench_agent, "warm", 3, BATCH_SIZE), bench_agent.api_key
        )  # warm caches

        bodies = signed_bodies(bench_agent, "wsgi", args.batches, BATCH_SIZE)
        profile = make_profile()
        profile.enable()
        seconds = through_wsgi(bodies, bench_agent.api_key)
        profile.disable()
        _report(
            "batch via WSGI",
            profile,
            seconds,
            args.batches,
            args.batches * BATCH_SIZE,
            args.top,
            args.out,
        )

        # Unprofiled wall time (cProfile inflates call-heavy code).
        bodies = signed_bodies(bench_agent, "wsgi-plain", args.batches, BATCH_SIZE)
        plain = through_wsgi(bodies, bench_agent.api_key)
        print(f"unprofiled: {plain / args.batches * 1000:.2f} ms/request, "
              f"{plain / (args.batches * BATCH_SIZE) * 1e6:.0f} us/event")  # fmt: skip

        # Phases, unprofiled.
        from django.db import connection, connections
        from django.db.backends.base.base import BaseDatabaseWrapper
        from rest_framework.renderers import JSONRenderer

        from accounts.authentication import BearerAuthentication
        from audit.apis import events as events_api
        from audit.services import ingest as ingest_mod
        from audit.services import log as log_mod

        for label, size, count in (
            ("batch", BATCH_SIZE, args.batches),
            ("single", 1, args.singles),
        ):
            phase_agent, _ = new_agent(f"profile-phases-{label}")
            through_wsgi(signed_bodies(phase_agent, "warm", 2, size), phase_agent.api_key)
            bodies = signed_bodies(phase_agent, "phases", count, size)
            timer = PhaseTimer()
            timer.wrap(BearerAuthentication, "authenticate", "auth (API key lookup)")
            timer.wrap(events_api.StrictJSONParser, "parse", "parse JSON body")
            timer.wrap(
                ingest_mod, "check_items", "check_items (shape, JCS, Ed25519, schema, key query)"
            )
            timer.wrap(ingest_mod, "split_duplicates", "split_duplicates (event_id query)")
            timer.wrap(
                ingest_mod.CheckedItem, "pending", "CheckedItem.pending (JCS of data/source)"
            )
            timer.wrap(ingest_mod, "append", "log.append (lock, hash chain, inserts, head update)")
            timer.wrap(log_mod.PendingRecord, "body", "  PendingRecord.body")
            timer.wrap(log_mod.Record.objects, "bulk_create", "  Record bulk_create (Django + SQL)")
            timer.wrap(BaseDatabaseWrapper, "commit", "COMMIT")
            timer.wrap_list(ingest_mod._projection_hooks, "projection hook")
            timer.wrap(
                type(connections["default"]), "is_usable", "  connection health check (SELECT 1)"
            )
            timer.wrap(BaseDatabaseWrapper, "connect", "  connect to PostgreSQL")
            timer.wrap(JSONRenderer, "render", "render JSON response")
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend = cursor.fetchone()[0]
            pg0, cpu0 = process_cpu_seconds(backend), time.thread_time()
            with sql_timing(connection, timer, args.sql):
                total = through_wsgi(bodies, phase_agent.api_key)
            total_cpu, pg_cpu = time.thread_time() - cpu0, process_cpu_seconds(backend) - pg0
            timer.restore()
            print(f"\n=== phases, {label} ({size} event(s)/request), unprofiled, one process ===")
            timer.print(total, total_cpu, pg_cpu, count, count * size)

        service_agent, agent = new_agent("profile-service")
        batches = [
            json.loads(b, parse_float=parse_float)["events"]
            for b in signed_bodies(service_agent, "svc", args.batches, BATCH_SIZE)
        ]
        profile = make_profile()
        start = time.perf_counter()
        profile.enable()
        for items in batches:
            ingest_events(agent, items)
        profile.disable()
        seconds = time.perf_counter() - start
        _report(
            "ingest_events only",
            profile,
            seconds,
            args.batches,
            args.batches * BATCH_SIZE,
            args.top,
            args.out,
        )

        single_agent, _ = new_agent("profile-single")
        bodies = signed_bodies(single_agent, "single", args.singles, 1)
        profile = make_profile()
        profile.enable()
        seconds = through_wsgi(bodies, single_agent.api_key)
        profile.disable()
        _report("single via WSGI", profile, seconds, args.singles, args.singles, args.top, args.out)
        bodies = signed_bodies(single_agent, "single-plain", args.singles, 1)
        plain = through_wsgi(bodies, single_agent.api_key)
        print(f"unprofiled: {plain / args.singles * 1000:.2f} ms/request")
    finally:
        from django.db import connections

        connections.close_all()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
