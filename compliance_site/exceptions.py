"""One error shape for the whole API: {"code": <machine-readable>, "detail": <human text>}.

Every refusal a service raises is a `ServiceError`: one of the classes below
(by HTTP status), raised with its code, or an app's subclass of one of them
where the refusal carries more (the event batch's `errors` list, the grant's
`reasons`). `exception_handler` maps them here, once; views never build an
error response by hand (tests/compliance_site/test_error_model.py greps for it).

Outside DRF's views (middleware, outages: 503 `database_unavailable`,
`log_key_unavailable`; the 429 login lockout) the same shape comes from
compliance_site.errors.
"""

from typing import Any

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ServiceError(Exception):
    """A refused operation raised by a service. `code` is machine-readable,
    `detail` says why to a person, `extra` are further keys of the body;
    `http_status` is the API's answer (each subclass sets it)."""

    http_status: int = status.HTTP_400_BAD_REQUEST

    def __init__(self, code: str, detail: Any, **extra: Any):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, **self.extra}

    def headers(self) -> dict[str, str]:
        return {}


class Invalid(ServiceError):
    """The request cannot be done as asked (400)."""

    http_status = status.HTTP_400_BAD_REQUEST


class Unauthenticated(ServiceError):
    """No or bad credentials (401)."""

    http_status = status.HTTP_401_UNAUTHORIZED


class Forbidden(ServiceError):
    """The caller may not do this (403)."""

    http_status = status.HTTP_403_FORBIDDEN


class NotFound(ServiceError):
    """No such object for this caller (404)."""

    http_status = status.HTTP_404_NOT_FOUND


class Conflict(ServiceError):
    """The request conflicts with the current state (409)."""

    http_status = status.HTTP_409_CONFLICT


class TooLarge(ServiceError):
    """The request is larger than allowed (413)."""

    http_status = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class Inconsistent(ServiceError):
    """The server's own data contradicts itself (500): not the caller's fault."""

    http_status = status.HTTP_500_INTERNAL_SERVER_ERROR


class PayloadTooLarge(exceptions.APIException):
    """Raised by the parser (compliance_site.parsers), before any view runs."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ServiceError):
        return Response(exc.body(), status=exc.http_status, headers=exc.headers())
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    data = response.data
    if isinstance(data, dict) and "code" in data and "detail" in data:
        return response
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"code": "invalid", "detail": data}
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        detail = data.get("detail", data) if isinstance(data, dict) else data
        response.data = {"code": code, "detail": detail}
    return response
