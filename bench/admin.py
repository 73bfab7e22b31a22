"""The officer's workspace at scale: every admin page and the dashboard with
1,000,000 records, 100,000 orders and 10,000 alerts in PostgreSQL.

A database of its own (BENCH_ADMIN_DB, default compliance_bench_admin) is
seeded once and reused by later runs (--fresh starts over): the records go
through `audit.services.append` (hashed and chained like every record, 5,000
per transaction), the projections (orders, fills, alerts, approvals, hourly
counters, market rows) are bulk-inserted to match them. Then each page is
loaded 20 times (after 2 warm-up loads) by a logged-in compliance officer
(the evidence page by an auditor) through Django's full request stack in one
process, and the server time of each load is measured: p50 and p95 per page.

Target (issue 17): p95 < 300 ms for every page.
Standalone: python -m bench admin [--quick]   (--quick: 250k records, 25k orders, 2.5k alerts)
            python -m bench.admin --child [--fresh] [--records N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from typing import Any

NAME = "admin"
NEEDS_SERVER = False

RECORDS = 1_000_000
ORDERS_PER_RECORDS = 10  # 100k orders at 1M records
ALERTS_PER_RECORDS = 100  # 10k alerts at 1M records
LOADS = 20
WARMUP = 2
TARGET_P95_MS = 300.0
BATCH = 5_000
AGENTS = 20
MARKETS = ["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD", "DOGE-USD", "AVAX-USD",
           "DOT-USD", "LINK-USD", "LTC-USD"]  # fmt: skip
DETECTORS = ["wash_trading", "spoofing", "layering", "rapid_fire", "concentration"]


def _db_url() -> str:
    name = os.environ.get("BENCH_ADMIN_DB", "compliance_bench_admin")
    if "bench" not in name:
        raise ValueError("the admin benchmark's database name must contain 'bench'")
    return f"postgres://postgres@127.0.0.1:5432/{name}"


# -- child process (Django) ---------------------------------------------------------------


def _recreate_db(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _ensure_db(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def _seed(records: int) -> dict[str, Any]:
    from datetime import timedelta
    from decimal import Decimal

    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Agent, User
    from accounts.services import user_create
    from approvals.models import ApprovalRequest
    from audit.models import Log
    from audit.services import Actor, PendingRecord, append
    from audit.services.agents import agent_register
    from audit.services.checkpoints import checkpoint_create
    from compliance_client.jcs import canonicalize
    from compliance_client.signing import Signer
    from surveillance.models import (
        AgentOrderCount,
        Alert,
        AlertLogEntry,
        Fill,
        MarketRisk,
        Order,
    )
    from surveillance.services.config import config_current

    start = time.monotonic()
    rng = random.Random(17)
    if not User.objects.filter(username="bench-alice").exists():
        user_create(username="bench-alice", role="compliance_officer", password="x" * 20)
        user_create(username="bench-carol", role="viewer", password="y" * 20)
        user_create(username="bench-rita", role="risk_manager", password="z" * 20)
    rita = User.objects.get(username="bench-rita")
    config = config_current()
    agents = list(Agent.objects.order_by("pk"))
    for n in range(len(agents), AGENTS):
        agent, _key, _api = agent_register(
            agent_id=f"bot-{n:02d}",
            name=f"Bot {n}",
            owner=rita,
            acting_user=rita,
            public_key=Signer.generate(f"bot-{n:02d}").public_key_b64,
        )
        agents.append(agent)
    n_orders = records // ORDERS_PER_RECORDS
    n_alerts = records // ALERTS_PER_RECORDS
    now_us = int(time.time() * 1_000_000)
    day_us = 24 * 3600 * 1_000_000

    # The log: one ORDER_SUBMITTED decision per order, the rest fills.
    size = Log.objects.get(name="default").size
    order_seqs: list[int] = []
    fill_seqs: list[tuple[int, int]] = []
    made = Order.objects.count()
    while size < records:
        pending = []
        for i in range(min(BATCH, records - size)):
            n = size + i
            agent = agents[n % AGENTS]
            if n % ORDERS_PER_RECORDS == 0:
                k = n // ORDERS_PER_RECORDS
                data = {"order_id": f"ord-{k}", "market": MARKETS[k % len(MARKETS)],
                        "side": "buy" if k % 2 else "sell", "quantity": "1.5",
                        "price": f"{100 + k % 50}.25", "decision": "accepted"}  # fmt: skip
                kind = "ORDER_SUBMITTED"
            else:
                k = n // ORDERS_PER_RECORDS
                data = {"order_id": f"ord-{k}", "fill_id": f"f-{n}", "quantity": "0.1",
                        "price": f"{100 + k % 50}.25"}  # fmt: skip
                kind = "ORDER_FILLED"
            pending.append(
                PendingRecord(
                    kind, Actor.agent(agent.agent_id), canonicalize(data), agent_id=agent.agent_id
                )
            )
        with transaction.atomic():
            appended = append(pending)
        for record in appended:
            if record.seq % ORDERS_PER_RECORDS == 0:
                order_seqs.append(record.seq)
            elif record.seq % ORDERS_PER_RECORDS == 1:
                fill_seqs.append((record.seq, record.seq // ORDERS_PER_RECORDS))
        size = Log.objects.get(name="default").size
    log_seconds = time.monotonic() - start

    # The projections that match them.
    if made < n_orders:
        by_id = {a.pk: a for a in agents}
        ids = [a.pk for a in agents]
        rows = []
        for seq in order_seqs:
            k = seq // ORDERS_PER_RECORDS
            roll = rng.random()
            decision = "accepted" if roll < 0.85 else ("rejected" if roll < 0.97 else "held")
            status = {"accepted": "filled", "rejected": "rejected", "held": "expired"}[decision]
            reasons = (
                [
                    {
                        "code": rng.choice(
                            [
                                "price_collar",
                                "max_position",
                                "rate_limit",
                                "kill_switch",
                                "max_order_notional",
                            ]
                        ),
                        "limit": "1",
                        "value": "2",
                        "detail": "over the limit",
                    }
                ]
                if decision == "rejected"
                else []
            )
            created = now_us - day_us + (k * day_us) // max(n_orders, 1)
            rows.append(
                Order(
                    agent=by_id[ids[seq % AGENTS]],
                    order_id=f"ord-{k}",
                    market=MARKETS[k % len(MARKETS)],
                    side="buy" if k % 2 else "sell",
                    order_type="limit",
                    quantity=Decimal("1.5"),
                    price=Decimal(f"{100 + k % 50}.25"),
                    filled_quantity=Decimal("1.5"),
                    status=status,
                    decision=decision,
                    reasons=reasons,
                    config_hash=config.hash,
                    seq=seq,
                    created_at_us=created,
                    updated_at_us=created,
                )
            )
        Order.objects.bulk_create(rows, batch_size=5000)
        fills = [
            Fill(
                agent=by_id[ids[seq % AGENTS]],
                order_ref=f"ord-{k}",
                fill_id=f"f-{seq}",
                market=MARKETS[k % len(MARKETS)],
                side="buy",
                quantity=Decimal("0.1"),
                price=Decimal("100.25"),
                seq=seq,
                recorded_at_us=now_us,
            )
            for seq, k in fill_seqs
        ]
        Fill.objects.bulk_create(fills, batch_size=5000)
        hour_us = 3600 * 1_000_000
        counts = [
            AgentOrderCount(
                agent=agent,
                width_s=3600,
                start_us=(now_us // hour_us - h) * hour_us,
                orders=n_orders // AGENTS // 24,
                live=n_orders // AGENTS // 26,
                cancels=n_orders // AGENTS // 60,
            )
            for agent in agents
            for h in range(24)
        ]
        AgentOrderCount.objects.bulk_create(counts, ignore_conflicts=True)
        for market in MARKETS:
            MarketRisk.objects.update_or_create(
                market=market,
                defaults={
                    "position": Decimal(rng.randint(-50, 50)),
                    "open_buy": Decimal(3),
                    "open_sell": Decimal(2),
                    "mark_price": Decimal("101.5"),
                },
            )
    if Alert.objects.count() < n_alerts:
        now = timezone.now()
        alerts = []
        for n in range(Alert.objects.count(), n_alerts):
            severity = rng.choice(["low", "medium", "high", "critical"])
            created = now - timedelta(seconds=rng.randint(0, 30 * 86400))
            closed = rng.random() < 0.7
            base = order_seqs[n % len(order_seqs)] if order_seqs else n
            alerts.append(
                Alert(
                    detector=DETECTORS[n % len(DETECTORS)],
                    severity=severity,
                    severity_rank=Alert.SEVERITY_RANK[severity],
                    agent_id=f"bot-{n % AGENTS:02d}",
                    market=MARKETS[n % len(MARKETS)],
                    fingerprint=f"bench:{n}",
                    evidence=[base, base + 1, base + 2],
                    detail=f"bench finding {n}",
                    facts={"orders": "3", "ratio": "0.97"},
                    occurred_at_us=now_us,
                    seq=base,
                    config_hash=config.hash,
                    status="closed" if closed else rng.choice(["open", "assigned"]),
                    created_at=created,
                    updated_at=created,
                    due_at=created + timedelta(hours=24),
                    assigned_to=rita,
                    closed_by=rita if closed else None,
                    closed_at=created if closed else None,
                    disposition="no_action" if closed else "",
                    note="ok" if closed else "",
                )
            )
        Alert.objects.bulk_create(alerts, batch_size=2000)
        first = Alert.objects.order_by("pk").first()
        if first is not None:
            AlertLogEntry.objects.bulk_create(
                [AlertLogEntry(alert=first, seq=s, action="note") for s in order_seqs[:5]],
                ignore_conflicts=True,
            )
    if not ApprovalRequest.objects.filter(status="pending").exists():
        now = timezone.now()
        ApprovalRequest.objects.bulk_create(
            [
                ApprovalRequest(
                    kind="order",
                    subject_id=str(n),
                    summary={"order_id": f"ord-{n}", "market": "BTC-USD", "notional": "9000"},
                    requested_by_agent=agents[n % AGENTS],
                    requested_at=now,
                    expires_at=now + timedelta(seconds=300 + n),
                )
                for n in range(40)
            ]
        )
    checkpoint_create(force=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {
        "seed_seconds": round(time.monotonic() - start, 1),
        "log_seconds": round(log_seconds, 1),
    }


def _pages() -> list[tuple[str, str, str]]:
    from audit.models import Record
    from surveillance.models import Alert, Order

    alert = Alert.objects.filter(status="open").order_by("pk").first() or Alert.objects.first()
    order = Order.objects.order_by("-created_at_us").first()
    record = Record.objects.order_by("-seq").first()
    assert alert is not None
    assert order is not None
    assert record is not None
    alice, carol = "bench-alice", "bench-carol"
    return [
        ("dashboard", alice, "/admin/"),
        ("dashboard charts (JSON)", alice, "/admin/dashboard/charts/"),
        ("dashboard attention (refresh)", alice, "/admin/dashboard/attention/"),
        ("records", alice, "/admin/audit/record/"),
        ("records, page 100", alice, "/admin/audit/record/?p=100"),
        ("records by event type", alice, "/admin/audit/record/?event_type=ORDER_SUBMITTED"),
        ("records by agent", alice, "/admin/audit/record/?q=bot-03"),
        ("records by order id", alice, f"/admin/audit/record/?q={order.order_id}"),
        ("records, last hour", alice, "/admin/audit/record/?recorded_at_us_last=1h"),
        ("record", alice, f"/admin/audit/record/{record.pk}/change/"),
        ("orders", alice, "/admin/surveillance/order/"),
        ("orders by market, last 24 h", alice,
         "/admin/surveillance/order/?market=ETH-USD&created_at_us_last=24h"),
        ("orders rejected", alice, "/admin/surveillance/order/?decision=rejected"),
        ("order", alice, f"/admin/surveillance/order/{order.pk}/change/"),
        ("alerts", alice, "/admin/surveillance/alert/"),
        ("alerts, critical open", alice,
         "/admin/surveillance/alert/?severity__exact=critical&status__exact=open"),
        ("alert case", alice, f"/admin/surveillance/alert/{alert.pk}/change/"),
        ("alert history", alice, f"/admin/surveillance/alert/{alert.pk}/history/"),
        ("approvals", alice, "/admin/approvals/approvalrequest/"),
        ("kill switches", alice, "/admin/surveillance/killswitch/"),
        ("checkpoints", alice, "/admin/audit/checkpoint/"),
        ("reports", alice, "/admin/reporting/report/"),
        ("legal holds", carol, "/admin/reporting/legalhold/"),
        ("config versions", alice, "/admin/surveillance/complianceconfigversion/"),
        ("evidence (auditor)", carol, "/admin/evidence/"),
    ]  # fmt: skip


def _backend_cpu_ms(pid: int) -> float:
    """CPU time of a PostgreSQL backend (same machine), in ms."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def _measure(loads: int) -> list[dict[str, Any]]:
    """Wall time per load (what the officer waits for, on this machine as it
    is), and the CPU the load cost Django and PostgreSQL (the same on a busy
    or a quiet machine: 7 sessions share these 2 cores while this runs)."""
    from django.db import connection
    from django.test import Client

    from accounts.models import User

    from .core import background_load, wait_for_quiet

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = int(cursor.fetchone()[0])
    clients: dict[str, Client] = {}
    out = []
    for label, who, url in _pages():
        wait_for_quiet(max_wait_s=5)
        load = background_load(0.5)
        if who not in clients:
            clients[who] = Client()
            clients[who].force_login(User.objects.get(username=who))
        client = clients[who]
        samples = []
        cpu_start = 0.0
        for i in range(WARMUP + loads):
            if i == WARMUP:
                cpu_start = time.process_time() * 1000 + _backend_cpu_ms(backend)
            t0 = time.perf_counter()
            response = client.get(url, secure=True)
            if response.streaming:
                b"".join(response.streaming_content)
            elapsed = (time.perf_counter() - t0) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"{label}: {url} answered {response.status_code}")
            if i >= WARMUP:
                samples.append(elapsed)
        cpu_ms = (time.process_time() * 1000 + _backend_cpu_ms(backend) - cpu_start) / loads
        samples.sort()
        p95 = samples[min(len(samples) - 1, round(0.95 * len(samples)) - 1)]
        out.append(
            {
                "page": label,
                "url": url,
                "p50_ms": round(samples[len(samples) // 2], 1),
                "p95_ms": round(p95, 1),
                "max_ms": round(samples[-1], 1),
                "cpu_ms_mean": round(cpu_ms, 1),
                "background_load": round(load, 2),
            }
        )
        print(
            f"{label:34} p50 {out[-1]['p50_ms']:7.1f} ms  p95 {p95:7.1f} ms  "
            f"CPU {cpu_ms:6.1f} ms/load  (background load {load:.2f})",
            file=sys.stderr,
        )
    return out


def child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.admin --child")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--records", type=int, default=RECORDS)
    parser.add_argument("--loads", type=int, default=LOADS)
    args = parser.parse_args(argv)
    url = os.environ["DATABASE_URL"]
    (_recreate_db if args.fresh else _ensure_db)(url)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from audit.log_key import ensure_key_file

    ensure_key_file()
    seeded = _seed(args.records)
    from audit.models import Log
    from surveillance.models import Alert, Order

    sizes = {
        "records": Log.objects.get(name="default").size,
        "orders": Order.objects.count(),
        "alerts": Alert.objects.count(),
    }
    pages = _measure(args.loads)
    print(json.dumps({"sizes": sizes, **seeded, "pages": pages}))
    return 0


# -- bench process -----------------------------------------------------------------------


def run(ctx: Any) -> Any:
    import tempfile

    from .core import Result
    from .server import REPO

    result = Result(NAME)
    records = ctx.count(RECORDS, 10_000)
    var_dir = tempfile.mkdtemp(prefix="compliance-bench-admin-")
    env = {
        **os.environ,
        "DATABASE_URL": _db_url() if records == RECORDS else _db_url() + "_quick",
        "DJANGO_SETTINGS_MODULE": "compliance_site.settings",
        "DJANGO_SECRET_KEY": "bench-admin-" + "k" * 40,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "COMPLIANCE_VAR_DIR": var_dir,
        "LOG_LEVEL": "ERROR",
    }
    env.pop("COMPLIANCE_TESTING", None)
    proc = subprocess.run(
        [sys.executable, "-m", "bench.admin", "--child", "--records", str(records)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=5400,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-4000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    sizes = out["sizes"]
    result.details.update(out)
    worst = max(page["p95_ms"] for page in out["pages"])
    result.add(
        f"admin pages p95, worst of {len(out['pages'])} ({sizes['records']:,} records, "
        f"{sizes['orders']:,} orders, {sizes['alerts']:,} alerts)",
        worst,
        "ms",
        f"< {TARGET_P95_MS:.0f}",
        worst < TARGET_P95_MS,
    )
    result.add(
        "  CPU per load, worst page mean (Django + PostgreSQL)",
        max(page["cpu_ms_mean"] for page in out["pages"]),
        "ms",
    )
    for page in out["pages"]:
        result.add(
            f"  {page['page']} p95",
            page["p95_ms"],
            "ms",
            f"< {TARGET_P95_MS:.0f}",
            page["p95_ms"] < TARGET_P95_MS,
        )
    return result


if __name__ == "__main__":
    if "--child" in sys.argv:
        sys.exit(child(sys.argv[1:]))
    print("run through python -m bench admin", file=sys.stderr)
    sys.exit(2)
