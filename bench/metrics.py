"""What the /metrics instrumentation costs the hot paths (issue 16).

Per gate request the web process does one histogram observation, one
decision counter and one counter per reason; per ingest request one
histogram observation and one counter per event. Measured in a fresh
process with prometheus_client's multiprocess mode (as under gunicorn, the
costly case: every increment writes a memory-mapped file) and without it.

Target: under 50 us per request, i.e. under 2% of a gate decision (a few
ms through the HTTP stack). Each multiprocess increment takes a lock and
writes a memory-mapped file (a histogram observation writes two values), so
label children are looked up once and a batch's results are counted per
distinct status, not per event.
Standalone: python -m bench metrics
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from .core import Context, Result, median
from .server import REPO

NAME = "metrics"
NEEDS_SERVER = False
TARGET_US = 50.0

_CHILD = """
import json, timeit
from compliance_site.metrics import (
    EVENTS_INGESTED, GATE_LATENCY, INGEST_LATENCY, count_each, gate_decided,
)
n = {n}
def gate():
    GATE_LATENCY.observe(0.0031)
    gate_decided("rejected", [{{"code": "kill_switch"}}, {{"code": "max_order_notional"}}])
def ingest():
    INGEST_LATENCY.observe(0.0042)
    count_each(EVENTS_INGESTED, ["created"] * 9 + ["duplicate"])
print(json.dumps({{
    "gate_us": timeit.timeit(gate, number=n) / n * 1e6,
    "ingest_batch_of_10_us": timeit.timeit(ingest, number=n) / n * 1e6,
}}))
"""


def _measure(n: int, multiprocess: bool) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    with tempfile.TemporaryDirectory() as tmp:
        if multiprocess:
            env["PROMETHEUS_MULTIPROC_DIR"] = tmp
        out = subprocess.run(
            [sys.executable, "-c", _CHILD.format(n=n)],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(ctx: Context) -> Result:
    result = Result(NAME)
    n = ctx.count(50_000, minimum=1000)
    for mode, multiprocess in (("multiprocess", True), ("single process", False)):
        runs = [_measure(n, multiprocess) for _ in range(ctx.runs)]
        gate = median([r["gate_us"] for r in runs])
        ingest = median([r["ingest_batch_of_10_us"] for r in runs])
        result.add(
            f"gate request, {mode}", round(gate, 2), "us", f"< {TARGET_US}", gate < TARGET_US
        )
        result.add(f"ingest batch of 10, {mode}", round(ingest, 2), "us", None, None)
    return result
