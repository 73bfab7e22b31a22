"""Reads of trading state, filtered by the caller's rights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from accounts.models import Agent, Role
from accounts.roles import user_role
from accounts.selectors import agent_list_for_user

from .models import AgentMarketRisk, MarketRisk


@dataclass
class PositionsView:
    agents: QuerySet[AgentMarketRisk]
    firm: QuerySet[MarketRisk] | None  # None: the caller does not see every agent


def positions_for_user(
    *, user: Any, agent: Agent | None = None, market: str | None = None
) -> PositionsView:
    """Each visible agent's position and resting orders per market (rows with
    nothing in them left out), and the firm's per market for a caller who
    sees every agent: the firm's totals would tell a trader about desks that
    are not theirs."""
    agents = AgentMarketRisk.objects.filter(agent__in=agent_list_for_user(user=user))
    if agent is not None:
        agents = agents.filter(agent=agent)
    firm: QuerySet[MarketRisk] | None = None
    if user_role(user) not in (None, Role.TRADER):
        firm = MarketRisk.objects.order_by("market")
    if market:
        agents = agents.filter(market=market)
        firm = firm.filter(market=market) if firm is not None else None
    agents = agents.exclude(position=0, open_buy=0, open_sell=0)
    if firm is not None:
        firm = firm.exclude(position=0, open_buy=0, open_sell=0)
    return PositionsView(agents.select_related("agent").order_by("agent__agent_id", "market"), firm)
