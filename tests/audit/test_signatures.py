"""audit.signatures: a batch's Ed25519 signatures verified on helper threads,
the same verdict as one at a time; and the events API's errors for a big
batch (one verified by the helpers) exactly as for a small one."""

from __future__ import annotations

import base64
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import signatures
from audit.signatures import CHUNK, BatchVerifier
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
@pytest.mark.parametrize("count", [1, CHUNK - 1, CHUNK, 5 * CHUNK + 3])
def test_verdict_is_the_same_with_or_without_helpers(monkeypatch, helpers, count):
    monkeypatch.setattr(signatures, "_pool", None)
    monkeypatch.setattr(signatures, "helper_count", lambda: helpers)
    bad = {i for i in (0, CHUNK - 1, CHUNK, count - 1) if i < count}
    items, _ = _signed(count, bad)
    verifier = BatchVerifier()
    for item in items:
        verifier.add(*item)
    assert verifier.invalid() == bad
    assert verifier.invalid() == set()  # nothing is verified twice
    if helpers:
        assert signatures._pool is not None
        signatures._pool.shutdown()


def test_helpers_do_verify_off_the_callers_thread(monkeypatch):
    """Chunks handed over are verified on a helper thread while the caller
    goes on; at the end the caller verifies what no helper has started."""
    monkeypatch.setattr(signatures, "_pool", None)
    monkeypatch.setattr(signatures, "helper_count", lambda: 1)
    verified: dict[str, int] = {}
    helper_busy, caller_stole = threading.Event(), threading.Event()
    real = signatures._verify_chunk

    def recording(chunk):
        name = threading.current_thread().name
        verified[name] = verified.get(name, 0) + len(chunk)
        if name.startswith("ed25519"):
            helper_busy.set()
            assert caller_stole.wait(10)  # the helper holds its first chunk until the caller steals
        elif chunk:
            caller_stole.set()
        return real(chunk)

    monkeypatch.setattr(signatures, "_verify_chunk", recording)
    items, _ = _signed(CHUNK * 8, {5, CHUNK * 8 - 1})
    verifier = BatchVerifier()
    for item in items:
        verifier.add(*item)
    assert helper_busy.wait(10)
    assert verifier.invalid() == {5, CHUNK * 8 - 1}
    caller = verified.pop(threading.current_thread().name)
    (helper,) = verified.values()
    assert caller >= CHUNK
    assert helper >= CHUNK
    assert caller + helper == CHUNK * 8  # each signature verified once
    assert signatures._pool is not None
    signatures._pool.shutdown()


def test_one_cpu_means_no_helpers(monkeypatch):
    monkeypatch.setattr(signatures.os, "sched_getaffinity", lambda _pid: {0})
    assert signatures.helper_count() == 0
    monkeypatch.setattr(signatures.os, "sched_getaffinity", lambda _pid: set(range(64)))
    assert signatures.helper_count() == signatures.MAX_HELPERS


@pytest.mark.django_db
def test_big_batch_lists_bad_signatures_first_and_stores_nothing(bot):
    """A 200-item batch (verified on helpers): each item reports the first
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
