"""Reads of reports and legal holds, filtered by the caller's rights.

Every human from viewer up (auditors included) reads every report, except
traders, whose scope is their own agents' (a report spans every desk); bots and
people without a role read none. Legal holds are read by compliance officers
and above. The API and the admin both read through here, because DRF's object
permissions do not protect lists."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.authentication import AgentPrincipal
from accounts.models import Role
from accounts.roles import has_role
from accounts.selectors import sees_whole_firm

from .models import LegalHold, Report


def _is_human_with(user: Any, role: str) -> bool:
    return not isinstance(user, AgentPrincipal) and has_role(user, role)


def report_list_for_user(
    *, user: Any, kind: str | None = None, status: str | None = None
) -> QuerySet[Report]:
    if not _is_human_with(user, Role.VIEWER) or not sees_whole_firm(user=user):
        return Report.objects.none()
    qs = Report.objects.select_related("requested_by").order_by("-requested_at", "-pk")
    if kind:
        qs = qs.filter(kind=kind)
    if status:
        qs = qs.filter(status=status)
    return qs


def report_get_for_user(*, user: Any, report_id: int) -> Report | None:
    return report_list_for_user(user=user).filter(pk=report_id).first()


def legal_hold_list_for_user(*, user: Any, active: bool | None = None) -> QuerySet[LegalHold]:
    """Holds the caller may read: every hold for viewers (auditors) and up."""
    if not _is_human_with(user, Role.VIEWER):
        return LegalHold.objects.none()
    qs = LegalHold.objects.select_related("placed_by", "released_by").order_by("-pk")
    if active is not None:
        qs = qs.filter(released_at__isnull=active)
    return qs
