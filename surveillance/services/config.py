"""The versioned compliance config and per-agent risk limits."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from django.db import transaction

from accounts.models import Agent, User
from audit.services import Actor, record_event
from compliance_client.jcs import canonicalize
from compliance_site.decimals import decimal_text

from ..config import DEFAULT_CONFIG, Limits, config_hash, config_validate
from ..models import AgentRiskLimit, ComplianceConfigVersion, FirmRisk
from .risk import lock_firm

_parsed: dict[int, Limits] = {}


def _create(
    config: dict[str, Any], *, version: int, actor: Actor, user: User | None
) -> ComplianceConfigVersion:
    digest = config_hash(config)
    previous = (
        ComplianceConfigVersion.objects.filter(version=version - 1)
        .values_list("hash", flat=True)
        .first()
    )
    record = record_event(
        "CONFIG_CHANGED",
        actor=actor,
        data={"version": version, "hash": digest, "config": config, "previous_hash": previous},
    )
    row = ComplianceConfigVersion.objects.create(
        version=version, config=config, hash=digest, created_by=user, seq=record.seq
    )
    # Callers hold the firm lock: the gate learns the version in force from the row it locks.
    FirmRisk.objects.filter(name="firm").update(config_version=version, config_hash=digest)
    return row


def config_current() -> ComplianceConfigVersion:
    """The config in force. The first call creates version 1 from the defaults
    and records it, so every decision's config hash is provable from the log."""
    latest = ComplianceConfigVersion.objects.order_by("-version").first()
    if latest is not None:
        return latest
    with transaction.atomic():
        lock_firm()
        latest = ComplianceConfigVersion.objects.order_by("-version").first()
        if latest is None:
            latest = _create(DEFAULT_CONFIG, version=1, actor=Actor.system("defaults"), user=None)
    return latest


def limits_current() -> Limits:
    """The config in force, parsed once per version and process (a one-row,
    two-column query per call, not the whole config)."""
    latest = (
        ComplianceConfigVersion.objects.order_by("-version").values_list("version", "hash").first()
    )
    if latest is not None:
        cached = _parsed.get(latest[0])
        if cached is not None and cached.hash == latest[1]:
            return cached
    row = config_current()
    limits = Limits.parse(row.version, row.hash, row.config)
    _parsed[row.version] = limits
    return limits


def limits_named(version_hash: str) -> Limits:
    """The config named "<version>:<hash>" (as a caller read it in its own
    query), parsed once per version and process."""
    version, _, digest = version_hash.partition(":")
    cached = _parsed.get(int(version))
    if cached is not None and cached.hash == digest:
        return cached
    row = ComplianceConfigVersion.objects.get(version=int(version))
    limits = Limits.parse(row.version, row.hash, row.config)
    _parsed[row.version] = limits
    return limits


def limits_in_force(firm: FirmRisk) -> Limits:
    """The config for a decision taken under the firm lock. The locked row names
    the version in force, so the parsed copy is used without a query; the hash
    tells a version apart from another that reused its number (a rolled-back one)."""
    if firm.config_version is not None:
        cached = _parsed.get(firm.config_version)
        if cached is not None and cached.hash == firm.config_hash:
            return cached
    return limits_current()


@transaction.atomic
def config_update(*, config: Any, acting_user: User) -> ComplianceConfigVersion:
    """A new version with the whole config. Compliance officers+. The config is
    validated here, whoever calls (API, admin, command, script): Invalid
    (400) for an invalid one, `audit_required` for `audit_enabled: false`.
    Takes the firm risk lock, so no gate decision straddles the change."""
    config = config_validate(config)
    current = config_current()
    lock_firm()
    latest = ComplianceConfigVersion.objects.order_by("-version").first() or current
    return _create(
        config, version=latest.version + 1, actor=Actor.for_user(acting_user), user=acting_user
    )


LIMIT_FIELDS = ("max_position", "max_order_notional", "max_daily_notional", "max_orders_per_minute")


def agent_limits_dict(limit: AgentRiskLimit | None) -> dict[str, Any]:
    if limit is None:
        return dict.fromkeys(LIMIT_FIELDS)
    out: dict[str, Any] = {}
    for name in LIMIT_FIELDS:
        value = getattr(limit, name)
        out[name] = decimal_text(value) if isinstance(value, Decimal) else value
    return out


def limits_hash(limits: dict[str, Any]) -> str:
    return hashlib.sha256(canonicalize(limits)).hexdigest()


@transaction.atomic
def agent_limits_set(*, agent: Agent, limits: dict[str, Any], acting_user: User) -> AgentRiskLimit:
    """Set an agent's risk limits (risk managers+); recorded as RISK_LIMITS_CHANGED."""
    lock_firm()
    row, _ = AgentRiskLimit.objects.select_for_update().get_or_create(agent=agent)
    for name in LIMIT_FIELDS:
        setattr(row, name, limits.get(name))
    row.updated_by = acting_user
    row.save()
    shown = agent_limits_dict(row)
    record_event(
        "RISK_LIMITS_CHANGED",
        actor=Actor.for_user(acting_user),
        data={"agent_id": agent.agent_id, "limits": shown, "hash": limits_hash(shown)},
    )
    return row
