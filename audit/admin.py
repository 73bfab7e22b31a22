"""The log in the admin: read-only for everyone, superusers included."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from accounts.selectors import scope_to_agents

from .models import Checkpoint, EventType, Record


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence and projections are shown, never edited: changes go through services."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Record)
class RecordAdmin(ReadOnlyAdmin):
    list_display = [
        "seq",
        "event_type",
        "actor_type",
        "actor_id",
        "agent_id",
        "recorded_at_us",
        "purged",
    ]
    list_filter = ["event_type", "actor_type", "purged"]
    search_fields = ["=seq", "agent_id", "actor_id", "event_id"]
    ordering = ["-seq"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Record]:
        # the API's rule: a trader sees their own agents' records only
        return scope_to_agents(super().get_queryset(request), user=request.user)

    show_full_result_count = False
    fields = [
        "seq",
        "event_type",
        "actor_type",
        "actor_id",
        "agent_id",
        "event_id",
        "recorded_at_us",
        "pretty_body",
        "hashes",
    ]
    readonly_fields = fields

    @admin.display(description="Record")
    def pretty_body(self, obj: Record) -> str:
        import json

        return format_html("<pre>{}</pre>", json.dumps(obj.as_dict(), indent=2, ensure_ascii=False))

    @admin.display(description="Hashes")
    def hashes(self, obj: Record) -> str:
        return format_html(
            "leaf {}<br>chain {}", bytes(obj.leaf_hash).hex(), bytes(obj.chain_hash).hex()
        )


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ["tree_size", "timestamp_us", "created_at"]
    ordering = ["-timestamp_us"]
    readonly_fields = ["tree_size", "timestamp_us", "note"]
    fields = readonly_fields


@admin.register(EventType)
class EventTypeAdmin(ReadOnlyAdmin):
    list_display = ["name", "version", "created_at"]
