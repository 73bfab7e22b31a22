"""Reports, legal holds and the retention manifest in the admin.

Reports: the list (every role from viewer up), a "Generate a report" page for
compliance officers and above, and a download link per finished report. Legal
holds: the list for compliance officers and above; admins place and release
holds with a reason. Nothing is edited through the standard forms: every
change goes through the services, which record it in the log."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.models import Role
from accounts.permissions import request_person
from accounts.roles import has_role
from audit.models import MAX_SEQ
from compliance_site.admin import ReadOnlyAdmin
from compliance_site.exceptions import ServiceError

from .models import LegalHold, Report
from .periods import period_of
from .regulators import REGULATORS
from .selectors import legal_hold_list_for_user, report_list_for_user
from .services.reports import report_request
from .services.retention import (
    MAX_REASON_CHARS,
    legal_hold_place,
    legal_hold_release,
    retention_manifest,
    retention_purge_by,
    retention_purge_preview,
)

FORM_TEMPLATE = "admin/reporting/form.html"


class ReadOnly(ReadOnlyAdmin):
    """Read-only pages whose own views (purge, holds) render the reporting form."""

    def _render(self, request: HttpRequest, context: dict[str, Any]) -> TemplateResponse:
        base = {**self.admin_site.each_context(request), "opts": self.model._meta}
        return TemplateResponse(request, FORM_TEMPLATE, {**base, **context})


class PurgeForm(forms.Form):
    reason = forms.CharField(
        max_length=MAX_REASON_CHARS,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded in each DATA_PURGED record with your name.",
    )
    confirm = forms.BooleanField(
        label="I understand that the payloads listed above are cleared for good "
        "(their hashes stay, so the log still verifies).",
    )


class GenerateForm(forms.Form):
    kind = forms.ChoiceField(choices=Report.Kind.choices)
    format = forms.ChoiceField(choices=Report.Format.choices)
    regulator = forms.ChoiceField(
        choices=[("", "Standard (no regulator variant)")]
        + [(r.code, r.title) for r in REGULATORS.values()],
        required=False,
    )
    date = forms.DateField(required=False, help_text="A UTC day (daily trade report), YYYY-MM-DD.")
    year = forms.IntegerField(required=False, min_value=1970, max_value=9998)
    quarter = forms.IntegerField(required=False, min_value=1, max_value=4, help_text="With year.")
    start = forms.DateField(required=False, help_text="Or a range of days, start included (UTC).")
    end = forms.DateField(required=False, help_text="End excluded (UTC).")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:  # a field's own error says it first
            return data
        try:
            data["period"] = period_of(
                kind=data.get("kind", ""),
                date=data.get("date"),
                start=_midnight(data.get("start")),
                end=_midnight(data.get("end")),
                year=data.get("year"),
                quarter_no=data.get("quarter"),
            )
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data


def _midnight(day: date | None) -> datetime | None:
    """A day of the form as the start of that UTC day."""
    return None if day is None else datetime.combine(day, time(0), tzinfo=UTC)


@admin.register(Report)
class ReportAdmin(ReadOnly):
    list_display = [
        "id",
        "kind",
        "period_label",
        "format",
        "regulator",
        "status",
        "short_sha256",
        "seq",
        "record_count",
        "requested_by",
        "scheduled",
        "finished_at",
        "download_link",
    ]
    list_filter = ["kind", "format", "status", "regulator", "scheduled"]
    search_fields = ["period_label", "sha256"]
    readonly_fields = [f.name for f in Report._meta.fields] + ["download_link"]
    change_list_template = "admin/reporting/report/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Report]:
        return report_list_for_user(user=request.user)

    def may_generate(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("accounts.generate_reports"))

    @admin.display(description="SHA-256")
    def short_sha256(self, obj: Report) -> str:
        return f"{obj.sha256[:16]}…" if obj.sha256 else ""

    @admin.display(description="file")
    def download_link(self, obj: Report) -> str:
        if obj.status != Report.Status.DONE:
            return ""
        return format_html(
            '<a href="{}">Download</a>', reverse("admin:reporting_report_download", args=[obj.pk])
        )

    def get_urls(self) -> list[Any]:
        return [
            path(
                "generate/",
                self.admin_site.admin_view(self.generate_view),
                name="reporting_report_generate",
            ),
            path(
                "<int:pk>/download/",
                self.admin_site.admin_view(self.download_view),
                name="reporting_report_download",
            ),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "may_generate": self.may_generate(request)}
        return super().changelist_view(request, extra_context)

    def generate_view(self, request: HttpRequest) -> HttpResponse:
        back = HttpResponseRedirect(reverse("admin:reporting_report_changelist"))
        if not self.may_generate(request):
            messages.error(
                request, "Generating reports needs the compliance_officer role or higher."
            )
            return back
        form = GenerateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                report, created = report_request(
                    kind=data["kind"],
                    period=data["period"],
                    fmt=data["format"],
                    regulator=data.get("regulator") or "",
                    acting_user=request.user,  # type: ignore[arg-type]
                )
            except ServiceError as exc:
                form.add_error(None, exc.detail)
            else:
                verb = "queued" if created else "already exists"
                messages.success(
                    request, f"Report #{report.pk} ({report}) {verb}: status {report.status}."
                )
                return back
        return self._render(
            request,
            {
                "title": "Generate a report",
                "form": form,
                "submit": "Generate",
                "intro": (
                    "Reports cover closed periods (UTC). The file's SHA-256 is recorded in "
                    "the audit log (REPORT_GENERATED) when it is ready."
                ),
                "cancel_url": reverse("admin:reporting_report_changelist"),
            },
        )

    def download_view(self, request: HttpRequest, pk: int) -> FileResponse:
        from .apis import report_file_response

        return report_file_response(user=request.user, report_id=pk)


class PlaceHoldForm(forms.Form):
    reason = forms.CharField(
        max_length=MAX_REASON_CHARS, widget=forms.Textarea(attrs={"rows": 3, "cols": 80})
    )
    from_seq = forms.IntegerField(required=False, min_value=0, max_value=MAX_SEQ)
    to_seq = forms.IntegerField(required=False, min_value=0, max_value=MAX_SEQ)
    agent_id = forms.SlugField(required=False, max_length=64)
    event_types = forms.CharField(
        required=False, help_text="Comma-separated event types, e.g. ORDER_SUBMITTED, ORDER_FILLED."
    )

    def clean_event_types(self) -> list[str]:
        raw = self.cleaned_data.get("event_types") or ""
        return [t.strip() for t in raw.split(",") if t.strip()]


class ReleaseHoldForm(forms.Form):
    reason = forms.CharField(
        max_length=MAX_REASON_CHARS, widget=forms.Textarea(attrs={"rows": 3, "cols": 80})
    )


@admin.register(LegalHold)
class LegalHoldAdmin(ReadOnly):
    list_display = [
        "id",
        "active",
        "reason",
        "from_seq",
        "to_seq",
        "agent_id",
        "event_types",
        "placed_by",
        "placed_at",
        "released_by",
        "released_at",
        "release_link",
    ]
    readonly_fields = [f.name for f in LegalHold._meta.fields]
    change_list_template = "admin/reporting/legalhold/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[LegalHold]:
        return legal_hold_list_for_user(user=request.user)

    # Auditors (viewers) read the holds and the retention manifest; admins manage them.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.VIEWER)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_role(request.user, Role.VIEWER)

    def may_manage(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("accounts.manage_legal_holds"))

    @admin.display(boolean=True)
    def active(self, obj: LegalHold) -> bool:
        return obj.is_active

    @admin.display(description="")
    def release_link(self, obj: LegalHold) -> str:
        if not obj.is_active:
            return ""
        return format_html(
            '<a href="{}">Release…</a>', reverse("admin:reporting_legalhold_release", args=[obj.pk])
        )

    def get_urls(self) -> list[Any]:
        return [
            path(
                "place/",
                self.admin_site.admin_view(self.place_view),
                name="reporting_legalhold_place",
            ),
            path(
                "<int:pk>/release/",
                self.admin_site.admin_view(self.release_view),
                name="reporting_legalhold_release",
            ),
            path(
                "manifest/",
                self.admin_site.admin_view(self.manifest_view),
                name="reporting_retention_manifest",
            ),
            path(
                "purge/",
                self.admin_site.admin_view(self.purge_view),
                name="reporting_retention_purge",
            ),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "may_manage": self.may_manage(request),
            "may_purge": request.user.has_perm("accounts.purge_data"),
        }
        return super().changelist_view(request, extra_context)

    def _back(self) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:reporting_legalhold_changelist"))

    def place_view(self, request: HttpRequest) -> HttpResponse:
        if not self.may_manage(request):
            messages.error(request, "Legal holds are placed by admins.")
            return self._back()
        form = PlaceHoldForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                hold = legal_hold_place(acting_user=request.user, **form.cleaned_data)  # type: ignore[arg-type]
            except ServiceError as exc:
                form.add_error(None, exc.detail)
            else:
                messages.success(
                    request, f"Legal hold #{hold.pk} placed (recorded at seq {hold.placed_seq})."
                )
                return self._back()
        return self._render(
            request,
            {
                "title": "Place a legal hold",
                "form": form,
                "submit": "Place the hold",
                "intro": (
                    "Records matching every criterion given are never purged while the hold "
                    "is active. With no criterion the hold covers the whole log. Recorded "
                    "with your name and reason."
                ),
                "cancel_url": reverse("admin:reporting_legalhold_changelist"),
            },
        )

    def release_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.may_manage(request):
            messages.error(request, "Legal holds are released by admins.")
            return self._back()
        hold = LegalHold.objects.filter(pk=pk).first()
        if hold is None:
            raise Http404
        form = ReleaseHoldForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                legal_hold_release(
                    hold_id=pk,
                    reason=form.cleaned_data["reason"],
                    acting_user=request_person(request),
                )
            except ServiceError as exc:
                messages.error(request, exc.detail)
            else:
                messages.success(request, f"Legal hold #{pk} released.")
            return self._back()
        return self._render(
            request,
            {
                "title": f"Release legal hold #{pk}",
                "form": form,
                "submit": "Release the hold",
                "intro": (
                    f"Placed for: {hold.reason}. Its records become purgeable once past retention."
                ),
                "cancel_url": reverse("admin:reporting_legalhold_changelist"),
            },
        )

    def purge_view(self, request: HttpRequest) -> HttpResponse:
        """Purge now, after a confirmation that shows what would go (admins)."""
        if not request.user.has_perm("accounts.purge_data"):
            raise PermissionDenied("A purge is an admin's act.")
        form = PurgeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                summary = retention_purge_by(
                    acting_user=request.user,  # type: ignore[arg-type]
                    reason=form.cleaned_data["reason"],
                )
            except ServiceError as exc:
                form.add_error(None, exc.detail)
            else:
                if summary.count:
                    messages.success(
                        request,
                        f"Purged {summary.count} records (seq {summary.from_seq} to "
                        f"{summary.to_seq}), recorded at seq "
                        f"{', '.join(map(str, summary.record_seqs))}.",
                    )
                else:
                    messages.info(request, "Nothing was past retention: nothing was purged.")
                return HttpResponseRedirect(reverse("admin:reporting_retention_manifest"))
        base = {**self.admin_site.each_context(request), "opts": self.model._meta}
        context = {
            **base,
            "title": "Purge records past retention",
            "preview": retention_purge_preview(),
            "form": form,
            "cancel_url": reverse("admin:reporting_retention_manifest"),
        }
        return TemplateResponse(request, "admin/reporting/purge.html", context)

    def manifest_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise Http404
        base = {**self.admin_site.each_context(request), "opts": self.model._meta}
        context = {**base, "title": "Retention manifest", "manifest": retention_manifest()}
        return TemplateResponse(request, "admin/reporting/manifest.html", context)
