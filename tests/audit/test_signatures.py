"""audit.signatures: a batch's Ed25519 signatures verified on helper threads,
the same verdict as one at a time; and the events API's errors for a big
batch (one verified by the helpers) exactly as for a small one."""

from __future__ import annotations

import base64
import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import signatures
from audit.signatures import HAND_OVER_EVERY as EVERY
from audit.signatures import BatchVerifier
from tests.audit.test_events_api import snapshot
from tests.conftest import fill_payload


def _signed(count: int, bad: set[int]) -> tuple[list[tuple[int, object, bytes, bytes]], object]:
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    items = []
    for index in range(count):
        message = f"message {index}".encode()
        signature = key.sign(message)
        if index in bad:
            message += b"!"  # the signature no longer matches
        items.append((index, public, signature, message))
    return items, public


@pytest.mark.parametrize("helpers", [0, 1, 2])
@pytest.mark.parametrize("count", [1, EVERY - 1, EVERY, 5 * EVERY + 3])
def test_verdict_is_the_same_with_or_without_helpers(monkeypatch, helpers, count):
    monkeypatch.setattr(signatures, "_pool", None)
    monkeypatch.setattr(signatures, "helper_count", lambda: helpers)
    monkeypatch.setattr(signatures, "core_idle", lambda: True)
    bad = {i for i in (0, EVERY - 1, EVERY, count - 1) if i < count}
    items, _ = _signed(count, bad)
    verifier = BatchVerifier()
    for item in items:
        verifier.add(*item)
    assert verifier.invalid() == bad
    assert verifier.invalid() == set()  # nothing is verified twice
    if helpers:
        assert signatures._pool is not None
        signatures._pool.shutdown()


def test_the_caller_never_waits_for_a_helper(monkeypatch):
    """A helper that takes an item and then stalls (descheduled on a busy
    machine) does not hold the request up: the caller verifies everything
    else, and that item again, and answers."""
    monkeypatch.setattr(signatures, "_pool", None)
    monkeypatch.setattr(signatures, "helper_count", lambda: 1)
    monkeypatch.setattr(signatures, "core_idle", lambda: True)
    verified: dict[str, int] = {}
    helper_has_one, release = threading.Event(), threading.Event()
    real = signatures._valid

    def recording(item):
        name = threading.current_thread().name
        verified[name] = verified.get(name, 0) + 1
        if name.startswith("ed25519"):
            helper_has_one.set()
            assert release.wait(30)  # stalls until the caller has answered
        return real(item)

    monkeypatch.setattr(signatures, "_valid", recording)
    count = EVERY * 4
    items, _ = _signed(count, {0, 5, count - 1})
    verifier = BatchVerifier()
    for item in items:
        verifier.add(*item)
    assert helper_has_one.wait(10)
    assert verifier.invalid() == {0, 5, count - 1}  # answered with the helper stalled
    caller = verified.pop(threading.current_thread().name)
    assert caller == count  # every item, the stalled helper's one included
    release.set()
    assert signatures._pool is not None
    signatures._pool.shutdown()
    assert sum(verified.values()) >= 1


@pytest.mark.parametrize("idle", [True, False])
def test_help_is_asked_for_only_while_a_core_is_idle(monkeypatch, idle):
    monkeypatch.setattr(signatures, "_pool", None)
    monkeypatch.setattr(signatures, "helper_count", lambda: 1)
    monkeypatch.setattr(signatures, "core_idle", lambda: idle)
    helped = []
    real = signatures._valid

    def recording(item):
        if threading.current_thread().name.startswith("ed25519"):
            helped.append(item.caller_index)
        return real(item)

    monkeypatch.setattr(signatures, "_valid", recording)
    items, _ = _signed(EVERY * 20, {3})
    verifier = BatchVerifier()
    for item in items:
        verifier.add(*item)
        time.sleep(0.0002)  # the caller's own checks of the next item
    assert verifier.invalid() == {3}
    assert bool(helped) is idle
    assert signatures._pool is not None
    signatures._pool.shutdown()


def test_a_core_is_idle_when_fewer_threads_run_than_cpus(monkeypatch):
    assert (signatures._runnable_threads() or 0) >= 1  # this thread, at least
    monkeypatch.setattr(signatures, "_cpus", lambda: 2)
    monkeypatch.setattr(signatures, "_runnable_threads", lambda: 1)
    assert signatures.core_idle()
    monkeypatch.setattr(signatures, "_runnable_threads", lambda: 2)
    assert not signatures.core_idle()
    # this process's own busy helper is not someone else's work
    monkeypatch.setattr(signatures, "_busy_helpers", {12345})
    assert signatures.core_idle()
    monkeypatch.setattr(signatures, "_runnable_threads", lambda: None)  # not Linux
    assert signatures.core_idle()


def test_one_cpu_means_no_helpers(monkeypatch):
    monkeypatch.setattr(signatures.os, "sched_getaffinity", lambda _pid: {0})
    assert signatures.helper_count() == 0
    monkeypatch.setattr(signatures.os, "sched_getaffinity", lambda _pid: set(range(64)))
    assert signatures.helper_count() == signatures.MAX_HELPERS


@pytest.mark.django_db
def test_big_batch_lists_bad_signatures_first_and_stores_nothing(bot):
    """A 200-item batch (helpers verify some of it): each item reports the first
    check it fails, a bad signature before a schema violation, in index order."""
    items = [bot.signer.item("ORDER_FILLED", fill_payload(n)) for n in range(200)]
    items[3]["signature"] = base64.b64encode(bytes(64)).decode()  # decodes, does not verify
    items[77]["payload"]["quantity"] = "3"  # signed over another quantity
    items[78]["payload"]["quantity"] = "nope"  # schema violation, but the signature fails first
    items[150]["signature"] = "not base64"
    fresh = bot.signer.item("ORDER_FILLED", {**fill_payload(999), "quantity": "nope"})
    items[199] = fresh  # signed as it is: the schema violation is its error
    before = snapshot()
    response = bot.post_events(items)
    assert response.status_code == 400, response.content
    assert [(e["index"], e["code"]) for e in response.json()["errors"]] == [
        (3, "invalid_signature"),
        (77, "invalid_signature"),
        (78, "invalid_signature"),
        (150, "invalid_signature"),
        (199, "schema_violation"),
    ]
    assert snapshot() == before


@pytest.mark.django_db
def test_big_good_batch_is_stored_in_order(bot):
    items = [bot.signer.item("ORDER_FILLED", fill_payload(n)) for n in range(300)]
    response = bot.post_events(items)
    assert response.status_code == 201, response.content
    results = response.json()["results"]
    assert [r["event_id"] for r in results] == [i["event_id"] for i in items]
    assert [r["seq"] for r in results] == list(range(results[0]["seq"], results[0]["seq"] + 300))
