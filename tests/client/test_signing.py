"""compliance_client.signing: the wire text is JCS(envelope) plus key_id and
signature, byte for byte, whichever way it was built (the flat fast path or
canonicalize); the signature verifies over exactly those bytes; UUIDv7 ids
are well formed, time-ordered and never repeat; a batch signs at its end."""

from __future__ import annotations

import base64
import json
import multiprocessing
import re
import time
import uuid

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance_client import ComplianceClient
from compliance_client.jcs import CanonicalizationError, encode_sorted
from compliance_client.outbox import Outbox
from compliance_client.signing import Signer, uuid7
from tests.client.test_jcs import MAX_SAFE, keys, text, values

ENVELOPE_KEYS = ("agent_id", "event_id", "event_type", "occurred_at_us", "payload")
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SIGNER = Signer.generate("bot-\u00e9")  # a non-ASCII agent id: its text is made once


def _check(item, event_type, payload, event_id=None, occurred_at_us=None):
    """The item's text parses to the envelope asked for, begins with exactly
    rfc8785's bytes for it, and its signature verifies over those bytes."""
    wire = json.loads(item.text)
    envelope = {k: wire[k] for k in ENVELOPE_KEYS}
    assert envelope["payload"] == payload
    assert envelope["event_type"] == event_type
    assert envelope["agent_id"] == SIGNER.agent_id
    if event_id is not None:
        assert envelope["event_id"] == event_id
    if occurred_at_us is not None:
        assert envelope["occurred_at_us"] == occurred_at_us
    signed = rfc8785.dumps(envelope)
    assert item.text.encode().startswith(signed[:-1])
    assert wire["key_id"] == SIGNER.key_id
    SIGNER.private_key.public_key().verify(base64.b64decode(wire["signature"]), signed)
    assert item.event_id == envelope["event_id"]


@settings(max_examples=500, deadline=None)
@given(
    payload=st.dictionaries(keys, text, max_size=6),
    event_type=text.filter(bool),
    event_id=st.one_of(st.none(), text.filter(bool)),
    occurred=st.one_of(st.none(), st.integers(0, MAX_SAFE)),
)
def test_flat_payloads_are_exactly_jcs(payload, event_type, event_id, occurred):
    """Flat string payloads take the built-from-parts path when ASCII, and
    canonicalize() otherwise: the same bytes either way."""
    item = SIGNER.wire(event_type, payload, event_id=event_id, occurred_at_us=occurred)
    _check(item, event_type, payload, event_id, occurred)


@settings(max_examples=300, deadline=None)
@given(payload=st.dictionaries(keys, values, max_size=5))
def test_any_payload_is_exactly_jcs(payload):
    item = SIGNER.wire("CUSTOM", payload)
    _check(item, "CUSTOM", payload)


def test_an_empty_event_id_gets_one_made_here_as_before():
    item = SIGNER.wire("ORDER_FILLED", {"order_id": "o-1"}, event_id="")
    assert UUID7.match(item.event_id)
    assert item.fresh
    assert json.loads(item.text)["event_id"] == item.event_id
    assert not SIGNER.wire("ORDER_FILLED", {"order_id": "o-1"}, event_id="mine").fresh


def test_payloads_json_cannot_carry_are_refused():
    with pytest.raises(CanonicalizationError):
        SIGNER.wire("CUSTOM", {"x": float("nan")})
    with pytest.raises(CanonicalizationError):
        SIGNER.wire("CUSTOM", {"x": 2**60})


def test_encode_sorted_is_the_encoder_with_sorted_keys():
    value = {"b": "2", "a": ["é", {"d": None, "c": True}], "\ue000": "x"}
    assert encode_sorted(value) == json.dumps(
        value, ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )
    with pytest.raises(TypeError):
        encode_sorted({"x": object()})


def test_uuid7_ids_are_well_formed_ordered_and_unique():
    before_ms = time.time_ns() // 1_000_000
    ids = [uuid7() for _ in range(5000)]
    after_ms = time.time_ns() // 1_000_000
    assert all(UUID7.match(i) for i in ids)
    assert len(set(ids)) == len(ids)
    parsed = [uuid.UUID(i) for i in ids]
    assert {u.version for u in parsed} == {7}
    assert {u.variant for u in parsed} == {uuid.RFC_4122}
    stamps = [u.int >> 80 for u in parsed]
    assert stamps == sorted(stamps)
    assert before_ms <= stamps[0]
    assert stamps[-1] <= after_ms
    # The random part is random: each of the 62 bits of rand_b takes both values.
    low = [u.int & ((1 << 62) - 1) for u in parsed]
    assert all(any(v >> b & 1 for v in low) and not all(v >> b & 1 for v in low) for b in range(62))


def _child_ids(queue):
    queue.put([uuid7() for _ in range(50)])


def test_a_forked_child_never_repeats_its_parents_ids():
    uuid7()  # the parent has random digits buffered
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_ids, args=(queue,))
    child.start()
    theirs = queue.get(timeout=30)
    child.join(30)
    ours = [uuid7() for _ in range(50)]
    assert not {i[14:] for i in theirs} & {i[14:] for i in ours}


def test_a_batch_signs_at_its_end_and_keeps_nothing_if_it_raises(tmp_path):
    client = ComplianceClient("http://127.0.0.1:9", "key", SIGNER, outbox_path=tmp_path / "o.db")
    assert client.sender is not None
    client.sender.stop()
    with client.batch():
        first = client.fill(order_id="o-1", fill_id="f-1", quantity="1", price="2")
        again = client.record("ORDER_FILLED", {"order_id": "o-1"}, event_id="given-1")
        assert first["status"] == "batched"
        assert client.pending() == 0  # nothing is written before the block ends

    def failing_strategy() -> None:
        with client.batch():
            client.fill(order_id="o-1", fill_id="f-2", quantity="1", price="2")
            raise RuntimeError("the strategy failed")

    with pytest.raises(RuntimeError):
        failing_strategy()
    with client.batch():  # a given id already here is a duplicate, here and in the batch
        client.record("ORDER_FILLED", {"order_id": "o-1"}, event_id="given-1")
        client.record("ORDER_FILLED", {"order_id": "o-2"}, event_id="given-2")
        client.record("ORDER_FILLED", {"order_id": "o-3"}, event_id="given-2")
    assert client.pending() == 3
    client.close()
    outbox = Outbox(tmp_path / "o.db", SIGNER.agent_id)
    texts = [r[0] for r in outbox._conn.execute("SELECT item FROM pending ORDER BY id")]
    outbox._conn.close()
    assert [json.loads(t)["event_id"] for t in texts] == [first["event_id"], "given-1", "given-2"]
    assert [json.loads(t)["payload"].get("fill_id") for t in texts] == ["f-1", None, None]
    for item_text in texts:
        wire = json.loads(item_text)
        envelope = {k: wire[k] for k in ENVELOPE_KEYS}
        SIGNER.private_key.public_key().verify(
            base64.b64decode(wire["signature"]), rfc8785.dumps(envelope)
        )
    assert again["event_id"] == "given-1"
