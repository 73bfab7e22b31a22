"""Who may call what: every role, anonymous, and a trader who does not own the agent.
Every denial also asserts that nothing changed (no row, no record)."""

from __future__ import annotations

import pytest

from accounts.models import Agent, AgentKey
from audit.models import Record
from compliance_client.signing import Signer

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "carol", "bob", "oscar", "rita", "alice", "adam"]


def state() -> tuple:
    return (
        Agent.objects.count(),
        list(AgentKey.objects.order_by("pk").values_list("key_id", "revoked_at_us")),
        list(Agent.objects.order_by("pk").values_list("status", flat=True)),
        Record.objects.count(),
    )


@pytest.fixture
def call(client_for, api, bot):
    def make(who: str):
        return api if who == "anonymous" else client_for(who)

    return make


def expect(response, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.content)


MATRIX_READS = {
    # endpoint: expected status per role, in ROLES order
    "/api/v1/agents/": [401, 200, 200, 200, 200, 200, 200],
    "/api/v1/agents/bot-1/keys/": [401, 200, 200, 404, 200, 200, 200],
    "/api/v1/events/": [401, 200, 200, 200, 200, 200, 200],
    # seq 0 is bot-1's registration, a firm record with no agent: a trader's
    # scope is their own agents' records (issue 18), so both traders get 404.
    "/api/v1/events/0/": [401, 200, 404, 404, 200, 200, 200],
}


@pytest.mark.parametrize("path", list(MATRIX_READS))
@pytest.mark.parametrize("who", ROLES)
def test_reads(call, path, who):
    expect(call(who).get(path), MATRIX_READS[path][ROLES.index(who)])


@pytest.mark.parametrize("who", ROLES)
def test_agent_list_is_scoped_for_traders(call, who):
    response = call(who).get("/api/v1/agents/")
    if who == "anonymous":
        expect(response, 401)
        return
    seen = [a["agent_id"] for a in response.json()]
    assert seen == ([] if who == "oscar" else ["bot-1"])


WRITE_ALLOWED = {"rita", "alice", "adam"}


@pytest.mark.parametrize("who", ROLES)
def test_register_agent(call, who):
    before = state()
    response = call(who).post(
        "/api/v1/agents/",
        {
            "agent_id": "bot-new",
            "name": "New",
            "public_key": Signer.generate("bot-new").public_key_b64,
        },
        format="json",
    )
    if who in WRITE_ALLOWED:
        expect(response, 201)
        assert response.json()["api_key"].startswith("cbk_")
        assert Record.objects.filter(event_type="AGENT_REGISTERED", actor_id=who).exists()
    else:
        expect(response, 401 if who == "anonymous" else 403)
        assert state() == before


@pytest.mark.parametrize("who", ROLES)
def test_add_key(call, who):
    before = state()
    response = call(who).post(
        "/api/v1/agents/bot-1/keys/",
        {"public_key": Signer.generate("bot-1").public_key_b64},
        format="json",
    )
    if who in WRITE_ALLOWED:
        expect(response, 201)
        assert AgentKey.objects.filter(key_id=response.json()["key_id"]).exists()
    else:
        expect(response, 401 if who == "anonymous" else 403)
        assert state() == before


@pytest.mark.parametrize("who", ROLES)
def test_revoke_key(call, bot, who):
    before = state()
    response = call(who).post(f"/api/v1/agents/bot-1/keys/{bot.signer.key_id}/revoke/")
    if who in WRITE_ALLOWED:
        expect(response, 200)
        assert response.json()["revoked_at"]
        assert Record.objects.filter(event_type="AGENT_KEY_REVOKED").count() == 1
    else:
        expect(response, 401 if who == "anonymous" else 403)
        assert state() == before


@pytest.mark.parametrize("who", ROLES)
def test_suspend_agent(call, who):
    before = state()
    response = call(who).post(
        "/api/v1/agents/bot-1/status/", {"status": "suspended", "reason": "r"}, format="json"
    )
    if who in WRITE_ALLOWED:
        expect(response, 200)
        assert Agent.objects.get(agent_id="bot-1").status == "suspended"
    else:
        expect(response, 401 if who == "anonymous" else 403)
        assert state() == before


@pytest.mark.parametrize("who", ROLES)
def test_verify_log(call, who, django_capture_on_commit_callbacks):
    before = state()
    with django_capture_on_commit_callbacks(execute=True):  # the job runs (eager)
        response = call(who).post("/api/v1/log/verify/")
    if who in {"alice", "adam"}:
        expect(response, 202)
        job = call(who).get(f"/api/v1/log/verifications/{response.json()['id']}/").json()
        assert job["status"] == "done"
        assert job["ok"] is True
        assert Record.objects.filter(event_type="AUDIT_VERIFIED").count() == 1
    else:
        expect(response, 401 if who == "anonymous" else 403)
        assert state() == before


def test_revoking_twice_is_409_and_records_once(call, bot):
    rita = call("rita")
    expect(rita.post(f"/api/v1/agents/bot-1/keys/{bot.signer.key_id}/revoke/"), 200)
    before = state()
    response = rita.post(f"/api/v1/agents/bot-1/keys/{bot.signer.key_id}/revoke/")
    expect(response, 409)
    assert response.json()["code"] == "already_revoked"
    assert state() == before


def test_bad_public_key_is_400_and_nothing_stored(call):
    before = state()
    response = call("rita").post(
        "/api/v1/agents/",
        {"agent_id": "b2", "name": "B", "public_key": "not base64!"},
        format="json",
    )
    expect(response, 400)
    assert response.json()["code"] == "invalid_public_key"
    assert state() == before
