"""DRF permission classes. They gate whole endpoints by role; object scope
(which agents a trader may see) is applied by selectors, because DRF's
has_object_permission does not run on lists or creates."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .authentication import AgentPrincipal
from .models import Agent, Role, User
from .roles import has_role


def is_agent(request: Any) -> bool:
    return isinstance(request.user, AgentPrincipal)


def request_person(request: HttpRequest | Request) -> User:
    """The person a view or an admin page acts for, as `acting_user`: the user
    that a role permission (or the admin site) let in. A bot or an anonymous
    caller never gets this far; if one did, it is refused (403), never recorded
    as the actor."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied("This action needs a signed-in person.")
    return user


def request_agent(request: Request) -> Agent:
    """The bot behind a request that IsActiveAgent let in (refused, 403, if
    a view calls it for anyone else)."""
    user: object = request.user
    if not isinstance(user, AgentPrincipal):
        raise PermissionDenied("This endpoint is for agents (bots).")
    return user.agent


class IsActiveAgent(BasePermission):
    """A bot with an API key, not suspended."""

    message = "This endpoint is for agents (bots) authenticated with their API key."

    def has_permission(self, request: Any, view: Any) -> bool:
        if not is_agent(request):
            return False
        if request.user.agent.status != Agent.Status.ACTIVE:
            raise exceptions.PermissionDenied("Agent is suspended.", code="agent_suspended")
        return True


class RolePermission(BasePermission):
    """What role_required makes: a permission class with its refusal message."""

    message: str


def role_required(role: str) -> type[RolePermission]:
    """Permission class: a human holding `role` or higher."""

    class HasRole(RolePermission):
        message = f"Requires the {role} role or higher."

        def has_permission(self, request: Any, view: Any) -> bool:
            return not is_agent(request) and has_role(request.user, role)

    HasRole.__name__ = f"Has{role.title().replace('_', '')}Role"
    return HasRole


IsViewer = role_required(Role.VIEWER)
IsTrader = role_required(Role.TRADER)
IsRiskManager = role_required(Role.RISK_MANAGER)
IsComplianceOfficer = role_required(Role.COMPLIANCE_OFFICER)
IsAdmin = role_required(Role.ADMIN)


class SeesWholeFirm(BasePermission):
    """A person whose scope is the whole firm (viewers, risk managers and up;
    not a trader, whose scope is their own desk): for documents that span every
    desk, such as evidence bundles (accounts.selectors.sees_whole_firm)."""

    message = "Evidence bundles span every desk; a trader's scope is their own agents."

    def has_permission(self, request: Any, view: Any) -> bool:
        from .selectors import sees_whole_firm

        return not is_agent(request) and sees_whole_firm(user=request.user)
