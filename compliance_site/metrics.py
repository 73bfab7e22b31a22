"""The product's own figures for the firm's monitoring (Prometheus).

Two kinds, chosen for gunicorn's several worker processes:

* counters and histograms moved on the hot paths (events ingested and
  refused, gate decisions, gate and ingest latency). Each request costs a
  counter increment and nothing else: no query, no lock. Under gunicorn set
  ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory and prometheus_client
  keeps them in per-process files that /metrics sums (its multiprocess mode);
  without it they live in this process (development, tests).
* gauges read from the database when /metrics is scraped (approvals, alerts,
  kill switches, checkpoints, verification, outboxes, reports), so every
  worker answers the same and nothing is kept in memory between scrapes.
  They live in ``compliance_site.metrics_view``, which may import every app.

This module imports no app, so audit and surveillance can import it.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from prometheus_client import Counter, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

EVENTS_INGESTED = Counter(
    "compliance_events_ingested",
    "Bot events accepted on POST /api/v1/events/, by result (created or duplicate).",
    ["status"],
)
EVENTS_REFUSED = Counter(
    "compliance_events_refused",
    "Bot events or batches refused on POST /api/v1/events/, by error code.",
    ["code"],
)
GATE_DECISIONS = Counter(
    "compliance_gate_decisions",
    "Pre-trade gate decisions, by outcome.",
    ["decision"],
)
GATE_DECISION_REASONS = Counter(
    "compliance_gate_decision_reasons",
    "Reasons given with gate decisions (a decision may give several), by outcome and code.",
    ["decision", "reason"],
)
GATE_REFUSED = Counter(
    "compliance_gate_refused",
    "Gate requests refused before a decision (malformed, conflicting, unknown), by code.",
    ["code"],
)
GATE_LATENCY = Histogram(
    "compliance_gate_latency_seconds",
    "Time to answer POST /api/v1/orders/, in the web process.",
    buckets=LATENCY_BUCKETS,
)
INGEST_LATENCY = Histogram(
    "compliance_ingest_latency_seconds",
    "Time to answer POST /api/v1/events/, in the web process.",
    buckets=LATENCY_BUCKETS,
)


# Labelled children, looked up once per label set (labels() takes a lock and
# builds a key on every call; the set of outcomes and codes is small).
_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (id(metric), *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def count(metric: Any, label: str, amount: int = 1) -> None:
    """Increment a one-label counter (events ingested/refused, gate refusals)."""
    _child(metric, label).inc(amount)


def count_each(metric: Any, labels: Iterable[str]) -> None:
    """One increment per distinct label with its multiplicity (a batch's results)."""
    for label, amount in Tally(labels).items():
        _child(metric, label).inc(amount)


def gate_decided(decision: str, reasons: list[dict[str, Any]]) -> None:
    _child(GATE_DECISIONS, decision).inc()
    for reason in reasons:
        _child(GATE_DECISION_REASONS, decision, str(reason.get("code", "unknown"))).inc()


class HotPathLatencyMiddleware:
    """Times the gate and ingest requests end to end in the web process
    (authentication and parsing included). Other requests pass through after
    one string comparison."""

    PATHS = {"/api/v1/orders/": GATE_LATENCY, "/api/v1/events/": INGEST_LATENCY}

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        histogram = self.PATHS.get(request.path_info) if request.method == "POST" else None
        if histogram is None:
            return self.get_response(request)
        started = time.perf_counter()
        try:
            return self.get_response(request)
        finally:
            histogram.observe(time.perf_counter() - started)
