"""Errors outside DRF's views are JSON with a code too.

* `RefuseNulMiddleware` (first in MIDDLEWARE): a NUL in the path, the query
  string or a header is refused with 400 `nul_not_allowed` before any
  middleware or view can hand it to PostgreSQL (whose text cannot hold one).
* `handler500`: an outage is 503 `database_unavailable` / `broker_unavailable`
  (or `log_key_unavailable` for a server started without its log key) with
  Retry-After; anything else 500 `server_error`. Django calls it for every
  uncaught exception, including those raised in middleware (sessions,
  authentication) before a view runs.
* `handler404` / `handler400` / `handler403`: the same shape for the URLs no view answers.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

RETRY_AFTER_SECS = 5


def error_response(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status)


def outage_code(exc: BaseException | None) -> str | None:
    """`database_unavailable` or `broker_unavailable` when `exc` (or what caused
    it) says the database or the broker cannot be reached, else None."""
    from django.db import InterfaceError, OperationalError

    from audit.log_key import LogKeyMissing

    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, LogKeyMissing):
            return "log_key_unavailable"
        if isinstance(exc, OperationalError | InterfaceError):
            return "database_unavailable"
        module = type(exc).__module__
        if module.startswith(("kombu", "redis", "amqp")) or (
            module.startswith("celery") and "Operational" in type(exc).__name__
        ):
            return "broker_unavailable"
        if module.startswith("psycopg") and type(exc).__name__ in {
            "OperationalError",
            "InterfaceError",
        }:
            return "database_unavailable"
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


OUTAGES = {
    "database_unavailable": "The database is unavailable; retry shortly.",
    "broker_unavailable": "The message broker is unavailable; retry shortly.",
    "log_key_unavailable": "The log signing key is not configured on this server "
    "(COMPLIANCE_LOG_PRIVATE_KEY or manage.py ensure_log_key).",
}


def outage_response(code: str) -> JsonResponse:
    response = error_response(503, code, OUTAGES[code])
    response["Retry-After"] = str(RETRY_AFTER_SECS)
    return response


def handler500(request: HttpRequest) -> HttpResponse:
    code = outage_code(sys.exc_info()[1])
    if code is not None:
        return outage_response(code)
    return error_response(500, "server_error", "Internal server error.")


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(404, "not_found", "Not found.")


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(400, "bad_request", "Bad request.")


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(403, "permission_denied", "Forbidden.")


class RefuseNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_nul(request):
            return error_response(
                400, "nul_not_allowed", "NUL characters are not allowed anywhere in a request"
            )
        return self.get_response(request)


def _has_nul(request: HttpRequest) -> bool:
    meta: dict[str, Any] = request.META
    if "\x00" in request.path_info or "\x00" in meta.get("QUERY_STRING", ""):
        return True
    query = meta.get("QUERY_STRING", "")
    if "%00" in query:
        return True
    return any(
        isinstance(value, str) and "\x00" in value
        for key, value in meta.items()
        if key.startswith("HTTP_")
    )


def login_locked_out(
    request: HttpRequest, credentials: Any, *args: Any, **kwargs: Any
) -> HttpResponse:
    """django-axes' answer to a locked-out login (the admin form and the token
    endpoint alike). The lockout itself is logged by django-axes (logger
    "axes") and kept as an AccessAttempt/AccessFailureLog row for the admin."""
    from django.conf import settings

    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    detail = (
        "Too many failed logins for this account or from this address. "
        f"Try again in {minutes} minutes, or ask an administrator to unlock it."
    )
    response = error_response(429, "login_locked_out", detail)
    response["Retry-After"] = str(minutes * 60)
    return response
