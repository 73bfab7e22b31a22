"""The log in the admin: read-only for everyone, superusers included.

At a million records the page never counts or scans: estimated counts,
exact-match search on indexed columns (seq, agent, actor, event id), an order
id through the apps' search hooks, filters whose choices come from small
tables, and a time range on the (log, recorded_at_us) index."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from accounts.models import User
from accounts.selectors import scope_to_agents
from compliance_site.admin import ReadOnlyAdmin

from .admin_display import json_list, when_us
from .admin_tools import FastCountPaginator, record_search_seqs, time_range_filter
from .admin_users import UserAdmin
from .models import Checkpoint, EventType, Record
from .selectors import log_head

admin.site.register(User, UserAdmin)


class EventTypeFilter(admin.SimpleListFilter):
    """Choices from the registered event types (a small table), not a
    DISTINCT over the log."""

    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = EventType.objects.order_by("name").values_list("name", flat=True).distinct()
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Record]) -> QuerySet[Record]:
        return queryset.filter(event_type=self.value()) if self.value() else queryset


class ActorTypeFilter(admin.SimpleListFilter):
    title = "actor"
    parameter_name = "actor_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("agent", "bot"), ("user", "person"), ("system", "system")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Record]) -> QuerySet[Record]:
        return queryset.filter(actor_type=self.value()) if self.value() else queryset


@admin.register(Record)
class RecordAdmin(ReadOnlyAdmin):
    list_display = ["seq", "recorded", "event_type", "actor", "agent_id", "summary", "purged"]
    list_filter = [
        EventTypeFilter,
        ActorTypeFilter,
        time_range_filter("recorded_at_us", microseconds=True, title="time"),
    ]
    search_fields = ["=seq", "=agent_id"]
    search_help_text = "A seq, an agent id or an order id (exact)."
    ordering = ["-seq"]

    show_full_result_count = False
    paginator = FastCountPaginator
    list_per_page = 50
    fields = readonly_fields = (
        "seq",
        "event_type",
        "recorded",
        "actor",
        "agent_id",
        "event_id",
        "readable_body",
        "raw_body",
        "hashes",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Record]:
        # the log's id, not a join: every index of the table leads with it;
        # and the API's rule: a trader sees their own agents' records only
        rows = super().get_queryset(request).filter(log_id=log_head().pk)
        return scope_to_agents(rows, user=request.user)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Record], search_term: str
    ) -> tuple[QuerySet[Record], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        # exact matches on the (log, ...) indexes; never a scan of the log
        qs = queryset.filter(agent_id=term)
        if term.isdigit():
            qs = qs | queryset.filter(seq=int(term))
        seqs = record_search_seqs(term)
        if seqs:
            qs = qs | queryset.filter(seq__in=seqs)
        return qs, False

    @admin.display(description="time", ordering="seq")
    def recorded(self, obj: Record) -> str:
        return when_us(obj.recorded_at_us)

    @admin.display(description="by")
    def actor(self, obj: Record) -> str:
        label = {"agent": "bot", "user": "person"}.get(obj.actor_type, obj.actor_type)
        return f"{label} {obj.actor_id}"

    @admin.display(description="what")
    def summary(self, obj: Record) -> str:
        if obj.purged or obj.body is None:
            return "purged"
        body = json.loads(obj.body)
        payload = ((body.get("source") or {}).get("envelope") or {}).get("payload") or {}
        data = body.get("data") or {}
        merged = {**data, **payload} if isinstance(payload, dict) else data
        keys = ("order_id", "market", "side", "quantity", "price", "decision", "action", "status")
        parts = [
            f"{k} {merged[k]}"
            for k in keys
            if k in merged and not isinstance(merged[k], dict | list)
        ]
        return ", ".join(parts)[:140]

    @admin.display(description="Record")
    def readable_body(self, obj: Record) -> str:
        return json_list(obj.as_dict())

    @admin.display(description="As stored (JSON)")
    def raw_body(self, obj: Record) -> str:
        return format_html(
            "<details><summary>show</summary><pre>{}</pre></details>",
            json.dumps(obj.as_dict(), indent=2, ensure_ascii=False),
        )

    @admin.display(description="Hashes")
    def hashes(self, obj: Record) -> str:
        return format_html(
            "leaf <code>{}</code><br>chain <code>{}</code>",
            bytes(obj.leaf_hash).hex(),
            bytes(obj.chain_hash).hex(),
        )


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ["tree_size", "signed_at", "root"]
    ordering = ["-timestamp_us"]
    paginator = FastCountPaginator
    show_full_result_count = False
    readonly_fields = fields = ("tree_size", "signed_at", "root", "note")

    @admin.display(description="signed at", ordering="timestamp_us")
    def signed_at(self, obj: Checkpoint) -> str:
        return when_us(obj.timestamp_us)

    @admin.display(description="root hash")
    def root(self, obj: Checkpoint) -> str:
        return format_html("<code>{}</code>", bytes(obj.root_hash).hex())


@admin.register(EventType)
class EventTypeAdmin(ReadOnlyAdmin):
    list_display = ["name", "version", "created_at"]
