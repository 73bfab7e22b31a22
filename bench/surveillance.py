"""Surveillance cycle throughput, and its cost as the window grows.

Runs the measurement kept beside the cycle-cost tests
(tests/surveillance/test_cycle_cost.py::test_bench_cycle_cost_as_the_window_grows)
on a fresh PostgreSQL database. The log is grown through the log's own append
(hashes, chain, Merkle nodes) to each window in WINDOWS; at each one the
cycle first reads what is new (records/s through that cycle), then runs nine
times over 1,000 new records: the median ms and the query count are the
per-cycle cost, which should not depend on the window (issue 6: flat within
2x from 10k to 1M). Every chunk commits, as the beat task's do. The plans of
the cycle's reads at the largest window are kept in the JSON.

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
WINDOWS = (10_000, 100_000, 1_000_000)
TARGET = 50_000
FLAT = 2.0  # the largest per-cycle cost over the smallest


def run(ctx: Any) -> Any:
    from .core import Result
    from .server import REPO

    result = Result(NAME)
    # --quick (scale 0.25) stops at 250k instead of 1M.
    windows = [*WINDOWS[:-1], ctx.count(WINDOWS[-1], WINDOWS[-2])]
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/compliance_bench_surveillance",
        "COMPLIANCE_BENCH_RECORDS": ",".join(str(w) for w in windows),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/surveillance/test_cycle_cost.py", "-k", "bench",
         "-s", "-q", "-p", "no:cacheprovider", "--create-db"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-3000:] + proc.stderr[-2000:])
    out = proc.stdout
    catch_up = re.findall(
        r"seeded ([\d,]+) records in ([\d.]+)s; cycle over ([\d,]+) records: [\d.]+s wall, "
        r"[\d.]+s CPU; ([\d,]+) records/s wall, ([\d,]+) per CPU second",
        out,
    )
    costs = re.findall(
        r"window\s+([\d,]+) records: \+([\d,]+) new -> (\d+) queries, (\d+) ms "
        r"\(median of \d+: ([\d, ]+)\)",
        out,
    )
    if len(catch_up) != len(windows) or len(costs) != len(windows):
        raise RuntimeError(f"not every figure is in the output:\n{out[-3000:]}")
    num = lambda text: int(text.replace(",", ""))  # noqa: E731
    for window, seeded, processed, wall, cpu in catch_up:
        label = f"cycle over {num(processed):,} records, window to {num(window):,} (wall)"
        rate = float(num(wall))
        if num(processed) >= 50_000:  # a small catch-up is mostly the cycle's fixed cost
            result.add(label, rate, "records/s", f">= {TARGET:,}", rate >= TARGET)
        else:
            result.add(label, rate, "records/s")
        result.add("same, per CPU second of the worker", float(num(cpu)), "records/s")
        result.details.setdefault("seed_seconds", {})[window] = float(seeded)
    per_cycle: dict[str, float] = {}
    for window, new, queries, ms, runs in costs:
        per_cycle[window] = float(ms)
        result.add(f"cycle over {new} new records, window {window}", float(ms), "ms")
        result.details.setdefault("queries", {})[window] = int(queries)
        result.details.setdefault("cycle_ms_runs", {})[window] = [int(x) for x in runs.split(", ")]
    ratio = max(per_cycle.values()) / max(min(per_cycle.values()), 1.0)
    first, last = costs[0][0], costs[-1][0]
    result.add(f"flat (within {FLAT:g}x) from {first} to {last}: max/min per-cycle ms",
               ratio, "x", f"<= {FLAT:g}", ratio <= FLAT)  # fmt: skip
    result.details["plans_at_largest_window"] = re.findall(r"^plan at [\d,]+: (.*)$", out, re.M)
    return result
