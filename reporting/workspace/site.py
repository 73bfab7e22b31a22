"""The admin site of the workspace: a dashboard as its front page, the
dashboard's refresh endpoints, and the auditor's evidence page. Every model
admin registers on it as usual (`admin.site` is this site)."""

from __future__ import annotations

import base64
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse

from accounts.models import Role
from accounts.roles import has_role
from audit.models import MAX_SEQ

DASHBOARD_TEMPLATE = "admin/workspace/dashboard.html"


class ExportForm(forms.Form):
    from_seq = forms.IntegerField(min_value=0, max_value=MAX_SEQ, required=False, label="From seq")
    to_seq = forms.IntegerField(min_value=0, max_value=MAX_SEQ, required=False, label="To seq")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, last = data.get("from_seq"), data.get("to_seq")
        if first is not None and last is not None and first > last:
            raise forms.ValidationError("From seq must not be after to seq.")
        return data


class WorkspaceAdminSite(admin.AdminSite):
    site_header = "Compliance workspace"
    site_title = "Compliance workspace"
    index_title = "Dashboard"
    index_template = DASHBOARD_TEMPLATE

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        from .dashboard import attention

        context = {
            **(extra_context or {}),
            "attention": attention(user=request.user),
            "may_see_charts": has_role(request.user, Role.VIEWER),
        }
        return super().index(request, context)

    def get_urls(self) -> list[URLResolver | URLPattern]:
        return [
            path("dashboard/attention/", self.admin_view(self.attention_view), name="attention"),
            path("dashboard/charts/", self.admin_view(self.charts_view), name="charts"),
            path("evidence/", self.admin_view(self.evidence_view), name="evidence"),
            *super().get_urls(),
        ]

    # --- the dashboard's refresh (no full reload) -----------------------------------

    def attention_view(self, request: HttpRequest) -> HttpResponse:
        from .dashboard import attention

        return TemplateResponse(
            request,
            "admin/workspace/attention.html",
            {"attention": attention(user=request.user)},
        )

    def charts_view(self, request: HttpRequest) -> JsonResponse:
        from .dashboard import charts

        try:
            hours = min(max(int(request.GET.get("hours", "24")), 1), 168)
        except ValueError:
            return JsonResponse(
                {"code": "invalid_hours", "detail": "hours is a whole number"}, status=400
            )
        return JsonResponse(charts(user=request.user, hours=hours))

    # --- the auditor's evidence page ---------------------------------------------------

    def evidence_view(self, request: HttpRequest) -> HttpResponse:
        """Viewers and up: request an evidence bundle for a range, download it,
        copy the latest checkpoint note and the log's public key, and read how
        to verify offline."""
        from audit import log_key
        from audit.models import Checkpoint, LogExport
        from audit.services import DEFAULT_LOG, ExportError, export_request

        if not has_role(request.user, Role.VIEWER):
            return HttpResponseRedirect(reverse("admin:index"))
        form = ExportForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                export = export_request(
                    acting_user=request.user,  # type: ignore[arg-type]
                    from_seq=form.cleaned_data.get("from_seq"),
                    to_seq=form.cleaned_data.get("to_seq"),
                )
            except ExportError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, f"Evidence bundle {export.pk} requested.")
                return HttpResponseRedirect(reverse("admin:evidence"))
        checkpoint = (
            Checkpoint.objects.filter(log__name=DEFAULT_LOG).order_by("-tree_size", "-pk").first()
        )
        try:
            public_key = base64.b64encode(log_key.public_key_raw()).decode()
        except Exception:  # no key configured on this machine
            public_key = ""
        exports = LogExport.objects.select_related("requested_by").order_by("-created_at")[:20]
        context = {
            **self.each_context(request),
            "title": "Evidence",
            "form": form,
            "checkpoint": checkpoint,
            "public_key": public_key,
            "key_name": log_key.key_name(),
            "exports": exports,
        }
        return TemplateResponse(request, "admin/workspace/evidence.html", context)
