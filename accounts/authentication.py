"""Bearer authentication for humans (expiring tokens) and bots (API keys).

Both are looked up by the SHA-256 of the presented secret. A bot is
represented by `AgentPrincipal`, so code that expects a user never mistakes a
bot for a person: it holds no role and no model permission."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from .models import Agent, ApiToken, User
from .roles import remember_role
from .services import API_KEY_PREFIX, TOKEN_PREFIX, hash_secret
from .store import token_lookup


class AgentPrincipal:
    """request.user for a bot."""

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, agent: Agent):
        self.agent = agent

    def get_username(self) -> str:
        return f"agent:{self.agent.agent_id}"

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False

    def __str__(self) -> str:
        return self.get_username()


def _token_user(digest: str) -> tuple[User, ApiToken]:
    """The token's user, whether the token is still live and the user's highest
    role, in one statement (accounts.store.token_lookup)."""
    found = token_lookup(digest, now=timezone.now())
    if found is None or not found.is_active:
        raise exceptions.AuthenticationFailed("Invalid token.")
    if not found.live:
        raise exceptions.AuthenticationFailed("Token expired.", code="token_expired")
    remember_role(found.user, found.role)
    return found.user, ApiToken(pk=found.token_id, user=found.user)


class BearerAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token.") from exc
        digest = hash_secret(secret)
        if secret.startswith(API_KEY_PREFIX):
            agent = Agent.objects.authenticated(digest)
            if agent is None:
                raise exceptions.AuthenticationFailed("Invalid API key.")
            return AgentPrincipal(agent), agent
        if secret.startswith(TOKEN_PREFIX):
            return _token_user(digest)
        raise exceptions.AuthenticationFailed("Invalid token.")

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="api"'
