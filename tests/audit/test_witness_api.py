"""Witness keys, cosignatures, the k-of-n rule and the public transparency
endpoints (issue 16). Every refusal asserts that nothing was stored."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.models import Checkpoint, Cosignature, Record, Witness
from audit.services.checkpoints import checkpoint_create
from audit.services.export import write_bundle
from audit.services.witnesses import witness_register
from compliance_client.note import checkpoint_body, cosign_checkpoint, witness_vkey
from tests.conftest import fill_payload

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "carol", "bob", "oscar", "rita", "alice", "adam"]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture
def call(client_for, api):
    return lambda who: api if who == "anonymous" else client_for(who)


@pytest.fixture
def w1(people):
    key = Ed25519PrivateKey.generate()
    witness_register(
        name="auditor.example/w1",
        public_key=b64(key.public_key().public_bytes_raw()),
        acting_user=people["adam"],
    )
    return key


def cosign(cp: Checkpoint, key: Ed25519PrivateKey, name: str = "auditor.example/w1") -> str:
    return cosign_checkpoint(checkpoint_body(cp.note), name, key, 1_765_000_000)[1]


def post_cosignature(api, cp: Checkpoint, key: Ed25519PrivateKey) -> str:  # type: ignore[no-untyped-def]
    line = cosign(cp, key)
    response = api.post(
        f"/api/v1/log/checkpoints/{cp.tree_size}/cosignatures/",
        {"witness": "auditor.example/w1", "cosignature": line},
        format="json",
    )
    assert response.status_code == 201, response.content
    return line


def witness_state() -> tuple:
    return (
        list(Witness.objects.order_by("pk").values_list("name", "revoked_at")),
        Cosignature.objects.count(),
        Record.objects.count(),
    )


@pytest.mark.parametrize("who", ROLES)
def test_only_admins_register_witness_keys(call, people, who):
    before = witness_state()
    key = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    response = call(who).post(
        "/api/v1/log/witnesses/",
        {"name": "regulator.example/w", "public_key": b64(key)},
        format="json",
    )
    if who == "adam":
        assert response.status_code == 201
        assert response.json()["vkey"] == witness_vkey("regulator.example/w", key)
        record = Record.objects.get(event_type="WITNESS_CHANGED")
        assert record.actor_id == "adam"
        assert "registered" in record.body
    else:
        assert response.status_code == (401 if who == "anonymous" else 403)
        assert witness_state() == before


@pytest.mark.parametrize("who", ROLES)
def test_only_admins_revoke_witness_keys(call, w1, who):
    before = witness_state()
    response = call(who).post(
        "/api/v1/log/witnesses/auditor.example/w1/revoke/", {"reason": "left"}, format="json"
    )
    if who == "adam":
        assert response.status_code == 200
        assert response.json()["revoked_at"]
        assert Record.objects.filter(event_type="WITNESS_CHANGED").count() == 2
    else:
        assert response.status_code == (401 if who == "anonymous" else 403)
        assert witness_state() == before


@pytest.mark.parametrize("who", ROLES)
def test_witness_list_is_for_viewers_and_up(call, w1, who):
    response = call(who).get("/api/v1/log/witnesses/")
    if who == "anonymous":
        assert response.status_code == 401
    else:
        assert [w["name"] for w in response.json()] == ["auditor.example/w1"]


def test_bad_witness_registration_is_refused_and_nothing_stored(client_for, w1):
    before = witness_state()
    admin = client_for("adam")
    for body, code in [
        ({"name": "a b", "public_key": b64(bytes(32))}, "invalid_witness_name"),
        ({"name": "x.example/w", "public_key": "not base64!"}, "invalid_public_key"),
        ({"name": "auditor.example/w1", "public_key": b64(bytes(32))}, "witness_exists"),
    ]:
        response = admin.post("/api/v1/log/witnesses/", body, format="json")
        assert response.status_code in (400, 409)
        assert response.json()["code"] == code
    assert witness_state() == before


def test_a_registered_witness_cosigns_without_an_account(api, bot, w1):
    cp = checkpoint_create(force=True)
    line = cosign(cp, w1)
    response = api.post(
        f"/api/v1/log/checkpoints/{cp.tree_size}/cosignatures/",
        {"witness": "auditor.example/w1", "cosignature": line},
        format="json",
    )
    assert response.status_code == 201, response.content
    stored = Cosignature.objects.get()
    assert stored.checkpoint == cp
    assert stored.line == line
    assert stored.timestamp == 1_765_000_000
    latest = api.get("/api/v1/log/checkpoints/latest/").json()
    assert latest["note"] == cp.note + line
    [shown] = api.get(f"/api/v1/log/checkpoints/{cp.tree_size}/cosignatures/").json()
    assert shown["cosignatures"][0]["witness"] == "auditor.example/w1"
    assert shown["published"] is True
    # the bare base64 of the line is accepted too; a resend is a conflict
    again = api.post(
        f"/api/v1/log/checkpoints/{cp.tree_size}/cosignatures/",
        {"witness": "auditor.example/w1", "cosignature": line.split(" ")[2]},
        format="json",
    )
    assert again.status_code == 409
    assert again.json()["code"] == "already_cosigned"
    assert Cosignature.objects.count() == 1


def test_cosignatures_that_do_not_verify_are_refused_and_nothing_stored(api, people, bot, w1):
    cp = checkpoint_create(force=True)
    stranger = Ed25519PrivateKey.generate()
    witness_register(
        name="gone.example/w",
        public_key=b64(stranger.public_key().public_bytes_raw()),
        acting_user=people["adam"],
    )
    from audit.services.witnesses import witness_revoke

    witness_revoke(name="gone.example/w", acting_user=people["adam"])
    before = witness_state()
    url = f"/api/v1/log/checkpoints/{cp.tree_size}/cosignatures/"
    cases = [
        # a key nobody registered under that name
        (url, "auditor.example/w1", cosign(cp, stranger), 403, "invalid_cosignature"),
        # not registered at all
        (url, "nobody.example/w", cosign(cp, w1, "nobody.example/w"), 403, "unknown_witness"),
        # revoked
        (url, "gone.example/w", cosign(cp, stranger, "gone.example/w"), 403, "witness_revoked"),
        # a checkpoint size that does not exist
        (
            f"/api/v1/log/checkpoints/{cp.tree_size + 5}/cosignatures/",
            "auditor.example/w1",
            cosign(cp, w1),
            404,
            "not_found",
        ),
        # garbage
        (url, "auditor.example/w1", "\u2014 auditor.example/w1 !!!", 400, "invalid_cosignature"),
    ]
    for path, name, line, status, code in cases:
        response = api.post(path, {"witness": name, "cosignature": line}, format="json")
        assert (response.status_code, response.json()["code"]) == (status, code), line
    assert witness_state() == before


def test_quorum_holds_back_the_latest_checkpoint_until_k_witnesses_cosign(api, bot, w1, settings):
    settings.COMPLIANCE_WITNESS_QUORUM = 1
    first = checkpoint_create(force=True)
    assert api.get("/api/v1/log/checkpoints/latest/").status_code == 404
    pending = api.get("/api/v1/log/checkpoints/latest/?include_unpublished=1").json()
    assert pending["timestamp_us"] == first.timestamp_us
    [shown] = api.get(f"/api/v1/log/checkpoints/{first.tree_size}/cosignatures/").json()
    assert shown["published"] is False
    assert shown["cosignatures"] == []
    api.post(
        f"/api/v1/log/checkpoints/{first.tree_size}/cosignatures/",
        {"witness": "auditor.example/w1", "cosignature": cosign(first, w1)},
        format="json",
    )
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload())])
    second = checkpoint_create(force=True)
    latest = api.get("/api/v1/log/checkpoints/latest/").json()
    assert latest["timestamp_us"] == first.timestamp_us
    newest = api.get("/api/v1/log/checkpoints/latest/?include_unpublished=1").json()
    assert newest["timestamp_us"] == second.timestamp_us


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/log/public-key/",
        "/api/v1/log/checkpoints/latest/",
        "/api/v1/log/proofs/consistency/?first=1&second=2",
        "/api/v1/log/checkpoints/{size}/cosignatures/",
    ],
)
def test_transparency_endpoints_are_public_unless_turned_off(api, client_for, bot, path, settings):
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload())])
    path = path.format(size=checkpoint_create(force=True).tree_size)
    assert api.get(path).status_code == 200
    settings.COMPLIANCE_PUBLIC_TRANSPARENCY = False
    assert api.get(path).status_code == 401
    assert client_for("carol").get(path).status_code == 200


def test_bundle_notes_carry_the_cosignatures(api, bot, w1):
    import io
    import json
    import zipfile

    cp = checkpoint_create(force=True)
    line = post_cosignature(api, cp, w1)
    buf = io.BytesIO()
    write_bundle(buf)
    with zipfile.ZipFile(buf) as zf:
        notes = json.loads(zf.read("checkpoints.json"))
    assert notes[0] == cp.note + line


def test_server_verification_catches_a_stored_cosignature_that_no_longer_verifies(api, bot, w1):
    from django.db import connection

    from audit.services.verify import verify_log

    cp = checkpoint_create(force=True)
    line = post_cosignature(api, cp, w1)
    assert verify_log().ok
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[-1] ^= 1
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_cosignature SET line = %s",
            [f"\u2014 auditor.example/w1 {b64(bytes(blob))}\n"],
        )
    result = verify_log()
    assert not result.ok
    assert "cosignature" in result.detail


def test_with_a_quorum_the_checkpoint_notice_goes_out_once_published(
    api, bot, w1, people, settings
):
    import json

    from audit.models import WebhookMessage
    from audit.webhooks.services import webhook_endpoint_create

    settings.COMPLIANCE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1:9"]
    webhook_endpoint_create(
        url="http://127.0.0.1:9/hook", event_types=["CHECKPOINT_CREATED"],
        acting_user=people["alice"],
    )  # fmt: skip
    settings.COMPLIANCE_WITNESS_QUORUM = 1
    cp = checkpoint_create(force=True)
    assert not WebhookMessage.objects.filter(event_type="CHECKPOINT_CREATED").exists()
    line = post_cosignature(api, cp, w1)
    [message] = WebhookMessage.objects.filter(event_type="CHECKPOINT_CREATED")
    assert json.loads(message.body)["data"]["note"] == cp.note + line
