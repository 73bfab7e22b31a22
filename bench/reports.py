"""Quarterly report over 1,000,000 records: wall time and peak memory per format.

A fresh PostgreSQL database is migrated and seeded through the bulk path
(`audit.services.append` of PendingRecords, 5,000 per transaction) with a
quarter of bot trading: orders, fills, cancels, positions, errors, breaches
from 20 agents. Then each format of the quarterly report (2025-Q1) is
generated in its own process, exactly as the Celery task does it
(`report_generate`), and that process reports its wall time and peak RSS
(ru_maxrss, so Django's own footprint is included).

Targets (issue 7): under 2 minutes and under 300 MB peak RSS per report.
Standalone: python -m bench.reports [RECORDS]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

NAME = "reports"
NEEDS_SERVER = False

RECORDS = 1_000_000
BATCH = 5_000
AGENTS = 20
FORMATS = ("json", "csv", "pdf")
TARGET_SECONDS = 120.0
TARGET_RSS_MB = 300.0
DB_NAME = "compliance_bench_reports"
Q_START_US = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z
Q_LENGTH_US = 90 * 86_400_000_000  # 2025-Q1 is 90 days


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "compliance_site.settings")
    import django

    django.setup()


def _dumps(value: Any) -> bytes:
    # Sorted keys, no spaces: the JCS form for these ASCII strings and integers.
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def child_seed(total: int) -> dict[str, Any]:
    """Seed `total` records spread over 2025-Q1 (run in a child process)."""
    _django()
    from django.db import transaction

    import audit.services.log as log
    from audit.services import Actor, PendingRecord, append

    clock = {"now": Q_START_US}
    log.now_us = lambda: clock["now"]  # type: ignore[assignment]  # the bench's own clock
    step = Q_LENGTH_US // max(total // BATCH, 1)
    mix = (
        ["ORDER_SUBMITTED"] * 8
        + ["ORDER_FILLED"] * 6
        + ["ORDER_CANCELED"] * 4
        + ["POSITION_CHANGED", "SYSTEM_ERROR"]
    )
    started = time.monotonic()
    n = 0
    while n < total:
        pending = []
        for _ in range(min(BATCH, total - n)):
            agent = f"bench-bot-{n % AGENTS:02d}"
            event_type = mix[n % len(mix)]
            order_id = f"o-{n // len(mix)}"
            if n % 997 == 0:
                data = {
                    "code": "max_order_quantity",
                    "limit": "100",
                    "value": "150",
                    "detail": "too large",
                    "agent_id": agent,
                    "order_id": order_id,
                    "market": "BTC-USD",
                }
                pending.append(PendingRecord("LIMIT_BREACH", Actor.system("gate"), _dumps(data)))
                n += 1
                continue
            payload: dict[str, Any]
            data = {
                "clock_drift_us": 150 + n % 700,
                "received_at_us": clock["now"],
                "schema_version": 1,
            }
            if event_type == "ORDER_SUBMITTED":
                payload = {
                    "order_id": order_id,
                    "market": "BTC-USD",
                    "side": "buy",
                    "quantity": "1",
                    "price": f"{100 + n % 50}.5",
                    "order_type": "limit",
                    "venue": "XNAS",
                }
                data.update(
                    {
                        "decision": "accepted",
                        "reasons": [],
                        "config_hash": "ab" * 32,
                        "notional": "100.5",
                    }
                )
            elif event_type == "ORDER_FILLED":
                payload = {
                    "order_id": order_id,
                    "fill_id": f"f-{n}",
                    "quantity": "1",
                    "price": "100.5",
                }
            elif event_type == "ORDER_CANCELED":
                payload = {"order_id": order_id, "reason": "requote"}
            elif event_type == "POSITION_CHANGED":
                payload = {"market": "BTC-USD", "quantity": str(n % 40), "price": "100.5"}
            else:
                payload = {"error_type": "feed", "message": "market data stale"}
            envelope = {"agent_id": agent, "event_id": f"bench-{n}", "event_type": event_type,
                        "occurred_at_us": clock["now"] - 150, "payload": payload}  # fmt: skip
            source = {"envelope": envelope, "key_id": "bench", "signature": "A" * 86 + "=="}
            pending.append(
                PendingRecord(
                    event_type,
                    Actor.agent(agent),
                    _dumps(data),
                    source_json=_dumps(source),
                    agent_id=agent,
                    event_id=f"bench-{n}",
                )
            )
            n += 1
        with transaction.atomic():
            append(pending)
        clock["now"] += step
    return {"records": n, "seconds": time.monotonic() - started}


def child_generate(fmt: str) -> dict[str, Any]:
    """Generate the 2025-Q1 quarterly report in `fmt`; time and peak RSS of this process."""
    import resource

    _django()
    from reporting.models import Report
    from reporting.periods import quarter
    from reporting.services.reports import report_generate

    period = quarter(2025, 1)
    report = Report.objects.create(
        kind="quarterly", format=fmt, period_start=period.start, period_end=period.end,
        period_label=period.label, scheduled=True,
    )  # fmt: skip
    started = time.monotonic()
    report = report_generate(report_id=report.pk)
    seconds = time.monotonic() - started
    if report.status != "done":
        raise RuntimeError(f"report failed: {report.error}")
    return {
        "format": fmt,
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "records": report.record_count,
        "bytes": report.size,
        "sha256": report.sha256,
    }


def _child(env: dict[str, str], *args: str, timeout: float) -> dict[str, Any]:
    from .server import REPO

    proc = subprocess.run(
        [sys.executable, "-m", "bench.reports", "--child", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(
            f"bench.reports {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(ctx: Any) -> Any:
    from .core import Result
    from .server import BenchServer, ServerConfig

    result = Result(NAME)
    total = ctx.count(RECORDS, minimum=10_000)
    db = BenchServer(ServerConfig(db_name=DB_NAME))
    try:
        db.reset_database()
        db.manage("migrate", "--noinput", timeout=600)
        env = {**db.env, "COMPLIANCE_MEDIA_ROOT": str(db.var_dir / "media"), "LOG_LEVEL": "ERROR"}
        seeded = _child(env, "seed", str(total), timeout=3600)
        result.details["seed"] = seeded
        runs = []
        for fmt in FORMATS:
            figures = _child(env, "generate", fmt, timeout=1800)
            runs.append(figures)
            if figures["records"] != total:
                raise RuntimeError(f"{fmt} report covered {figures['records']} of {total} records")
            seconds, rss = figures["seconds"], figures["peak_rss_mb"]
            result.add(
                f"quarterly {fmt}: {total:,} records",
                seconds,
                "s",
                f"< {TARGET_SECONDS:.0f}",
                seconds < TARGET_SECONDS,
            )
            result.add(
                f"quarterly {fmt}: peak RSS",
                rss,
                "MB",
                f"< {TARGET_RSS_MB:.0f}",
                rss < TARGET_RSS_MB,
            )
        result.details["reports"] = runs
    finally:
        db.stop()
    return result


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        what, arg = argv[1], argv[2]
        out = child_seed(int(arg)) if what == "seed" else child_generate(arg)
        print(json.dumps(out))
        return 0
    from .core import Context, render_table, write_result

    ctx = Context(server=None, scale=(int(argv[0]) / RECORDS) if argv else 1.0, runs=1)
    started = time.monotonic()
    result = run(ctx)
    result.seconds = time.monotonic() - started
    write_result(result)
    print(render_table([result]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
