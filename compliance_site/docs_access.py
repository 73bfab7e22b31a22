"""Who may read the OpenAPI schema and the docs (drf-spectacular's SERVE_PERMISSIONS).

Its own module: drf-spectacular imports it while its views are being defined."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.permissions import BasePermission


class DocsAccess(BasePermission):
    """Anyone when COMPLIANCE_API_DOCS_PUBLIC (development), else anyone logged in
    (a person with a session or token, a bot with its key)."""

    def has_permission(self, request: Any, view: Any) -> bool:
        if settings.COMPLIANCE_API_DOCS_PUBLIC:
            return True
        return bool(request.user and request.user.is_authenticated)
