"""The compliance officer's work queue.

Pending requests come first, least time left first, each showing what is
asked and how long is left. Approve and deny are admin actions that first ask
for a reason on a confirmation page, then call the services (which enforce
roles, four eyes and the deadline). Nothing is editable here: a decided
request is history, and a pending one changes only through a decision.
Viewers see the same queue without any action."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from compliance_site.admin import ReadOnlyAdmin
from compliance_site.exceptions import ServiceError

from .models import ApprovalRequest
from .registry import UnknownKind, context_of, get_resolver
from .selectors import approval_list_for_user, work_queue_ordering
from .services import MAX_REASON_CHARS, approval_deny, approval_grant, may_decide

CONFIRMATION_TEMPLATE = "admin/approvals/approvalrequest/decide_confirmation.html"


def subject_context(approval: ApprovalRequest) -> dict[str, Any] | None:
    """What the kind's resolver tells about the subject (for orders: the order,
    bot, owner, position and limits, and the re-check now), or None."""
    try:
        return context_of(get_resolver(approval.kind), approval)
    except UnknownKind:
        return None


def _summary(obj: ApprovalRequest, key: str) -> Any:
    summary = obj.summary if isinstance(obj.summary, dict) else {}
    value = summary.get(key)
    return "-" if value is None else value


def format_time_left(left: timedelta | None) -> str:
    """'4m 05s', '1h 02m', or 'overdue 12s' for a deadline passed but not yet swept."""
    if left is None:
        return "-"
    seconds = int(left.total_seconds())
    prefix = ""
    if seconds <= 0:
        prefix, seconds = "overdue ", -seconds
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{prefix}{hours}h {minutes:02d}m"
    if minutes:
        return f"{prefix}{minutes}m {secs:02d}s"
    return f"{prefix}{secs}s"


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=MAX_REASON_CHARS,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text="Recorded in the audit log with your decision.",
    )


Decide = Callable[..., ApprovalRequest]

DETAIL_FIELDS = (
    "kind",
    "subject_id",
    "summary",
    "status",
    "requester",
    "requested_at",
    "expires_at",
    "time_left",
    "decided_by",
    "decided_at",
    "reason",
)


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "status",
        "time_left",
        "market",
        "agent",
        "side",
        "quantity",
        "notional",
        "kind",
        "what_is_asked",
        "requester",
        "expires_at",
        "decided_by",
        "decided_at",
    ]
    list_filter = ["status", "kind"]
    # Officers look a request up by the bot, the market or the order.
    search_fields = [
        "subject_id",
        "requested_by_agent__agent_id",
        "summary__agent_id",
        "summary__market",
        "summary__order_id",
    ]
    search_help_text = "Search by agent, market or order id."
    change_form_template = "admin/approvals/approvalrequest/change_form.html"
    actions = ["approve_selected", "deny_selected"]
    list_per_page = 50
    fields = DETAIL_FIELDS
    readonly_fields = DETAIL_FIELDS

    # --- scope and order --------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApprovalRequest]:
        # the agent's owner in the same query: the "requested by" column shows it
        # (the changelist ignores list_select_related on a queryset that already
        # selects related rows)
        return approval_list_for_user(user=request.user).select_related("requested_by_agent__owner")

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        return work_queue_ordering()

    # --- read-only (ReadOnlyAdmin): decisions go through the actions -----------------

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return may_decide(request.user)

    # --- columns ----------------------------------------------------------------------

    @admin.display(description="time left")
    def time_left(self, obj: ApprovalRequest) -> str:
        return format_time_left(obj.time_left())

    @admin.display(description="market")
    def market(self, obj: ApprovalRequest) -> Any:
        return _summary(obj, "market")

    @admin.display(description="agent")
    def agent(self, obj: ApprovalRequest) -> Any:
        agent = obj.requested_by_agent
        return agent.agent_id if agent is not None else _summary(obj, "agent_id")

    @admin.display(description="side")
    def side(self, obj: ApprovalRequest) -> Any:
        return _summary(obj, "side")

    @admin.display(description="quantity")
    def quantity(self, obj: ApprovalRequest) -> Any:
        return _summary(obj, "quantity")

    @admin.display(description="notional")
    def notional(self, obj: ApprovalRequest) -> Any:
        return _summary(obj, "notional")

    # --- the request page: the subject's context and the way to decide ---------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        approval = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if approval is not None:
            extra["subject_context"] = subject_context(approval)
            extra["may_decide"] = approval.is_pending and self.has_decide_permission(request)
            extra["action_checkbox_name"] = helpers.ACTION_CHECKBOX_NAME
        return super().change_view(request, object_id, form_url, extra)

    @admin.display(description="what is asked")
    def what_is_asked(self, obj: ApprovalRequest) -> str:
        summary = obj.summary if isinstance(obj.summary, dict) else {}
        return format_html_join(
            ", ", "{} <b>{}</b>", ((key, value) for key, value in summary.items())
        ) or format_html("{}", "-")

    @admin.display(description="requested by")
    def requester(self, obj: ApprovalRequest) -> str:
        if obj.requested_by_agent is not None:
            owner = obj.requested_by_agent.owner
            return f"agent {obj.requested_by_agent.agent_id}" + (
                f" (owner {owner})" if owner else ""
            )
        if obj.requested_by_user is not None:
            return f"user {obj.requested_by_user}"
        return "system"

    # --- actions ----------------------------------------------------------------------

    @admin.action(description="Approve selected requests…", permissions=["decide"])
    def approve_selected(
        self, request: HttpRequest, queryset: QuerySet[ApprovalRequest]
    ) -> HttpResponse | None:
        return self._decide(request, queryset, approval_grant, "approve_selected", "Approve")

    @admin.action(description="Deny selected requests…", permissions=["decide"])
    def deny_selected(
        self, request: HttpRequest, queryset: QuerySet[ApprovalRequest]
    ) -> HttpResponse | None:
        return self._decide(request, queryset, approval_deny, "deny_selected", "Deny")

    def _decide(
        self,
        request: HttpRequest,
        queryset: QuerySet[ApprovalRequest],
        decide: Decide,
        action: str,
        verb: str,
    ) -> HttpResponse | None:
        """First POST (from the changelist): show what is asked and ask for a
        reason. Second POST (post=yes): decide each request through the service;
        each refusal is reported and changes nothing."""
        if request.POST.get("post") == "yes":
            form = ReasonForm(request.POST)
            if form.is_valid():
                self._apply(request, queryset, decide, verb, form.cleaned_data["reason"])
                return None
        else:
            form = ReasonForm()
        now = timezone.now()
        rows = [(approval, format_time_left(approval.time_left(now))) for approval in queryset]
        # Before a grant is confirmed: what the re-check says now (the grant
        # re-checks again under the lock, and refuses if it fails).
        warnings = []
        if verb == "Approve":
            for approval in queryset:
                found = subject_context(approval) if approval.is_pending else None
                if found and found.get("recheck"):
                    warnings.append((approval, found["recheck"]))
        context = {
            "recheck_warnings": warnings,
            **self.admin_site.each_context(request),
            "title": f"{verb} approval requests",
            "opts": self.model._meta,
            "queryset": queryset,
            "rows": rows,
            "form": form,
            "action": action,
            "verb": verb,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, CONFIRMATION_TEMPLATE, context)

    def _apply(
        self,
        request: HttpRequest,
        queryset: QuerySet[ApprovalRequest],
        decide: Decide,
        verb: str,
        reason: str,
    ) -> None:
        done = 0
        for approval in queryset:
            try:
                decide(request_id=approval.pk, acting_user=request.user, reason=reason)
            except (ServiceError, UnknownKind) as exc:
                detail = getattr(exc, "detail", str(exc))
                self.message_user(request, f"#{approval.pk}: {detail}", messages.ERROR)
            else:
                done += 1
        if done:
            past = "approved" if verb == "Approve" else "denied"
            self.message_user(request, f"{done} request(s) {past}.", messages.SUCCESS)
