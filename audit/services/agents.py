"""Agent registration and the signing-key registry.

These live in audit, not accounts, because every change is evidence: the
registry is what bot signatures are verified against, so each change is
recorded in the log in the same transaction. Keys are revoked, never deleted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from accounts.models import Agent, AgentKey, User
from accounts.services import API_KEY_PREFIX, hash_secret, new_secret
from compliance_site.exceptions import Conflict, Invalid, NotFound

from .log import Actor, now_us, record_event


def parse_public_key(public_key: str) -> bytes:
    """Raw 32-byte Ed25519 public key from standard base64, strictly."""
    try:
        raw = base64.b64decode(public_key, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Invalid("invalid_public_key", "public_key must be standard base64") from exc
    if len(raw) != 32:
        raise Invalid("invalid_public_key", "public_key must be a raw 32-byte Ed25519 key")
    return raw


def key_id_for(raw: bytes) -> str:
    """Stable id derived from the key itself, so the same key always has the same id."""
    return hashlib.sha256(raw).hexdigest()[:16]


def _add_key(agent: Agent, raw: bytes) -> AgentKey:
    key_id = key_id_for(raw)
    if AgentKey.objects.filter(agent=agent, key_id=key_id).exists():
        raise Conflict("duplicate_key", "this public key is already registered for the agent")
    return AgentKey.objects.create(
        agent=agent,
        key_id=key_id,
        public_key=base64.b64encode(raw).decode(),
        created_at_us=now_us(),
    )


@transaction.atomic
def agent_register(
    *, agent_id: str, name: str, public_key: str, owner: User | None, acting_user: User
) -> tuple[Agent, AgentKey, str]:
    """Register a bot with its first key. Returns the plain API key (shown once).
    The owner receives the object permission to act for the agent."""
    raw = parse_public_key(public_key)
    if Agent.objects.filter(agent_id=agent_id).exists():
        raise Conflict("agent_exists", f"agent {agent_id!r} already exists")
    api_key = new_secret(API_KEY_PREFIX)
    agent = Agent.objects.create(
        agent_id=agent_id,
        name=name,
        owner=owner,
        api_key_hash=hash_secret(api_key),
        api_key_prefix=api_key[:12],
        created_by=acting_user,
    )
    key = _add_key(agent, raw)
    if owner is not None:
        assign_perm("accounts.act_for_agent", owner, agent)
        assign_perm("accounts.view_agent", owner, agent)
    record_event(
        "AGENT_REGISTERED",
        actor=Actor.for_user(acting_user),
        data={
            "agent_id": agent.agent_id,
            "name": agent.name,
            "owner": owner.get_username() if owner else None,
            "key_id": key.key_id,
            "public_key": key.public_key,
            "valid_from_us": key.created_at_us,
        },
    )
    return agent, key, api_key


@transaction.atomic
def agent_key_add(*, agent: Agent, public_key: str, acting_user: User) -> AgentKey:
    """Add a signing key (rotation). Old keys stay valid until revoked."""
    Agent.objects.select_for_update().filter(pk=agent.pk).first()
    key = _add_key(agent, parse_public_key(public_key))
    record_event(
        "AGENT_KEY_ADDED",
        actor=Actor.for_user(acting_user),
        data={
            "agent_id": agent.agent_id,
            "key_id": key.key_id,
            "public_key": key.public_key,
            "valid_from_us": key.created_at_us,
        },
    )
    return key


@transaction.atomic
def agent_key_revoke(*, agent: Agent, key_id: str, acting_user: User) -> AgentKey:
    """Revoke a key: envelopes signed with it are refused from now on; records
    it signed before stay verifiable. Revoking twice is a conflict."""
    key = AgentKey.objects.select_for_update().filter(agent=agent, key_id=key_id).first()
    if key is None:
        raise NotFound("not_found", f"no key {key_id!r} for agent {agent.agent_id}")
    if key.revoked_at_us is not None:
        raise Conflict("already_revoked", f"key {key_id!r} is already revoked")
    key.revoked_at = timezone.now()
    key.revoked_at_us = now_us()
    key.save(update_fields=["revoked_at", "revoked_at_us"])
    record_event(
        "AGENT_KEY_REVOKED",
        actor=Actor.for_user(acting_user),
        data={"agent_id": agent.agent_id, "key_id": key.key_id, "revoked_at_us": key.revoked_at_us},
    )
    return key


@transaction.atomic
def agent_set_status(*, agent: Agent, status: str, reason: str, acting_user: User) -> Agent:
    """Suspend or reactivate an agent. A suspended agent's requests are refused
    (403 agent_suspended) before anything is read from them."""
    if status not in Agent.Status.values:
        raise Invalid("invalid_status", f"status must be one of {', '.join(Agent.Status.values)}")
    locked = Agent.objects.select_for_update().get(pk=agent.pk)
    if locked.status == status:
        raise Conflict("unchanged", f"agent {agent.agent_id} is already {status}")
    locked.status = status
    locked.save(update_fields=["status"])
    record_event(
        "AGENT_STATUS_CHANGED",
        actor=Actor.for_user(acting_user),
        data={"agent_id": agent.agent_id, "status": status, "reason": reason},
    )
    return locked
