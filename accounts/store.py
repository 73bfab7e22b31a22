"""Hand-written SQL of the accounts app (HOUSE_STYLE: only in <app>/store.py).

Both statements run on every authenticated request, prepared once per
connection (compliance_site.db): planning them cost more than running them,
and the ORM's query building more than either.

* `agent_with_keys`: a bot's agent and its key registry, one statement;
* `token_lookup`: a person's token, its user, whether it is still live and the
  user's highest role, one statement."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import Group
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import (
    BooleanField,
    Case,
    ExpressionWrapper,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)

from compliance_site.db import fetch_prepared

from .models import ROLE_ORDER, Agent, AgentKey, ApiToken, User

AGENT_AUTH_FIELDS = ("id", "agent_id", "name", "owner_id", "status", "api_key_prefix")
KEY_AUTH_FIELDS = ("id", "agent_id", "key_id", "public_key", "created_at_us", "revoked_at_us")


@functools.cache
def _agent_sql() -> str:
    agent_cols = ", ".join(f"a.{c}" for c in AGENT_AUTH_FIELDS)
    key_cols = ", ".join(f"k.{c}" for c in KEY_AUTH_FIELDS)
    return (
        f"SELECT {agent_cols}, {key_cols} FROM {Agent._meta.db_table} a"  # noqa: S608
        f" LEFT JOIN {AgentKey._meta.db_table} k ON k.agent_id = a.id"
        " WHERE a.api_key_hash = %s"
    )


def agent_with_keys(api_key_hash: str) -> Agent | None:
    """The agent holding this API key, with its keys (revoked ones included)
    loaded for `Agent.keys_by_id`. The instances hold the fields read here;
    any other field loads on access."""
    if connection.vendor == "postgresql":
        rows = fetch_prepared(_agent_sql(), [api_key_hash], every_row=True)
    else:  # the ORM builds the same LEFT JOIN
        rows = list(
            Agent.objects.filter(api_key_hash=api_key_hash).values_list(
                *AGENT_AUTH_FIELDS,
                *(f"keys__{'agent' if c == 'agent_id' else c}" for c in KEY_AUTH_FIELDS),
            )
        )
    if not rows:
        return None
    width = len(AGENT_AUTH_FIELDS)
    agent = Agent.from_db(DEFAULT_DB_ALIAS, AGENT_AUTH_FIELDS, rows[0][:width])
    agent._keys_by_id = {}
    for row in rows:
        if row[width] is None:
            continue  # LEFT JOIN: an agent without keys
        key = AgentKey.from_db(DEFAULT_DB_ALIAS, KEY_AUTH_FIELDS, row[width:])
        key.agent = agent
        agent._keys_by_id[key.key_id] = key
    return agent


# What a request needs of its user, in the model's field order (as from_db
# wants them); the rest (password, names, dates) loads on access. Ids, text and
# booleans only: they read back alike from every backend without Django's
# converters, but for SQLite's booleans, which are ints (made bool below).
TOKEN_USER_FIELDS = ("id", "is_superuser", "username", "email", "is_staff", "is_active")


@dataclass(frozen=True)
class TokenLookup:
    """A token's user (the fields a request needs), the token's pk, whether
    it is still live, and the user's highest role ("" for none)."""

    user: User
    is_active: bool
    token_id: int
    live: bool
    role: str


@functools.cache
def _token_sql() -> tuple[str, tuple[str, ...]]:
    """The token lookup, with the highest role held as a subquery (and the
    constant parameters of that subquery)."""
    through = User.groups.through._meta.db_table
    rank = " ".join(f"WHEN %s THEN {i}" for i in range(len(ROLE_ORDER)))
    names = ", ".join(["%s"] * len(ROLE_ORDER))
    role_sql = (
        f"(SELECT g.name FROM {Group._meta.db_table} g"  # noqa: S608 - constants only
        f" JOIN {through} ug ON ug.group_id = g.id"
        f" WHERE ug.user_id = u.id AND g.name IN ({names})"
        f" ORDER BY CASE g.name {rank} END DESC LIMIT 1)"
    )
    columns = ", ".join(f"u.{f}" for f in TOKEN_USER_FIELDS)
    sql = (
        f"SELECT {columns}, t.id, t.expires_at > %s, {role_sql}"  # noqa: S608 - constants only
        f" FROM {ApiToken._meta.db_table} t JOIN {User._meta.db_table} u ON u.id = t.user_id"
        " WHERE t.key_hash = %s"
    )
    return sql, (*ROLE_ORDER, *ROLE_ORDER)


def token_lookup(key_hash: str, *, now: datetime) -> TokenLookup | None:
    if connection.vendor != "postgresql":
        return _token_lookup_orm(key_hash, now=now)
    sql, role_params = _token_sql()
    row = fetch_prepared(
        sql, [connection.ops.adapt_datetimefield_value(now), *role_params, key_hash]
    )
    return None if row is None else _token_found(row)


def _token_found(row: Sequence[Any]) -> TokenLookup:
    user_id, is_superuser, username, email, is_staff, is_active, token_id, live, role = row
    values = (user_id, bool(is_superuser), username, email, bool(is_staff), bool(is_active))
    user = User.from_db(DEFAULT_DB_ALIAS, TOKEN_USER_FIELDS, values)
    return TokenLookup(user, bool(is_active), token_id, bool(live), role or "")


def _token_lookup_orm(key_hash: str, *, now: datetime) -> TokenLookup | None:
    """`token_lookup` through the ORM (SQLite): the same one query."""
    through = User.groups.through
    rank = Case(*(When(group__name=r, then=Value(i)) for i, r in enumerate(ROLE_ORDER)))
    role = (
        through.objects.filter(user_id=OuterRef("user_id"), group__name__in=ROLE_ORDER)
        .order_by(rank.desc())
        .values("group__name")[:1]
    )
    row = (
        ApiToken.objects.filter(key_hash=key_hash)
        .annotate(
            live=ExpressionWrapper(Q(expires_at__gt=now), output_field=BooleanField()),
            role=Subquery(role),
        )
        .values_list(*(f"user__{f}" for f in TOKEN_USER_FIELDS), "id", "live", "role")
        .first()
    )
    return None if row is None else _token_found(row)
