from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import ApiToken, User
from accounts.roles import has_role, permissions_for, user_role

pytestmark = pytest.mark.django_db


def test_token_is_issued_for_valid_credentials_and_stored_hashed(api, people):
    response = api.post(
        "/api/v1/auth/token/", {"username": "alice", "password": "pw-alice"}, format="json"
    )
    assert response.status_code == 201
    token = response.json()["token"]
    stored = ApiToken.objects.get(user__username="alice")
    assert token not in stored.key_hash
    assert len(stored.key_hash) == 64
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/v1/events/").status_code == 200


def test_wrong_password_is_401_and_no_token(api, people):
    response = api.post(
        "/api/v1/auth/token/", {"username": "alice", "password": "nope"}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert not ApiToken.objects.exists()


def test_expired_token_is_401(api, people):
    response = api.post(
        "/api/v1/auth/token/", {"username": "carol", "password": "pw-carol"}, format="json"
    )
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    response = api.get("/api/v1/events/")
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


def test_roles_are_cumulative(people):
    assert permissions_for("viewer") < permissions_for("trader") < permissions_for("admin")
    assert user_role(people["alice"]) == "compliance_officer"
    assert has_role(people["alice"], "risk_manager")
    assert not has_role(people["alice"], "admin")
    assert people["adam"].has_perm("accounts.purge_data")
    assert people["alice"].has_perm("accounts.decide_approvals")
    assert not people["rita"].has_perm("accounts.decide_approvals")
    assert people["carol"].has_perm("accounts.view_log")


def test_create_user_command_reads_password_from_env(monkeypatch):
    monkeypatch.setenv("DJANGO_USER_PASSWORD", "s3cret-pass-phrase")
    call_command("create_user", "vera", role="viewer", noinput=True)
    vera = User.objects.get(username="vera")
    assert vera.check_password("s3cret-pass-phrase")
    assert user_role(vera) == "viewer"


def test_create_user_command_without_password_fails_in_noinput(monkeypatch):
    monkeypatch.delenv("DJANGO_USER_PASSWORD", raising=False)
    with pytest.raises(CommandError):
        call_command("create_user", "vera", role="viewer", noinput=True)
    assert not User.objects.filter(username="vera").exists()


def test_create_user_rejects_duplicates(monkeypatch, people):
    monkeypatch.setenv("DJANGO_USER_PASSWORD", "s3cret-pass-phrase")
    with pytest.raises(CommandError):
        call_command("create_user", "alice", role="admin", noinput=True)
    assert user_role(User.objects.get(username="alice")) == "compliance_officer"


def test_token_authentication_reads_the_highest_role_and_never_a_stale_one(client_for, people):
    """The role comes from the same query as the token; a role change counts
    from the next request on."""
    from django.contrib.auth.models import Group

    carol = people["carol"]  # viewer
    client = client_for("carol")
    assert client.post("/api/v1/log/verify/").status_code == 403
    carol.groups.add(Group.objects.get(name="compliance_officer"))  # holds both now
    assert client.post("/api/v1/log/verify/").status_code == 202  # a job (CONTRACT 12)
    carol.groups.clear()
    assert client.get("/api/v1/events/").status_code == 403
    assert ApiToken.objects.filter(user=carol).exists()  # the token itself still stands


def test_api_key_authentication_loads_the_key_registry_with_the_agent(
    bot, django_assert_num_queries
):
    from accounts.models import Agent, AgentKey
    from accounts.services import hash_secret

    with django_assert_num_queries(1):
        agent = Agent.objects.authenticated(hash_secret(bot.api_key))
        assert agent is not None
        keys = agent.keys_by_id([bot.signer.key_id])
    assert keys == {k.key_id: k for k in AgentKey.objects.filter(agent=bot.agent)}
    assert Agent.objects.authenticated(hash_secret("cbk_not-a-key")) is None


def test_token_of_a_deactivated_user_is_refused(client_for, people):
    client = client_for("alice")
    assert client.get("/api/v1/events/").status_code == 200
    User.objects.filter(pk=people["alice"].pk).update(is_active=False)
    response = client.get("/api/v1/events/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_token_authentication_gives_the_tokens_user_with_its_own_fields(people):
    """The user is read by plain SQL into a partly loaded instance: every field
    a request reads must be the stored one, and the rest must load on access."""
    from django.test import RequestFactory

    from accounts.authentication import BearerAuthentication
    from accounts.services import token_issue

    adam = people["adam"]
    User.objects.filter(pk=adam.pk).update(email="adam@example.com", first_name="Adam")
    token, _ = token_issue(user=adam)
    request = RequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}")
    user, api_token = BearerAuthentication().authenticate(request)
    assert (user.pk, user.username, user.email) == (adam.pk, "adam", "adam@example.com")
    assert user.is_active is True
    assert user.is_staff is True
    assert user.is_superuser is False
    assert user_role(user) == "admin"
    assert api_token.user_id == adam.pk
    assert user.first_name == "Adam"
    assert user.check_password("pw-adam")
