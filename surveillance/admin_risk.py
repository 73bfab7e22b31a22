"""Admin for the gate: kill switches (activate and release with a confirmation
step), orders, config versions and per-agent limits, all read-only except
through the services. Imported from SurveillanceConfig.ready()."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from accounts.roles import has_role
from accounts.selectors import scope_to_agents
from audit.admin import ReadOnlyAdmin

from .models import AgentRiskLimit, ComplianceConfigVersion, KillSwitch, Order
from .services.config import limits_current
from .services.kill_switch import (
    KillSwitchError,
    _snapshot,
    kill_switch_activate,
    kill_switch_deactivate,
)


class ActivateForm(forms.Form):
    scope = forms.ChoiceField(choices=KillSwitch.Scope.choices)
    target = forms.CharField(
        max_length=64, required=False, help_text="Agent id or market; empty for global."
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), max_length=2000)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("scope") in {"agent", "market"} and not data.get("target"):
            raise forms.ValidationError("An agent or market kill switch needs a target.")
        return data


class ReleaseForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), max_length=2000)


@admin.register(KillSwitch)
class KillSwitchAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "active",
        "reason",
        "activated_by",
        "activated_at",
        "deactivated_at",
        "release_link",
    ]
    list_filter = ["active", "scope"]
    ordering = ["-active", "-activated_at"]
    change_list_template = "admin/surveillance/killswitch/change_list.html"

    def may_act(self, request: HttpRequest) -> bool:
        return has_role(request.user, limits_current().kill_switch_role)

    @admin.display(description="")
    def release_link(self, obj: KillSwitch) -> str:
        from django.utils.html import format_html

        if not obj.active:
            return ""
        return format_html(
            '<a href="{}">Release…</a>',
            reverse("admin:surveillance_killswitch_release", args=[obj.pk]),
        )

    def get_urls(self) -> list[Any]:
        return [
            path(
                "activate/",
                self.admin_site.admin_view(self.activate_view),
                name="surveillance_killswitch_activate",
            ),
            path(
                "<int:pk>/release/",
                self.admin_site.admin_view(self.release_view),
                name="surveillance_killswitch_release",
            ),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "may_act": self.may_act(request)}
        return super().changelist_view(request, extra_context)

    def _render(self, request: HttpRequest, context: dict[str, Any]) -> TemplateResponse:
        base = {**self.admin_site.each_context(request), "opts": self.model._meta}
        return TemplateResponse(
            request, "admin/surveillance/killswitch/confirm.html", {**base, **context}
        )

    def activate_view(self, request: HttpRequest) -> HttpResponse:
        if not self.may_act(request):
            messages.error(request, "Your role may not operate the kill switch.")
            return HttpResponseRedirect(reverse("admin:surveillance_killswitch_changelist"))
        form = ActivateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            scope, target, reason = (form.cleaned_data[k] for k in ("scope", "target", "reason"))
            if "confirm" in request.POST:
                try:
                    kill_switch_activate(
                        scope=scope, target=target, reason=reason, acting_user=request.user
                    )
                except KillSwitchError as exc:
                    messages.error(request, exc.detail)
                else:
                    messages.success(
                        request,
                        f"Kill switch {scope}:{target or '*'} is active. "
                        "Bots in scope are told to cancel.",
                    )
                return HttpResponseRedirect(reverse("admin:surveillance_killswitch_changelist"))
            snapshot = _snapshot(scope, "" if scope == "global" else target)
            return self._render(
                request,
                {
                    "title": "Confirm kill switch activation",
                    "form": form,
                    "action": "activate",
                    "snapshot": snapshot,
                    "summary": f"Halt all new orders in scope {scope}:{target or 'everything'}",
                    "confirming": True,
                },
            )
        return self._render(
            request, {"title": "Activate a kill switch", "form": form, "action": "activate"}
        )

    def release_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        switch = get_object_or_404(KillSwitch, pk=pk, active=True)
        if not self.may_act(request):
            messages.error(request, "Your role may not operate the kill switch.")
            return HttpResponseRedirect(reverse("admin:surveillance_killswitch_changelist"))
        form = ReleaseForm(request.POST or None)
        if request.method == "POST" and form.is_valid() and "confirm" in request.POST:
            try:
                kill_switch_deactivate(
                    scope=switch.scope,
                    target=switch.target,
                    reason=form.cleaned_data["reason"],
                    acting_user=request.user,
                )
            except KillSwitchError as exc:
                messages.error(request, exc.detail)
            else:
                messages.success(request, f"Kill switch {switch} released.")
            return HttpResponseRedirect(reverse("admin:surveillance_killswitch_changelist"))
        return self._render(
            request,
            {
                "title": f"Release kill switch {switch}",
                "form": form,
                "action": "release",
                "switch": switch,
                "summary": f"Trading in scope {switch} resumes as soon as you confirm",
                "confirming": True,
            },
        )


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = [
        "order_id",
        "agent",
        "market",
        "side",
        "quantity",
        "price",
        "filled_quantity",
        "status",
        "decision",
    ]
    list_filter = ["status", "decision", "market"]
    search_fields = ["order_id", "agent__agent_id"]
    ordering = ["-created_at_us"]

    def get_queryset(self, request: HttpRequest) -> Any:
        # the API's rule: a trader sees their own agents' orders only
        return scope_to_agents(
            super().get_queryset(request), user=request.user, field="agent__agent_id"
        )


@admin.register(ComplianceConfigVersion)
class ConfigVersionAdmin(ReadOnlyAdmin):
    list_display = ["version", "hash", "created_by", "created_at", "seq"]
    ordering = ["-version"]


@admin.register(AgentRiskLimit)
class AgentRiskLimitAdmin(ReadOnlyAdmin):
    list_display = [
        "agent",
        "max_position",
        "max_order_notional",
        "max_daily_notional",
        "max_orders_per_minute",
    ]
