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


def scope_to_agents(qs: QuerySet[Any], *, user: Any, field: str = "agent_id") -> QuerySet[Any]:
    """The one rule of object scope for everything that belongs to an agent
    (records, alerts, approvals, orders): `qs` narrowed to what `user` may read.

    Viewers (auditors), risk managers and above read the whole firm. A trader
    reads only what belongs to the agents they own (agent_list_for_user): not
    other desks' records, alerts or held orders, and not the firm-wide records
    that belong to no agent. A bot or anyone without a role reads nothing here
    (a bot's own reads have their own selectors). `field` names the agent_id on
    `qs`'s model (e.g. "requested_by_agent__agent_id")."""
    role = user_role(user)
    if role is None:
        return qs.none()
    if role == Role.TRADER:
        return qs.filter(**{f"{field}__in": agent_list_for_user(user=user).values("agent_id")})
    return qs


def sees_whole_firm(*, user: Any) -> bool:
    """Whether `user` may read documents that span every desk (reports, evidence
    bundles): every human role but the trader, whose scope is their own agents."""
    role = user_role(user)
    return role is not None and role != Role.TRADER


def agent_can_act(*, user: Any, agent: Agent) -> bool:
    """May this human act for the agent (submit, cancel)? Owners with the trader
    role may; risk managers and above may act for any agent."""
    if has_role(user, Role.RISK_MANAGER):
        return True
    return has_role(user, Role.TRADER) and user.has_perm("accounts.act_for_agent", agent)


def agent_keys(*, agent: Agent) -> QuerySet[AgentKey]:
    return agent.keys.order_by("created_at_us", "pk")
