"""The browsable API docs (Swagger UI).

The split view serves Swagger UI's init script from a URL instead of inline,
so the page works under a Content-Security-Policy that allows no inline script.
When the docs are behind a login (COMPLIANCE_API_DOCS_PUBLIC off, the
production default) a browser without a session is sent to the admin's login
page and back, rather than shown a bare 401."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpResponseRedirect, JsonResponse
from django.urls import reverse
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)
from rest_framework import exceptions


class _LoginFirst:
    """A browser without a session goes to the admin's login page and back."""

    def handle_exception(self, exc: Exception) -> Any:
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            query = urlencode({"next": self.request.get_full_path()})  # type: ignore[attr-defined]
            return HttpResponseRedirect(f"{reverse('admin:login')}?{query}")
        return super().handle_exception(exc)  # type: ignore[misc]


class DocsView(_LoginFirst, SpectacularSwaggerSplitView):
    """Swagger UI."""


class RedocView(_LoginFirst, SpectacularRedocView):
    """Redoc."""


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema; its refusals are JSON like every other error (the
    view's own renderers speak only YAML and OpenAPI JSON)."""

    def handle_exception(self, exc: Exception) -> Any:
        response = super().handle_exception(exc)
        json = JsonResponse(response.data, status=response.status_code)
        for header in ("WWW-Authenticate", "Retry-After"):
            if header in response:
                json[header] = response[header]
        return json
