"""Content negotiation with a fast path for what every bot sends.

DRF's default negotiation parses the Accept header and the query string on
every request; the bots behind the gate and the event ingest send no Accept
header (or `*/*`, or `application/json`) to an API that renders only JSON.
For those the answer is known without parsing; anything else (another media
type, a `format` override, the browsable API in DEBUG) is negotiated as before."""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation

_PLAIN_ACCEPT = frozenset({"", "*/*", "application/json"})


class JSONContentNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self, request: Any, renderers: list[Any], format_suffix: str | None = None
    ) -> tuple[Any, str]:
        if (
            len(renderers) == 1
            and renderers[0].media_type == "application/json"
            and not format_suffix
            and request.META.get("HTTP_ACCEPT", "").strip() in _PLAIN_ACCEPT
            and "format=" not in request.META.get("QUERY_STRING", "")
        ):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)  # type: ignore[no-any-return]
