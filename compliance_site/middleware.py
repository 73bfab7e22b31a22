"""The officer's time zone: the admin's script stores the browser's IANA zone
in a cookie, and every page of that browser shows times in it (UTC until the
first page has run the script, or for a zone the server does not know)."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

COOKIE = "ws_tz"


class BrowserTimeZoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/admin/"):  # the bots' paths pay nothing
            return self.get_response(request)
        name = request.COOKIES.get(COOKIE, "")
        zone = None
        if name and len(name) < 64:
            try:
                zone = zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                zone = None
        if zone is not None:
            timezone.activate(zone)
        else:
            timezone.deactivate()
        return self.get_response(request)
