"""What a surveillance cycle costs: the new records, not the window.

A synthetic log of ordinary trading, appended through the log's own bulk
path (audit.services.append: seqs, leaf and chain hashes, Merkle nodes), with
the Order rows the gate would have written; the cycle's cost over a fixed
number of new records as the window behind them grows; and the measurement
`make bench` runs (bench/surveillance.py)."""

from __future__ import annotations

import heapq
import os
import statistics
import time
from typing import Any

import pytest

from surveillance.models import Alert, DetectorState
from surveillance.services.cycle import surveillance_cycle

pytestmark = pytest.mark.django_db

SECOND = 1_000_000


class SyntheticLog:
    """Writes gate-shaped and ingest-shaped records to the log through
    `audit.services.append` (no signature checks: the detectors never look at
    them), with the Order rows the gate would have written, so a large window
    is quick to build. Ordinary trading only: each agent works one side per
    market, one order every 50 ms firm-wide, each filled or cancelled 10 s
    later. Time runs on from one growth to the next, and fills or cancels due
    after a growth's last record come first in the next one, so a cycle also
    resolves orders submitted before it (the Order lookup), as in real trading.

    `batch_us`: the records of one such span of the day are appended together
    and share their recorded_at_us (one append per second by default; the bench
    takes 10 s to build a million records in a few minutes; a multiple of 1 s
    that divides 10 s keeps every cancel 10 s after its order)."""

    STEP_US = 50_000  # one order every 50 ms firm-wide
    LIFETIME_US = 10 * SECOND  # filled or cancelled 10 s after submission

    def __init__(self, agents: int = 20, markets: int = 10, batch_us: int = SECOND):
        from accounts.models import Agent

        self.agents = [
            Agent.objects.create(
                agent_id=f"syn-{i}",
                name=f"syn {i}",
                api_key_hash=f"h{i:062d}",
                api_key_prefix="cbk_",
            )
            for i in range(agents)
        ]
        self.pks = {a.agent_id: a.pk for a in self.agents}
        self.markets = [f"M{j}-USD" for j in range(markets)]
        self.batch_us = batch_us
        self.k = 0
        self.next_order_us = time.time_ns() // 1000 + 7200 * SECOND
        # Fills and cancels not yet appended: (time, tie, event_type, agent, payload).
        self.pending: list[tuple[int, int, str, Any, dict[str, Any]]] = []

    def _order(self, k: int) -> tuple[Any, str, str]:
        agent = self.agents[k % len(self.agents)]
        market = self.markets[(k // len(self.agents)) % len(self.markets)]
        side = "buy" if (k % len(self.agents) + (k // len(self.agents))) % 2 else "sell"
        return agent, market, side

    def _next_events(self, records: int) -> list[tuple[int, str, Any, dict[str, Any]]]:
        """The next `records` events of the day, in time order."""
        events: list[tuple[int, str, Any, dict[str, Any]]] = []
        pending = self.pending
        while len(events) < records:
            if pending and pending[0][0] <= self.next_order_us:
                t, _, event_type, agent, payload = heapq.heappop(pending)
                events.append((t, event_type, agent, payload))
                continue
            k = self.k
            self.k += 1
            t = self.next_order_us
            self.next_order_us += self.STEP_US
            agent, market, side = self._order(k)
            order_id = f"s{k}"
            events.append(
                (
                    t,
                    "ORDER_SUBMITTED",
                    agent,
                    {
                        "order_id": order_id,
                        "market": market,
                        "side": side,
                        "quantity": "1",
                        "price": "100",
                        "order_type": "limit",
                    },
                )
            )
            if k % 2:
                kind = "ORDER_FILLED"
                end = {"order_id": order_id, "fill_id": "f1", "quantity": "1", "price": "100"}
            else:
                kind, end = "ORDER_CANCELED", {"order_id": order_id, "reason": "strategy"}
            heapq.heappush(pending, (t + self.LIFETIME_US, 2 * k + 1, kind, agent, end))
        return events

    def grow(self, records: int) -> None:
        """Append exactly `records` records (about half submissions, half fills
        or cancels) in one transaction."""
        from django.db import transaction

        from audit.services import Actor, PendingRecord, append
        from compliance_client.jcs import canonicalize
        from surveillance.models import Order

        groups: list[tuple[int, list[PendingRecord], list[dict[str, Any]]]] = []
        for t, event_type, agent, payload in self._next_events(records):
            envelope = {
                "agent_id": agent.agent_id,
                "event_id": f"e-{event_type}-{payload['order_id']}",
                "event_type": event_type,
                "occurred_at_us": t,
                "payload": payload,
            }
            source = {"envelope": envelope, "key_id": "k", "signature": "s"}
            data = {"decision": "accepted"} if event_type == "ORDER_SUBMITTED" else {}
            batch = t - t % self.batch_us
            if not groups or groups[-1][0] != batch:
                groups.append((batch, [], []))
            groups[-1][1].append(
                PendingRecord(
                    event_type=event_type,
                    actor=Actor.agent(agent.agent_id),
                    data_json=canonicalize(data),
                    source_json=canonicalize(source),
                    agent_id=agent.agent_id,
                    event_id=envelope["event_id"],
                )
            )
            groups[-1][2].append(payload)
        orders = []
        with transaction.atomic():
            for at_us, chunk, payloads in groups:
                with _clock_at(at_us):
                    stored = append(chunk)
                for record, pending, p in zip(stored, chunk, payloads, strict=True):
                    if pending.event_type == "ORDER_SUBMITTED":
                        orders.append(
                            Order(
                                agent_id=self.pks[pending.agent_id or ""],
                                order_id=p["order_id"],
                                market=p["market"],
                                side=p["side"],
                                order_type="limit",
                                quantity=1,
                                price=100,
                                status="open",
                                decision="accepted",
                                config_hash="c",
                                seq=record.seq,
                                created_at_us=record.recorded_at_us,
                                updated_at_us=record.recorded_at_us,
                            )
                        )
            Order.objects.bulk_create(orders, batch_size=2000)


class _clock_at:
    """Pin the log's clock while one batch is appended."""

    def __init__(self, at_us: int):
        self.at_us = at_us

    def __enter__(self) -> None:
        import audit.services.log as log

        self.saved = log.now_us
        log.now_us = lambda: self.at_us

    def __exit__(self, *exc: object) -> None:
        import audit.services.log as log

        log.now_us = self.saved  # type: ignore[assignment]


def _cycle_cost(log: SyntheticLog, new_records: int) -> tuple[int, float]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    log.grow(new_records)
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        result = surveillance_cycle()
    assert result.processed >= new_records
    assert result.alerts == [], [a.detail for a in Alert.objects.all()[:3]]
    return len(queries), time.perf_counter() - started


def test_cycle_cost_follows_the_new_records_not_the_window(people: Any) -> None:
    # given a log whose window already holds 2,000 records, all processed
    log = SyntheticLog()
    small_window = _cycle_cost(log, 2_000)
    # when 1,000 more arrive, and later, with 10,000 in the window, 1,000 more
    after_small = _cycle_cost(log, 1_000)
    _cycle_cost(log, 7_000)
    after_large = _cycle_cost(log, 1_000)
    # then the cycle over the 1,000 new records costs the same number of
    # queries whatever the window holds, and no more than reading them needs
    assert after_large[0] == after_small[0], (small_window, after_small, after_large)
    assert after_large[0] < 40
    # detector state stays bounded by the partitions, not the records: per agent
    # (or owner) and market for layering, spoofing and wash trading (which
    # keeps the resting orders a self-trade needs), per agent for rapid fire,
    # one for concentration
    assert DetectorState.objects.count() <= 3 * 20 * 10 + 20 + 1


# --- the measurement behind `make bench` ---------------------------------------------

NEW_RECORDS = 1_000
RUNS = 9
BENCH_BATCH_US = 10 * SECOND


def _plans(queries: list[dict[str, str]]) -> list[str]:
    """EXPLAIN ANALYZE of the cycle's reads (not its writes, which it would
    repeat): the top plan node of each, with its time."""
    from django.db import connection

    out = []
    with connection.cursor() as cursor:
        for query in queries:
            sql = query["sql"]
            if not sql.startswith("SELECT") or "FOR UPDATE" in sql:
                continue
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY ON) " + sql)
            lines = [row[0] for row in cursor.fetchall()]
            table = sql.split(" FROM ", 1)[1].split(" ", 1)[0].strip('"')
            scans = [line.strip().lstrip("-> ") for line in lines if "Scan" in line]
            total = next((line for line in lines if line.startswith("Execution Time")), "")
            out.append(f"{table}: {' / '.join(scans) or lines[0].strip()}; {total}")
    return out


@pytest.mark.bench
@pytest.mark.django_db(transaction=True)
def test_bench_cycle_cost_as_the_window_grows(people: Any) -> None:
    """For each window in COMPLIANCE_BENCH_RECORDS (comma-separated, rising):
    grow the log to it and run the cycle over what is new (records/s through
    that cycle), then time RUNS cycles over NEW_RECORDS new records each (the
    median, and the query count). Every chunk commits, as the beat task's do."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    windows = [int(w) for w in os.environ["COMPLIANCE_BENCH_RECORDS"].split(",")]
    log = SyntheticLog(batch_us=BENCH_BATCH_US)
    size = 0
    for window in windows:
        started = time.perf_counter()
        while size < window:  # in slices: one transaction and its memory per 100k
            part = min(100_000, window - size)
            log.grow(part)
            size += part
        seeded = time.perf_counter() - started
        started, cpu = time.perf_counter(), time.process_time()
        result = surveillance_cycle(max_records=window + 1)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert result.alerts == []
        print(
            f"\nseeded {window:,} records in {seeded:.1f}s; "
            f"cycle over {result.processed:,} records: {elapsed:.2f}s wall, {cpu:.2f}s CPU; "
            f"{result.processed / elapsed:,.0f} records/s wall, "
            f"{result.processed / cpu:,.0f} per CPU second"
        )
        costs, counts = [], set()
        for _ in range(RUNS):
            queries, secs = _cycle_cost(log, NEW_RECORDS)
            costs.append(secs * 1000)
            counts.add(queries)
            size += NEW_RECORDS
        print(
            f"window {window:>9,} records: +{NEW_RECORDS:,} new -> {max(counts)} queries, "
            f"{statistics.median(costs):.0f} ms (median of {RUNS}: "
            f"{', '.join(f'{c:.0f}' for c in costs)})"
        )
    log.grow(NEW_RECORDS)
    with CaptureQueriesContext(connection) as captured:
        surveillance_cycle()
    for line in _plans(captured.captured_queries):
        print(f"plan at {size:,}: {line}")
