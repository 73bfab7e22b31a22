"""Roles are Django groups with cumulative permissions.

Each app declares which of its permissions a role first receives (in its
AppConfig.ready(), via `grant`); every higher role inherits them. After each
migrate the groups are brought in line (`sync_role_groups`), so a new app's
permissions reach the roles without a hand-written data migration per app.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .models import ROLE_ORDER, Role

_FIRST_GRANTED: dict[str, set[str]] = {role: set() for role in ROLE_ORDER}

# What each role first receives from accounts itself ("app_label.codename").
_ACCOUNTS_GRANTS: dict[str, list[str]] = {
    Role.VIEWER: ["accounts.view_log", "accounts.view_agent", "accounts.view_agentkey"],
    Role.TRADER: ["accounts.submit_orders"],
    Role.RISK_MANAGER: [
        "accounts.manage_kill_switch",
        "accounts.manage_risk_limits",
        "accounts.manage_agents",
    ],
    Role.COMPLIANCE_OFFICER: [
        "accounts.decide_approvals",
        "accounts.resolve_alerts",
        "accounts.generate_reports",
        "accounts.change_config",
        "accounts.export_log",
        "accounts.verify_log",
    ],
    Role.ADMIN: [
        "accounts.manage_users",
        "accounts.manage_legal_holds",
        "accounts.purge_data",
        "accounts.view_user",
        "accounts.add_user",
        "accounts.change_user",
        "auth.view_group",
    ],
}


def grant(role: str, permissions: Iterable[str]) -> None:
    """Give `permissions` to `role` and every role above it."""
    _FIRST_GRANTED[role].update(permissions)


for _role, _perms in _ACCOUNTS_GRANTS.items():
    grant(_role, _perms)


def permissions_for(role: str) -> set[str]:
    rank = ROLE_ORDER.index(role)
    perms: set[str] = set()
    for lower in ROLE_ORDER[: rank + 1]:
        perms |= _FIRST_GRANTED[lower]
    return perms


def role_rank(role: str) -> int:
    return ROLE_ORDER.index(role)


def remember_role(user: Any, held_role: str | None) -> None:
    """Seed user_role()'s per-request cache from the role read with the token."""
    user._role_cache = held_role or ""


def user_role(user: Any) -> str | None:
    """The highest role the user holds, or None. Superusers count as admin."""
    if not getattr(user, "is_authenticated", False) or not hasattr(user, "groups"):
        return None
    if not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    cached = getattr(user, "_role_cache", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        held = [r for r in ROLE_ORDER if r in names]
        cached = held[-1] if held else ""
        user._role_cache = cached
    return cached or None


def has_role(user: Any, role: str) -> bool:
    held = user_role(user)
    return held is not None and role_rank(held) >= role_rank(role)


def sync_role_groups(**kwargs: Any) -> None:
    """Create the role groups and set their permissions exactly (post_migrate)."""
    from django.contrib.auth.models import Group, Permission

    all_perms = {
        f"{p.content_type.app_label}.{p.codename}": p
        for p in Permission.objects.select_related("content_type")
    }
    for role in ROLE_ORDER:
        group, _ = Group.objects.get_or_create(name=role)
        wanted = [all_perms[name] for name in sorted(permissions_for(role)) if name in all_perms]
        group.permissions.set(wanted)
