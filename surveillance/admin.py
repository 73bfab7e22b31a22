"""The compliance officer's alert queue.

Active alerts first, most severe first, oldest first, each with its age and
what the detector saw. "Assign to me" takes alerts; "Resolve…" and
"Escalate…" first show the selected alerts on an intermediate page that asks
for a disposition and a note (or a note), then call the services, which
enforce roles, the assignee rule and the workflow. Nothing is editable here.
Viewers see the same queue without any action. (The gate's admin pages are in
admin_risk.py.)"""

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
from django.utils.text import Truncator

from accounts.models import Role
from accounts.roles import has_role

from .models import Alert
from .services.alerts import (
    MAX_NOTE_CHARS,
    AlertError,
    alert_assign,
    alert_escalate,
    alert_list_for_user,
    alert_resolve,
    may_work_alerts,
    queue_ordering,
)

CONFIRMATION_TEMPLATE = "admin/surveillance/alert/action_confirmation.html"


def format_age(age: timedelta) -> str:
    """'3d 04h', '2h 05m', '4m 10s', '12s'."""
    seconds = max(int(age.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


class ResolveForm(forms.Form):
    disposition = forms.ChoiceField(choices=Alert.Disposition.choices)
    note = forms.CharField(
        max_length=MAX_NOTE_CHARS,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text="Recorded in the audit log with the disposition.",
    )


class NoteForm(forms.Form):
    note = forms.CharField(
        max_length=MAX_NOTE_CHARS,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text="Recorded in the audit log with the escalation.",
    )


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "severity",
        "age",
        "detector",
        "agent_id",
        "market",
        "status",
        "assigned_to",
        "short_detail",
    ]
    list_filter = ["status", "severity", "detector"]
    search_fields = ["agent_id", "market", "fingerprint"]
    actions = ["assign_to_me", "resolve_selected", "escalate_selected"]
    list_per_page = 50
    fields = [
        "detector",
        "severity",
        "status",
        "agent_id",
        "market",
        "detail",
        "evidence",
        "facts",
        "fingerprint",
        "seq",
        "config_hash",
        "created_at",
        "assigned_to",
        "assigned_at",
        "escalated_by",
        "escalated_at",
        "closed_by",
        "closed_at",
        "disposition",
        "note",
    ]
    readonly_fields = fields

    # --- scope and order --------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Alert]:
        return alert_list_for_user(user=request.user)

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        return queue_ordering()

    # --- read-only for everyone; viewers and up may look ---------------------------

    def has_module_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.VIEWER)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_role(request.user, Role.VIEWER)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_work_permission(self, request: HttpRequest) -> bool:
        return may_work_alerts(request.user)

    # --- columns ----------------------------------------------------------------------

    @admin.display(description="age", ordering="created_at")
    def age(self, obj: Alert) -> str:
        return format_age(timezone.now() - obj.created_at)

    @admin.display(description="detail")
    def short_detail(self, obj: Alert) -> str:
        return Truncator(obj.detail).chars(120)

    # --- actions ----------------------------------------------------------------------

    @admin.action(description="Assign to me", permissions=["work"])
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        done = 0
        for alert in queryset:
            try:
                alert_assign(alert_id=alert.pk, acting_user=request.user)  # type: ignore[arg-type]
            except AlertError as exc:
                self.message_user(request, f"#{alert.pk}: {exc.detail}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} alert(s) assigned to you.", messages.SUCCESS)

    @admin.action(description="Resolve selected alerts…", permissions=["work"])
    def resolve_selected(
        self, request: HttpRequest, queryset: QuerySet[Alert]
    ) -> HttpResponse | None:
        def apply(alert: Alert, data: dict[str, Any]) -> None:
            alert_resolve(
                alert_id=alert.pk,
                acting_user=request.user,  # type: ignore[arg-type]
                disposition=data["disposition"],
                note=data["note"],
            )

        return self._confirm(
            request, queryset, ResolveForm, apply, "resolve_selected", "Resolve", "resolved"
        )

    @admin.action(description="Escalate selected alerts…", permissions=["work"])
    def escalate_selected(
        self, request: HttpRequest, queryset: QuerySet[Alert]
    ) -> HttpResponse | None:
        def apply(alert: Alert, data: dict[str, Any]) -> None:
            alert_escalate(alert_id=alert.pk, acting_user=request.user, note=data["note"])  # type: ignore[arg-type]

        return self._confirm(
            request, queryset, NoteForm, apply, "escalate_selected", "Escalate", "escalated"
        )

    def _confirm(
        self,
        request: HttpRequest,
        queryset: QuerySet[Alert],
        form_class: type[forms.Form],
        apply: Callable[[Alert, dict[str, Any]], None],
        action: str,
        verb: str,
        past: str,
    ) -> HttpResponse | None:
        """First POST (from the changelist): show the alerts and ask for the
        form. Second POST (post=yes): call the service for each alert; each
        refusal is reported and changes nothing."""
        if request.POST.get("post") == "yes":
            form = form_class(request.POST)
            if form.is_valid():
                done = 0
                for alert in queryset:
                    try:
                        apply(alert, form.cleaned_data)
                    except AlertError as exc:
                        self.message_user(request, f"#{alert.pk}: {exc.detail}", messages.ERROR)
                    else:
                        done += 1
                if done:
                    self.message_user(request, f"{done} alert(s) {past}.", messages.SUCCESS)
                return None
        else:
            form = form_class()
        now = timezone.now()
        context = {
            **self.admin_site.each_context(request),
            "title": f"{verb} alerts",
            "opts": self.model._meta,
            "queryset": queryset,
            "rows": [(alert, format_age(now - alert.created_at)) for alert in queryset],
            "form": form,
            "action": action,
            "verb": verb,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, CONFIRMATION_TEMPLATE, context)
