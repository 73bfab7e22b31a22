"""The benchmark harness itself (no server, no database): statistics, the
table, the client-process runner, the raw-ceiling worker and discovery."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from bench import core, ingest
from bench.__main__ import discover
from bench.server import BenchAgent, ServerConfig
from compliance_client.signing import Signer


def _agent() -> BenchAgent:
    signer = Signer.generate("bench-test")
    raw = signer.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return BenchAgent("bench-test", raw, "ak_unused", signer.key_id, "http://127.0.0.1:1")


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert core.percentile(values, 50) == pytest.approx(50.5)
    assert core.percentile(values, 99) == pytest.approx(99.01)
    assert core.percentile([], 99) == 0.0
    assert core.median([3.0, 1.0, 2.0]) == 2.0


def test_table_marks_missed_targets_and_errors() -> None:
    ok = core.Result("ingest")
    ok.add("batch", 6500.0, "events/s", ">= 6000", True)
    ok.add("p99", 31.0, "ms", "< 25", False)
    failed = core.Result("gate", error="Traceback...\nRuntimeError: server did not start")

    table = core.render_table([ok, failed])

    assert "6,500" in table
    assert "MISSED" in table
    assert "RuntimeError: server did not start" in table
    assert not ok.targets_met
    assert not failed.targets_met


def _sleepy_client(arg: float, ready: Any) -> dict[str, Any]:
    time.sleep(arg)  # preparing: not timed
    ready()
    t0 = time.monotonic()
    return {"t0": t0, "t1": time.monotonic()}


def _failing_client(arg: int, ready: Any) -> dict[str, Any]:
    if arg == 1:
        raise ValueError("client 1 broke while preparing")
    ready()
    return {"t0": 0.0, "t1": 0.0}


def test_clients_start_their_timed_phase_together() -> None:
    started: list[float] = []

    results = core.run_processes(
        _sleepy_client, [0.0, 0.3], on_start=lambda: started.append(time.monotonic())
    )

    assert len(results) == 2
    assert len(started) == 1
    assert abs(results[0]["t0"] - results[1]["t0"]) < 0.1  # the fast one waited for the slow one
    assert core.span(results) < 0.1


def test_a_failing_client_fails_the_run_without_hanging() -> None:
    with pytest.raises(RuntimeError, match="client 1 broke"):
        core.run_processes(_failing_client, [0, 1], timeout_s=30)


def test_ceiling_worker_verifies_every_signed_event() -> None:
    out = ingest._ceiling_worker((_agent(), "t", 200), lambda: None)

    assert out["events"] == 200
    assert out["t1"] >= out["t0"]


def test_signed_bodies_hold_unique_ordered_fill_events() -> None:
    bodies = ingest.signed_bodies(_agent(), "t", 3, 5)

    items = [i for b in bodies for i in json.loads(b)["events"]]
    assert len(items) == 15
    assert len({i["event_id"] for i in items}) == 15
    assert {i["event_type"] for i in items} == {"ORDER_FILLED"}
    assert all(isinstance(i["payload"]["price"], str) for i in items)  # decimal strings


def test_discovery_finds_the_ingest_benchmark() -> None:
    assert "ingest" in discover()


def test_server_refuses_to_drop_a_database_not_named_for_benchmarks() -> None:
    with pytest.raises(ValueError, match="must contain 'bench'"):
        ServerConfig(db_name="compliance")
