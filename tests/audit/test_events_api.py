"""POST /api/v1/events/: every error code, all-or-nothing, idempotency (CONTRACT section 6)."""

from __future__ import annotations

import base64
import json

import pytest

from accounts.models import Agent
from audit.models import Log, Record
from compliance_client.signing import Signer
from tests.conftest import fill_payload

pytestmark = pytest.mark.django_db


def snapshot() -> tuple[int, int, bytes]:
    head = Log.objects.get(name="default")
    return Record.objects.count(), head.size, bytes(head.chain_hash)


def assert_rejected(response, status: int, index: int, code: str) -> None:
    assert response.status_code == status, response.content
    errors = response.json()["errors"]
    assert {"index": index, "code": code} == {k: errors[0][k] for k in ("index", "code")}
    assert errors[0]["detail"]


def test_fill_is_stored_as_signed_record_with_chain(bot):
    item = bot.signer.item("ORDER_FILLED", fill_payload())
    response = bot.post_events([item])
    assert response.status_code == 201, response.content
    (result,) = response.json()["results"]
    assert result["status"] == "created"
    record = Record.objects.get(seq=result["seq"])
    stored = record.as_dict()
    assert stored["source"] == {
        "envelope": {
            k: item[k] for k in ("agent_id", "event_id", "event_type", "occurred_at_us", "payload")
        },
        "key_id": item["key_id"],
        "signature": item["signature"],
    }
    assert stored["actor"] == {"type": "agent", "id": "bot-1"}
    # ORDER_FILLED v2 added the optional market and side (CONTRACT 12); a v1
    # payload is valid under it and recorded with the version it was checked against
    assert stored["data"]["schema_version"] == 2
    assert "clock_drift_us" in stored["data"]
    assert result["leaf_hash"] == stored["leaf_hash"]
    assert Log.objects.get().size == result["seq"] + 1


def test_batch_is_appended_in_order_under_one_lock(bot):
    items = [bot.signer.item("ORDER_FILLED", fill_payload(n)) for n in range(5)]
    response = bot.post_events(items)
    assert response.status_code == 201
    seqs = [r["seq"] for r in response.json()["results"]]
    assert seqs == list(range(seqs[0], seqs[0] + 5))
    assert [r["event_id"] for r in response.json()["results"]] == [i["event_id"] for i in items]


def test_resending_same_envelope_returns_original_seq(bot):
    item = bot.signer.item("ORDER_FILLED", fill_payload())
    first = bot.post_events([item]).json()["results"][0]
    before = snapshot()
    again = bot.post_events([item])
    assert again.status_code == 201
    assert again.json()["results"][0] == {**first, "status": "duplicate"}
    assert snapshot() == before


def test_same_event_id_twice_in_one_batch_is_stored_once(bot):
    item = bot.signer.item("ORDER_FILLED", fill_payload())
    response = bot.post_events([item, item])
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created", "duplicate"]
    assert results[0]["seq"] == results[1]["seq"]
    assert Record.objects.filter(event_id=item["event_id"]).count() == 1


def test_same_event_id_with_other_content_is_409_and_nothing_stored(bot):
    item = bot.signer.item("ORDER_FILLED", fill_payload(), event_id="e-1")
    bot.post_events([item])
    before = snapshot()
    other = bot.signer.item("ORDER_FILLED", fill_payload(2), event_id="e-1")
    fresh = bot.signer.item("ORDER_FILLED", fill_payload(3))
    response = bot.post_events([fresh, other])
    assert response.status_code == 409
    assert response.json()["code"] == "event_id_conflict"
    assert snapshot() == before


def test_one_bad_item_rejects_whole_batch(bot):
    good = bot.signer.item("ORDER_FILLED", fill_payload(1))
    bad = bot.signer.item("ORDER_FILLED", fill_payload(2))
    bad["payload"]["quantity"] = "3"  # signature no longer matches
    before = snapshot()
    response = bot.post_events([good, bad])
    assert_rejected(response, 400, 1, "invalid_signature")
    assert snapshot() == before


def test_every_bad_item_is_listed(bot):
    items = [bot.signer.item("ORDER_FILLED", fill_payload(n)) for n in range(3)]
    items[0]["signature"] = base64.b64encode(bytes(64)).decode()
    items[2]["event_type"] = "NOPE"
    before = snapshot()
    response = bot.post_events(items)
    assert response.status_code == 400
    assert [(e["index"], e["code"]) for e in response.json()["errors"]] == [
        (0, "invalid_signature"),
        (2, "unknown_event_type"),
    ]
    assert snapshot() == before


def test_unknown_key_is_rejected(bot):
    stranger = Signer.generate("bot-1")
    before = snapshot()
    assert_rejected(
        bot.post_events([stranger.item("ORDER_FILLED", fill_payload())]), 400, 0, "unknown_key"
    )
    assert snapshot() == before


def test_revoked_key_is_rejected(bot, client_for):
    item = bot.signer.item("ORDER_FILLED", fill_payload())
    revoked = client_for("rita").post(f"/api/v1/agents/bot-1/keys/{bot.signer.key_id}/revoke/")
    assert revoked.status_code == 200
    before = snapshot()
    assert_rejected(bot.post_events([item]), 400, 0, "revoked_key")
    assert snapshot() == before


def test_envelope_for_another_agent_is_agent_mismatch(bot, make_bot):
    other = make_bot("bot-2")
    item = other.signer.item("ORDER_FILLED", fill_payload())
    before = snapshot()
    assert_rejected(bot.post_events([item]), 400, 0, "agent_mismatch")
    assert snapshot() == before


def test_unregistered_event_type_is_rejected(bot):
    before = snapshot()
    assert_rejected(
        bot.post_events([bot.signer.item("MOON_LANDING", {})]), 400, 0, "unknown_event_type"
    )
    assert snapshot() == before


@pytest.mark.parametrize(
    "event_type", ["LIMIT_BREACH", "APPROVAL_GRANTED", "CONFIG_CHANGED", "DATA_PURGED"]
)
def test_server_only_types_are_refused_from_bots(bot, event_type):
    before = snapshot()
    response = bot.post_events([bot.signer.item(event_type, {"approval_id": 1})])
    assert_rejected(response, 400, 0, "server_only_event_type")
    assert snapshot() == before


def test_orders_must_go_through_the_gate(bot):
    payload = {
        "order_id": "o",
        "market": "X",
        "side": "buy",
        "quantity": "1",
        "price": "1",
        "order_type": "limit",
    }
    before = snapshot()
    assert_rejected(
        bot.post_events([bot.signer.item("ORDER_SUBMITTED", payload)]),
        400,
        0,
        "gate_only_event_type",
    )
    assert snapshot() == before


@pytest.mark.parametrize(
    "payload",
    [
        {"order_id": "o-1", "fill_id": "f-1", "quantity": "2"},  # missing price
        {"order_id": "o-1", "fill_id": "f-1", "quantity": "abc", "price": "1"},
        {"order_id": "o-1", "fill_id": "f-1", "quantity": "2", "price": "1", "extra": "x"},
        {"order_id": "o-1", "fill_id": "f-1", "quantity": 2, "price": "1"},
    ],
)
def test_payload_violating_schema_is_rejected(bot, payload):
    before = snapshot()
    assert_rejected(
        bot.post_events([bot.signer.item("ORDER_FILLED", payload)]), 400, 0, "schema_violation"
    )
    assert snapshot() == before


def test_json_float_is_rejected(bot):
    # The float must reach the server as a JSON float, so the body is sent raw.
    item = bot.signer.item("POSITION_CHANGED", {"market": "BTC-USD", "quantity": "1", "price": "1"})
    body = json.dumps({"events": [item]}).replace('"price": "1"', '"price": 1.5')
    before = snapshot()
    response = bot.client.post("/api/v1/events/", body, content_type="application/json")
    assert_rejected(response, 400, 0, "float_not_allowed")
    assert snapshot() == before


def test_missing_envelope_key_is_invalid_envelope(bot):
    item = bot.signer.item("ORDER_FILLED", fill_payload())
    del item["occurred_at_us"]
    before = snapshot()
    assert_rejected(bot.post_events([item]), 400, 0, "invalid_envelope")
    assert snapshot() == before


def test_more_than_500_items_is_413(bot):
    item = bot.signer.item("ORDER_FILLED", fill_payload())
    before = snapshot()
    response = bot.post_events([item] * 501)
    assert response.status_code == 413
    assert response.json()["code"] == "batch_too_large"
    assert snapshot() == before


def test_oversized_body_is_413(bot, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    item = bot.signer.item("SYSTEM_ERROR", {"error_type": "x", "message": "m" * 2000})
    before = snapshot()
    response = bot.post_events([item])
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert snapshot() == before


def test_malformed_json_is_400(bot):
    before = snapshot()
    response = bot.client.post("/api/v1/events/", '{"events": [', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert snapshot() == before


def test_wrong_content_type_is_415(bot):
    before = snapshot()
    response = bot.client.post(
        "/api/v1/events/", "events=1", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert snapshot() == before


@pytest.mark.parametrize("body", [[], {"events": {}}, {"events": []}, {"evts": []}])
def test_body_of_wrong_shape_is_400(bot, body):
    before = snapshot()
    response = bot.client.post("/api/v1/events/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] in {"invalid_body", "empty_batch"}
    assert snapshot() == before


def test_unknown_api_key_is_401(bot, api):
    api.credentials(HTTP_AUTHORIZATION="Bearer cbk_not-a-real-key")
    before = snapshot()
    response = api.post(
        "/api/v1/events/",
        {"events": [bot.signer.item("ORDER_FILLED", fill_payload())]},
        format="json",
    )
    assert response.status_code == 401
    assert snapshot() == before


def test_suspended_agent_is_403(bot, client_for):
    suspended = client_for("rita").post(
        "/api/v1/agents/bot-1/status/", {"status": "suspended", "reason": "runaway"}, format="json"
    )
    assert suspended.status_code == 200
    before = snapshot()
    response = bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload())])
    assert response.status_code == 403
    assert response.json()["code"] == "agent_suspended"
    assert snapshot() == before
    assert Agent.objects.get(agent_id="bot-1").status == "suspended"


def test_humans_cannot_post_bot_events(bot, client_for):
    before = snapshot()
    response = client_for("adam").post(
        "/api/v1/events/",
        {"events": [bot.signer.item("ORDER_FILLED", fill_payload())]},
        format="json",
    )
    assert response.status_code == 403
    assert snapshot() == before


def test_events_list_filters_and_paginates_by_cursor(bot, make_bot, client_for):
    other = make_bot("bot-2")
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload(n)) for n in range(5)])
    other.post_events([other.signer.item("ORDER_FILLED", fill_payload(9))])
    viewer = client_for("carol")
    page = viewer.get("/api/v1/events/", {"agent_id": "bot-1", "limit": 3}).json()
    assert [r["source"]["envelope"]["payload"]["fill_id"] for r in page["results"]] == [
        "f-0",
        "f-1",
        "f-2",
    ]
    assert page["next"]
    rest = viewer.get(page["next"]).json()
    assert [r["source"]["envelope"]["payload"]["fill_id"] for r in rest["results"]] == [
        "f-3",
        "f-4",
    ]
    assert rest["next"] is None
    typed = viewer.get("/api/v1/events/", {"event_type": "AGENT_REGISTERED"}).json()["results"]
    assert [r["data"]["agent_id"] for r in typed] == ["bot-1", "bot-2"]
    one = viewer.get(f"/api/v1/events/{typed[0]['seq']}/").json()
    assert one == typed[0]
    assert set(one) == {
        "seq",
        "recorded_at_us",
        "event_type",
        "actor",
        "source",
        "data",
        "leaf_hash",
        "chain_hash",
    }


def test_events_list_rejects_bad_filters(client_for):
    response = client_for("carol").get("/api/v1/events/", {"start": "yesterday"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
