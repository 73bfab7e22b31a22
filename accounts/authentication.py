"""Bearer authentication for humans (expiring tokens) and bots (API keys).

Both are looked up by the SHA-256 of the presented secret. A bot is
represented by `AgentPrincipal`, so code that expects a user never mistakes a
bot for a person: it holds no role and no model permission."""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from compliance_site.db import fetch_prepared

from .models import Agent, ApiToken, User
from .roles import remember_role, role_subquery_sql
from .services import API_KEY_PREFIX, TOKEN_PREFIX, hash_secret


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


# What a request needs of its user, in the model's field order (as from_db
# wants them); the rest (password, names, dates) loads on access. Ids, text and
# booleans only: they read back alike from every backend without Django's
# converters, but for SQLite's booleans, which are ints (made bool below).
_TOKEN_USER_FIELDS = ("id", "is_superuser", "username", "email", "is_staff", "is_active")


@functools.cache
def _token_sql() -> tuple[str, tuple[str, ...]]:
    """The token lookup (and the constant parameters of its role subquery)."""
    role_sql, role_params = role_subquery_sql("u.id")
    columns = ", ".join(f"u.{f}" for f in _TOKEN_USER_FIELDS)
    sql = (
        f"SELECT {columns}, t.id, t.expires_at > %s, {role_sql}"  # noqa: S608 - constants only
        f" FROM {ApiToken._meta.db_table} t JOIN {User._meta.db_table} u ON u.id = t.user_id"
        " WHERE t.key_hash = %s"
    )
    return sql, tuple(role_params)


def _token_user(digest: str) -> tuple[User, ApiToken]:
    """The token's user, whether the token is still live and the user's highest
    role, in one statement prepared once per connection: every authenticated
    request runs it, and planning the role subquery cost more than running it."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    sql, role_params = _token_sql()
    row = fetch_prepared(sql, [now, *role_params, digest])
    if row is None:
        raise exceptions.AuthenticationFailed("Invalid token.")
    user_id, is_superuser, username, email, is_staff, is_active, token_id, live, held_role = row
    if not is_active:
        raise exceptions.AuthenticationFailed("Invalid token.")
    if not live:
        raise exceptions.AuthenticationFailed("Token expired.", code="token_expired")
    values = (user_id, bool(is_superuser), username, email, bool(is_staff), True)
    user = User.from_db(connection.alias, _TOKEN_USER_FIELDS, values)
    remember_role(user, held_role)
    return user, ApiToken(pk=token_id, user=user)


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
