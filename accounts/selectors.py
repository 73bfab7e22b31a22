"""Reads of accounts data, filtered by the caller's rights."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from .models import Agent, AgentKey, Role
from .roles import has_role, user_role


def agent_list_for_user(*, user: Any) -> QuerySet[Agent]:
    """Risk managers and above, and viewers (auditors), see every agent. A trader
    sees only the agents they own (guardian object permission)."""
    role = user_role(user)
    if role is None:
        return Agent.objects.none()
    if role == Role.TRADER:
        return get_objects_for_user(
            user, "accounts.act_for_agent", klass=Agent, accept_global_perms=False
        ).order_by("agent_id")
    return Agent.objects.order_by("agent_id")


def agent_get_for_user(*, user: Any, agent_id: str) -> Agent | None:
    return agent_list_for_user(user=user).filter(agent_id=agent_id).first()


def agent_can_act(*, user: Any, agent: Agent) -> bool:
    """May this human act for the agent (submit, cancel)? Owners with the trader
    role may; risk managers and above may act for any agent."""
    if has_role(user, Role.RISK_MANAGER):
        return True
    return has_role(user, Role.TRADER) and user.has_perm("accounts.act_for_agent", agent)


def agent_keys(*, agent: Agent) -> QuerySet[AgentKey]:
    return agent.keys.order_by("created_at_us", "pk")
