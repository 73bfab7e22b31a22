"""One error shape for the whole API: {"code": <machine-readable>, "detail": <human text>}.

Endpoints that report several item errors (the event batch) add their own
"errors" list beside it.
"""

from typing import Any

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ServiceError(Exception):
    """A refused operation raised by a service. `code` is machine-readable;
    `http_status` is the API's answer (subclasses set it)."""

    http_status = 400

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ServiceError):
        return Response({"code": exc.code, "detail": exc.detail}, status=exc.http_status)
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
