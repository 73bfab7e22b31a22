"""Reads of approval requests, filtered by the caller's rights.

Viewers and every role above them (auditors included) see every request, but a
trader only those of the agents they own (accounts.selectors.scope_to_agents); a bot
sees only the requests it made (to poll its held orders); anyone else sees
nothing. The API and the admin both read through here, because DRF's object
permissions do not protect lists."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission
from django.db.models import Case, DateTimeField, F, IntegerField, OrderBy, Q, QuerySet, Value, When
from django.utils import timezone

from accounts.authentication import AgentPrincipal
from accounts.models import Role, User
from accounts.roles import has_role
from accounts.selectors import scope_to_agents

from .models import ApprovalRequest

Status = ApprovalRequest.Status


def approval_list_for_user(*, user: Any, status: str | None = None) -> QuerySet[ApprovalRequest]:
    """Requests the caller may read, soonest deadline first."""
    qs = ApprovalRequest.objects.select_related(
        "requested_by_user", "requested_by_agent", "decided_by"
    )
    if isinstance(user, AgentPrincipal):
        qs = qs.filter(requested_by_agent=user.agent)
    elif not has_role(user, Role.VIEWER):
        return qs.none()
    else:
        qs = scope_to_agents(qs, user=user, field="requested_by_agent__agent_id")
    if status == Status.PENDING:
        # past its deadline a request reads as expired (ApprovalRequest.effective_status)
        qs = qs.filter(status=Status.PENDING, expires_at__gt=timezone.now())
    elif status == Status.EXPIRED:
        qs = qs.filter(
            Q(status=Status.EXPIRED) | Q(status=Status.PENDING, expires_at__lte=timezone.now())
        )
    elif status:
        qs = qs.filter(status=status)
    return qs.order_by("expires_at", "pk")


def approval_get_for_user(*, user: Any, approval_id: int) -> ApprovalRequest | None:
    return approval_list_for_user(user=user).filter(pk=approval_id).first()


def work_queue_ordering() -> list[OrderBy | str]:
    """The officer's queue order: pending first, least time left first; then
    decided requests, latest decision first."""
    pending_first = Case(
        When(status=Status.PENDING, then=Value(0)), default=Value(1), output_field=IntegerField()
    )
    pending_deadline = Case(
        When(status=Status.PENDING, then=F("expires_at")),
        default=Value(None),
        output_field=DateTimeField(),
    )
    return [
        pending_first.asc(),
        pending_deadline.asc(nulls_last=True),
        F("decided_at").desc(nulls_last=True),
        "-pk",
    ]


def decider_emails() -> list[str]:
    """Addresses of the active people who may decide approvals (through their
    role group, a direct permission, or superuser status)."""
    perm = Permission.objects.filter(
        content_type__app_label="accounts", codename="decide_approvals"
    ).first()
    who = Q(is_superuser=True)
    if perm is not None:
        who |= Q(groups__permissions=perm) | Q(user_permissions=perm)
    return sorted(
        set(
            User.objects.filter(who, is_active=True)
            .exclude(email="")
            .values_list("email", flat=True)
        )
    )
