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
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from accounts.models import Role, User
from accounts.roles import has_role
from audit.admin_display import json_list, when
from audit.admin_tools import FastCountPaginator
from compliance_site.admin import ReadOnlyAdmin
from compliance_site.exceptions import ServiceError

from .models import Alert
from .selectors import (
    alert_evidence,
    alert_get_for_user,
    alert_history,
    alert_list_for_user,
    queue_ordering,
)
from .services.alerts import (
    ESCALATION_ROLES,
    MAX_NOTE_CHARS,
    RESOLVE_PERMISSION,
    alert_assign,
    alert_escalate,
    alert_note_add,
    alert_reopen,
    alert_resolve,
    may_work_alerts,
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


NO_CHOICE = [("", "— choose a disposition —")]


class ResolveForm(forms.Form):
    # No default: the officer picks one (an unchanged select must not close a case).
    disposition = forms.ChoiceField(choices=NO_CHOICE + list(Alert.Disposition.choices))
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


class CaseNoteForm(forms.Form):
    note = forms.CharField(
        max_length=MAX_NOTE_CHARS, strip=True, widget=forms.Textarea(attrs={"rows": 3})
    )


class CaseReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=MAX_NOTE_CHARS, strip=True, widget=forms.Textarea(attrs={"rows": 3})
    )


def alert_workers() -> QuerySet[User]:
    """The people who may hold a case (compliance officers and admins)."""
    return (
        User.objects.with_perm(
            RESOLVE_PERMISSION, backend="django.contrib.auth.backends.ModelBackend"
        )
        .filter(is_active=True)
        .order_by("username")
    )


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(queryset=User.objects.none(), empty_label="— choose —")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = alert_workers()  # type: ignore[attr-defined]


class EscalateForm(forms.Form):
    to_user = forms.ModelChoiceField(
        queryset=User.objects.none(),
        required=False,
        empty_label="— nobody in particular —",
        label="Escalate to a person",
    )
    to_role = forms.ChoiceField(
        choices=[("", "— no role —")] + [(r, r.replace("_", " ")) for r in ESCALATION_ROLES],
        required=False,
        label="or to a role",
    )
    reason = forms.CharField(
        max_length=MAX_NOTE_CHARS, strip=True, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["to_user"].queryset = alert_workers()  # type: ignore[attr-defined]


CASE_FORMS: dict[str, type[forms.Form]] = {
    "assign": AssignForm,
    "note": CaseNoteForm,
    "escalate": EscalateForm,
    "resolve": ResolveForm,
    "reopen": CaseReasonForm,
}


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "severity_badge",
        "age",
        "due",
        "detector",
        "agent_id",
        "market",
        "status",
        "assigned_to",
        "short_detail",
    ]
    list_filter = ["status", "severity", "detector", "assigned_to"]
    search_fields = ["=id", "=agent_id", "=market", "fingerprint"]
    show_full_result_count = False
    paginator = FastCountPaginator
    actions = ["assign_to_me", "resolve_selected", "escalate_selected"]
    list_per_page = 50
    fields = readonly_fields = (
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
    )

    # --- scope and order --------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Alert]:
        return alert_list_for_user(user=request.user)

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        return queue_ordering()

    # --- read-only for everyone (ReadOnlyAdmin); viewers and up may look ------------

    def has_module_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.VIEWER)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_role(request.user, Role.VIEWER)

    def has_work_permission(self, request: HttpRequest) -> bool:
        return may_work_alerts(request.user)

    # --- columns ----------------------------------------------------------------------

    @admin.display(description="age", ordering="created_at")
    def age(self, obj: Alert) -> str:
        return format_age(timezone.now() - obj.created_at)

    @admin.display(description="detail")
    def short_detail(self, obj: Alert) -> str:
        return Truncator(obj.detail).chars(120)

    @admin.display(description="severity", ordering="severity_rank")
    def severity_badge(self, obj: Alert) -> str:
        return format_html(
            '<span class="ws-sev-{}">{}</span>', obj.severity, obj.get_severity_display()
        )

    @admin.display(description="due", ordering="due_at")
    def due(self, obj: Alert) -> str:
        if obj.due_at is None or not obj.is_active:
            return "-"
        left = obj.due_at - timezone.now()
        if left.total_seconds() < 0:
            return format_html('<span class="ws-due-over">overdue {}</span>', format_age(-left))
        return f"in {format_age(left)}"

    # --- the case page ------------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:pk>/case/<str:action>/",
                self.admin_site.admin_view(self.case_action_view),
                name="surveillance_alert_case_action",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The case: what the detector saw, the records behind it as a
        timeline, the notes and actions from the log, and the actions."""
        alert = self._get_alert(request, object_id)
        if alert is None:
            return self._not_found(request, object_id)
        return self._case(request, alert, {})

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The case's history from its log records (the admin's own log is empty:
        nothing here is changed through model forms)."""
        alert = self._get_alert(request, object_id)
        if alert is None:
            return self._not_found(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "title": f"History of alert #{alert.pk}",
            "opts": self.model._meta,
            "original": alert,
            "alert": alert,
            "history": alert_history(alert=alert),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/surveillance/alert/history.html", context)

    def _not_found(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Django's own answer to a missing object (a message, then the admin index)."""
        # private in Django, so django-stubs leave it out
        response: HttpResponse = self._get_obj_does_not_exist_redirect(  # type: ignore[attr-defined]
            request, self.model._meta, object_id
        )
        return response

    def _get_alert(self, request: HttpRequest, object_id: str) -> Alert | None:
        try:
            pk = int(object_id)
        except (TypeError, ValueError):
            return None
        return alert_get_for_user(user=request.user, alert_id=pk)

    def _case(
        self, request: HttpRequest, alert: Alert, forms_bound: dict[str, forms.Form]
    ) -> HttpResponse:
        may_work = self.has_work_permission(request)
        case_forms = {name: forms_bound.get(name) or cls() for name, cls in CASE_FORMS.items()}
        history = alert_history(alert=alert)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Alert #{alert.pk}: {alert.detector}",
            "subtitle": None,
            "opts": self.model._meta,
            "original": alert,
            "alert": alert,
            "has_view_permission": True,
            "may_work": may_work,
            "forms": case_forms,
            "evidence": alert_evidence(alert=alert),
            "history": history,
            "notes": [h for h in history if h["note"]],
            "facts": json_list(alert.facts),
            "created": when(alert.created_at),
            "due": self.due(alert),
            "due_at": when(alert.due_at),
            "now": timezone.now(),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/surveillance/alert/case.html", context)

    def case_action_view(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        """POST one action of the case page through its service; a refusal or a
        form error shows the case again with the message, and changes nothing."""
        alert = alert_get_for_user(user=request.user, alert_id=pk)
        if alert is None or action not in CASE_FORMS:
            return self._not_found(request, str(pk))
        case_url = reverse("admin:surveillance_alert_change", args=[pk])
        if request.method != "POST":
            return HttpResponseRedirect(case_url)
        if not self.has_work_permission(request):
            self.message_user(request, "Your role may not work alerts.", messages.ERROR)
            return HttpResponseRedirect(case_url)
        user = request.user
        if action == "assign" and request.POST.get("to_me"):
            form: forms.Form = AssignForm({"assignee": user.pk})
        else:
            form = CASE_FORMS[action](request.POST)
        if not form.is_valid():
            return self._case(request, alert, {action: form})
        data = form.cleaned_data
        try:
            if action == "assign":
                alert_assign(alert_id=pk, acting_user=user, assignee=data["assignee"])  # type: ignore[arg-type]
                done = f"Assigned to {data['assignee']}."
            elif action == "note":
                alert_note_add(alert_id=pk, acting_user=user, note=data["note"])  # type: ignore[arg-type]
                done = "Note added to the case and recorded in the log."
            elif action == "escalate":
                alert_escalate(
                    alert_id=pk,
                    acting_user=user,  # type: ignore[arg-type]
                    note=data["reason"],
                    to_user=data.get("to_user"),
                    to_role=data.get("to_role") or "",
                )
                done = "Escalated."
            elif action == "resolve":
                alert_resolve(
                    alert_id=pk,
                    acting_user=user,  # type: ignore[arg-type]
                    disposition=data["disposition"],
                    note=data["note"],
                )
                done = f"Closed as {Alert.Disposition(data['disposition']).label}."
            else:
                alert_reopen(alert_id=pk, acting_user=user, reason=data["reason"])  # type: ignore[arg-type]
                done = "Reopened; the case is assigned to you."
        except ServiceError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(case_url)

    # --- actions ----------------------------------------------------------------------

    @admin.action(description="Assign to me", permissions=["work"])
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        done = 0
        for alert in queryset:
            try:
                alert_assign(alert_id=alert.pk, acting_user=request.user)  # type: ignore[arg-type]
            except ServiceError as exc:
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
                    except ServiceError as exc:
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
