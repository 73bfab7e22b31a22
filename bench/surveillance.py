"""Surveillance cycle throughput and its cost as the window grows.

Runs the measurement kept beside the detector tests
(tests/surveillance/test_detectors.py::test_bench_cycle_throughput) on a
fresh PostgreSQL database, with COMPLIANCE_BENCH_RECORDS records in the log:
records/s through one cycle, then the cost of a cycle over 1,000 new records
with the window at N, 2N and 4N (flat is the point).

Target (issue 6): at least 50,000 records/s per cycle on one core.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

NAME = "surveillance"
NEEDS_SERVER = False
RECORDS = 100_000
TARGET = 50_000


def run(ctx: Any) -> Any:
    from .core import Result
    from .server import REPO

    result = Result(NAME)
    records = ctx.count(RECORDS, 10_000)
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/compliance_bench_surveillance",
        "COMPLIANCE_BENCH_RECORDS": str(records),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/surveillance/test_detectors.py", "-k", "bench",
         "-s", "-q", "-p", "no:cacheprovider", "--create-db"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-3000:] + proc.stderr[-2000:])
    out = proc.stdout
    rate = re.search(r"([\d,]+) records/s wall, ([\d,]+) per CPU second", out)
    if rate is None:
        raise RuntimeError(f"no figures in the output:\n{out[-2000:]}")
    wall, cpu = (float(x.replace(",", "")) for x in rate.groups())
    result.add(f"one cycle over {records:,} records (wall)", wall, "records/s", f">= {TARGET:,}",
               wall >= TARGET)  # fmt: skip
    result.add("same, per CPU second of the worker", cpu, "records/s")
    for window, queries, ms in re.findall(
        r"window\s+([\d,]+) records: \+1,000 new -> (\d+) queries, (\d+) ms", out
    ):
        result.add(f"cycle over 1,000 new records, window {window}", float(ms), "ms")
        result.details.setdefault("queries", {})[window] = int(queries)
    return result
