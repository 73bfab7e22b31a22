from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from compliance_site.admin import ReadOnlyAdmin

from .models import Agent, AgentKey

# The User pages are registered by audit (audit/admin_users.py): each change
# there goes through a service that records it, which accounts may not import.


class AgentKeyInline(admin.TabularInline):
    model = AgentKey
    fields = readonly_fields = ("key_id", "public_key", "created_at", "revoked_at")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Agent)
class AgentAdmin(ReadOnlyAdmin):
    """Agents are registered and changed through the API (each change is a
    record in the log); the admin shows them."""

    list_display = ["agent_id", "name", "owner", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["agent_id", "name"]
    fields = readonly_fields = (
        "agent_id",
        "name",
        "owner",
        "status",
        "api_key_prefix",
        "created_at",
        "created_by",
    )
    inlines = [AgentKeyInline]
