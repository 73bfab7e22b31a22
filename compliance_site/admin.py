"""Admin building blocks shared by every app (no domain code)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence and projections are shown, never edited: changes go through
    services (admin actions and views that call them), each of which records
    its audit event. Nobody, superusers included, adds, changes or deletes
    these rows through the admin's forms."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
