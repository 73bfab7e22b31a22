"""What every benchmark shares: results, the table, statistics and the
multi-process load runner."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import platform
import statistics
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Metric:
    """One row of the table. `target` is a readable bound (">= 6000"); `ok`
    is None for figures that have no target."""

    name: str
    value: float
    unit: str
    target: str | None = None
    ok: bool | None = None


@dataclass
class Result:
    name: str
    metrics: list[Metric] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    def add(
        self, name: str, value: float, unit: str, target: str | None = None, ok: bool | None = None
    ) -> Metric:
        metric = Metric(name, value, unit, target, ok)
        self.metrics.append(metric)
        return metric

    @property
    def targets_met(self) -> bool:
        return self.error is None and all(m.ok is not False for m in self.metrics)

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(self.seconds, 1),
            "machine": machine_info(),
            "targets_met": self.targets_met,
            "error": self.error,
            "metrics": [asdict(m) for m in self.metrics],
            **self.details,
        }


@dataclass
class Context:
    """What a benchmark gets: the server (None when NEEDS_SERVER is False),
    `scale` to shrink or grow its fixed request counts (the --quick flag
    passes 0.25), and `runs` timed repetitions whose median is reported."""

    server: Any
    scale: float = 1.0
    runs: int = 3

    def count(self, n: int, minimum: int = 1) -> int:
        return max(minimum, round(n * self.scale))


def machine_info() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# -- statistics ---------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# -- output -------------------------------------------------------------------


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:,.1f}"
    return f"{value:,.2f}"


def render_table(results: Sequence[Result]) -> str:
    rows = [("benchmark", "metric", "value", "unit", "target", "")]
    for result in results:
        if result.error is not None:
            rows.append(
                (result.name, "ERROR", "", "", "", result.error.strip().splitlines()[-1][:80])
            )
        for m in result.metrics:
            status = "" if m.ok is None else ("ok" if m.ok else "MISSED")
            rows.append((result.name, m.name, _fmt(m.value), m.unit, m.target or "", status))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.rjust(widths[i]) if i == 2 else cell.ljust(widths[i]) for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_result(result: Result, directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.name}.json"
    path.write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    return path


# -- load generation ----------------------------------------------------------

# A client function runs in its own process: it prepares its work (signing,
# encoding: untimed), calls `ready()`, which returns once every client is
# prepared, then does the timed part and returns a picklable dict.
ClientFn = Callable[[Any, Callable[[], None]], dict[str, Any]]


# What a client reports when it stopped only because another one failed first.
_BROKEN_BY_ANOTHER = "stopped: another client failed before the timed phase"


def _client_entry(fn: ClientFn, arg: Any, barrier: Any, out: Any, index: int) -> None:
    try:
        result = fn(arg, lambda: barrier.wait(timeout=300))
        out.put((index, result, None))
    except threading.BrokenBarrierError:
        out.put((index, None, _BROKEN_BY_ANOTHER))
    except BaseException:
        barrier.abort()
        out.put((index, None, traceback.format_exc()))


def run_processes(
    fn: ClientFn,
    args: Sequence[Any],
    *,
    timeout_s: float = 180,
    on_start: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Run `fn(arg, ready)` in one process per arg, all timed phases starting
    together (`on_start` runs in this process at that moment); return their
    results in order. Any client failure fails the whole run, and no client
    process outlives this call."""
    mp = multiprocessing.get_context("fork")
    barrier = mp.Barrier(len(args) + 1)
    out = mp.Queue()
    procs = [
        mp.Process(target=_client_entry, args=(fn, arg, barrier, out, i), daemon=True)
        for i, arg in enumerate(args)
    ]
    results: list[dict[str, Any] | None] = [None] * len(args)
    deadline = time.monotonic() + timeout_s
    try:
        for p in procs:
            p.start()
        try:
            barrier.wait(timeout=timeout_s)
        except threading.BrokenBarrierError:
            pass  # a client failed while preparing: its error is in the queue
        else:
            if on_start is not None:
                on_start()
        stopped: list[int] = []
        for _ in procs:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"clients did not finish within {timeout_s:.0f}s")
            index, result, error = out.get(timeout=remaining)
            if error == _BROKEN_BY_ANOTHER:
                stopped.append(index)  # the failure that caused it is reported instead
                continue
            if error is not None:
                raise RuntimeError(f"client {index} failed:\n{error}")
            results[index] = result
        if stopped:
            raise RuntimeError(f"client {stopped[0]} {_BROKEN_BY_ANOTHER}")
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
        out.close()
        out.join_thread()
    return [r for r in results if r is not None]


# -- CPU accounting (Linux /proc) ---------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def child_pids(parent: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == parent:
                        pids.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return pids


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, elapsed) CPU seconds summed over all cores since boot."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / _CLK_TCK, total / _CLK_TCK


def background_load(seconds: float = 1.0) -> float:
    """Cores kept busy by other processes while we sit idle for `seconds`:
    anything well above 0 means the figures will come out low."""
    busy0, total0 = machine_cpu_seconds()
    time.sleep(seconds)
    busy1, total1 = machine_cpu_seconds()
    cores = os.cpu_count() or 1
    return (busy1 - busy0) / (total1 - total0) * cores if total1 > total0 else 0.0


def wait_for_quiet(max_wait_s: float = 20, threshold: float = 0.25) -> float:
    """Wait (at most max_wait_s) until other processes use under `threshold`
    cores; return the last measured background load."""
    deadline = time.monotonic() + max_wait_s
    load = background_load()
    while load >= threshold and time.monotonic() < deadline:
        load = background_load()
    return load


def span(results: Sequence[dict[str, Any]]) -> float:
    """Wall time of the timed phase: first client start to last client end
    (time.monotonic is one system-wide clock on Linux)."""
    return max(r["t1"] for r in results) - min(r["t0"] for r in results)


class HttpClient:
    """A keep-alive HTTP/1.1 client for one process (http.client: a few
    microseconds per request, where httpx costs a hundred). Reconnects by
    itself when the server closes the connection (gunicorn sync workers do
    after every response)."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None, timeout: float = 60):
        host_port = base_url.split("://", 1)[1].rstrip("/")
        host, _, port = host_port.partition(":")
        if host != "127.0.0.1":
            raise ValueError("benchmarks only send traffic to 127.0.0.1")
        self.conn = http.client.HTTPConnection(host, int(port or 80), timeout=timeout)
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self._lock = threading.Lock()

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        with self._lock:
            try:
                self.conn.request(method, path, body=body, headers=self.headers)
                response = self.conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed a kept-alive connection between requests: retry once.
                self.conn.close()
                self.conn.request(method, path, body=body, headers=self.headers)
                response = self.conn.getresponse()
            return response.status, response.read()

    def close(self) -> None:
        self.conn.close()
