"""Admin for the gate: kill switches (activate and release with a confirmation
step), orders, config versions and per-agent limits, all read-only except
through the services. Imported from SurveillanceConfig.ready()."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts.models import Agent
from accounts.permissions import request_person
from accounts.roles import has_role
from accounts.selectors import scope_to_agents
from audit.admin_display import decimal_text, json_list, when_us
from audit.admin_tools import FastCountPaginator, register_record_search, time_range_filter
from compliance_site.admin import ReadOnlyAdmin
from compliance_site.exceptions import ServiceError

from .models import (
    AgentMarketRisk,
    AgentRiskLimit,
    ComplianceConfigVersion,
    Fill,
    KillSwitch,
    MarketRisk,
    Order,
)
from .selectors import positions_for_user
from .services.config import limits_current
from .services.kill_switch import (
    kill_switch_activate,
    kill_switch_deactivate,
    kill_switch_preview,
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
                        scope=scope,
                        target=target,
                        reason=reason,
                        acting_user=request_person(request),
                    )
                except ServiceError as exc:
                    messages.error(request, exc.detail)
                else:
                    messages.success(
                        request,
                        f"Kill switch {scope}:{target or '*'} is active. "
                        "Bots in scope are told to cancel.",
                    )
                return HttpResponseRedirect(reverse("admin:surveillance_killswitch_changelist"))
            snapshot = kill_switch_preview(scope=scope, target=target)
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
                    acting_user=request_person(request),
                )
            except ServiceError as exc:
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


def order_record_seqs(term: str) -> list[int]:
    """The log's search hook: the records of an order id (the gate's decision
    and every fill), found through the projections, not by reading the log."""
    if not term or len(term) > 128:
        return []
    # Both tables are indexed by (agent, order id): naming every agent lets
    # PostgreSQL probe those indexes instead of scanning for the order id.
    agents = list(Agent.objects.values_list("pk", flat=True))
    decided = Order.objects.filter(agent_id__in=agents, order_id=term).values_list(
        "seq", flat=True
    )[:100]
    filled = Fill.objects.filter(agent_id__in=agents, order_ref=term).values_list("seq", flat=True)[
        :1000
    ]
    return [*decided, *filled]


register_record_search(order_record_seqs)


class DecisionFilter(admin.SimpleListFilter):
    """The gate's three decisions, without a DISTINCT over every order."""

    title = "decision"
    parameter_name = "decision"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("accepted", "accepted"), ("rejected", "rejected"), ("held", "held")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        return queryset.filter(decision=self.value()) if self.value() else queryset


class MarketFilter(admin.SimpleListFilter):
    """Markets from the firm's per-market risk rows (one per market), not a
    DISTINCT over every order."""

    title = "market"
    parameter_name = "market"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        markets = MarketRisk.objects.order_by("market").values_list("market", flat=True)
        return [(m, m) for m in markets]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        return queryset.filter(market=self.value()) if self.value() else queryset


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = [
        "order_id",
        "agent",
        "market",
        "side",
        "qty",
        "limit_price",
        "filled",
        "notional",
        "status",
        "decision",
        "reason_codes",
        "created",
    ]
    list_filter = [
        "status",
        DecisionFilter,
        MarketFilter,
        time_range_filter("created_at_us", microseconds=True, title="time"),
    ]
    search_fields = ["=order_id", "=agent__agent_id"]
    search_help_text = "An order id or an agent id (exact)."
    ordering = ["-created_at_us"]
    list_select_related = ["agent"]
    paginator = FastCountPaginator
    show_full_result_count = False
    list_per_page = 50
    fields = readonly_fields = (
        "order_id",
        "agent",
        "market",
        "side",
        "order_type",
        "venue",
        "qty",
        "limit_price",
        "filled",
        "notional",
        "status",
        "decision",
        "reasons_readable",
        "decision_record",
        "approval_link",
        "config_hash",
        "created",
        "updated",
    )

    @admin.display(description="quantity")
    def qty(self, obj: Order) -> str:
        return decimal_text(obj.quantity)

    @admin.display(description="price")
    def limit_price(self, obj: Order) -> str:
        return decimal_text(obj.price)

    @admin.display(description="filled")
    def filled(self, obj: Order) -> str:
        return decimal_text(obj.filled_quantity)

    @admin.display(description="notional")
    def notional(self, obj: Order) -> str:
        return decimal_text(obj.quantity * obj.price)

    @admin.display(description="reasons")
    def reason_codes(self, obj: Order) -> str:
        return ", ".join(str(r.get("code", "")) for r in obj.reasons or [] if isinstance(r, dict))

    @admin.display(description="reasons")
    def reasons_readable(self, obj: Order) -> str:
        return json_list(obj.reasons)

    @admin.display(description="created", ordering="created_at_us")
    def created(self, obj: Order) -> str:
        return when_us(obj.created_at_us)

    @admin.display(description="updated")
    def updated(self, obj: Order) -> str:
        return when_us(obj.updated_at_us)

    @admin.display(description="decision record")
    def decision_record(self, obj: Order) -> str:
        return format_html(
            '<a href="{}?q={}">#{}</a>',
            reverse("admin:audit_record_changelist"),
            obj.order_id,
            obj.seq,
        )

    @admin.display(description="approval")
    def approval_link(self, obj: Order) -> str:
        if obj.approval_id is None:
            return "-"
        return format_html(
            '<a href="{}">#{}</a>',
            reverse("admin:approvals_approvalrequest_change", args=[obj.approval_id]),
            obj.approval_id,
        )

    def get_queryset(self, request: HttpRequest) -> Any:
        # the API's rule: a trader sees their own agents' orders only
        return scope_to_agents(
            super().get_queryset(request), user=request.user, field="agent__agent_id"
        )


@admin.register(AgentMarketRisk)
class PositionAdmin(ReadOnlyAdmin):
    """Positions per agent and market (read-only; viewers up). A trader sees
    the agents they own; the rows come from the selector the API uses."""

    list_display = ["agent", "market", "position", "open_buy", "open_sell", "day_notional"]
    list_filter = ["market"]
    search_fields = ["agent__agent_id", "market"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AgentMarketRisk]:
        return positions_for_user(user=request.user).agents


@admin.register(MarketRisk)
class FirmPositionAdmin(ReadOnlyAdmin):
    """The firm's position per market, for those who see every agent (not traders)."""

    list_display = ["market", "position", "open_buy", "open_sell", "mark_price", "last_price"]
    search_fields = ["market"]
    ordering = ["market"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return (
            super().has_view_permission(request, obj)
            and positions_for_user(user=request.user).firm is not None
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)


@admin.register(ComplianceConfigVersion)
class ConfigVersionAdmin(ReadOnlyAdmin):
    list_display = ["version", "short_hash", "created_by", "created_at", "seq"]
    ordering = ["-version"]
    fields = readonly_fields = (
        "version",
        "hash",
        "created_by",
        "created_at",
        "seq",
        "changes",
        "config_readable",
    )

    @admin.display(description="hash")
    def short_hash(self, obj: ComplianceConfigVersion) -> str:
        return format_html('<code title="{}">{}…</code>', obj.hash, obj.hash[:12])

    @admin.display(description="Changes from the previous version")
    def changes(self, obj: ComplianceConfigVersion) -> str:
        previous = (
            ComplianceConfigVersion.objects.filter(version__lt=obj.version)
            .order_by("-version")
            .first()
        )
        if previous is None:
            return "The first version."
        rows = config_diff(previous.config, obj.config)
        if not rows:
            return "No change."
        return format_html(
            '<table class="ws-diff"><thead><tr><th>setting</th><th>v{}</th><th>v{}</th></tr>'
            "</thead><tbody>{}</tbody></table>",
            previous.version,
            obj.version,
            format_html_join(
                "",
                '<tr><td>{}</td><td class="ws-old">{}</td><td class="ws-new">{}</td></tr>',
                ((key, _show(old), _show(new)) for key, old, new in rows),
            ),
        )

    @admin.display(description="Config")
    def config_readable(self, obj: ComplianceConfigVersion) -> str:
        return json_list(obj.config)


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    if value is None:
        return "no limit"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


_MISSING = object()


def config_diff(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Every setting that differs between two configs, nested keys dotted."""
    if isinstance(old, dict) and isinstance(new, dict):
        rows: list[tuple[str, Any, Any]] = []
        for key in sorted(set(old) | set(new)):
            rows += config_diff(old.get(key, _MISSING), new.get(key, _MISSING), f"{prefix}{key}.")
        return rows
    return [] if old == new else [(prefix.rstrip("."), old, new)]


@admin.register(AgentRiskLimit)
class AgentRiskLimitAdmin(ReadOnlyAdmin):
    list_display = [
        "agent",
        "max_position",
        "max_order_notional",
        "max_daily_notional",
        "max_orders_per_minute",
    ]
