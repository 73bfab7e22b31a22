"""The API's only JSON parser: hostile bodies are refused here, before anything else runs.

* Bodies over COMPLIANCE_MAX_BODY_BYTES: 413 before they are read.
* NUL characters, raw or escaped (`\\u0000`): 400 `nul_not_allowed`. PostgreSQL
  text cannot hold them, and one field accepting what another turns into a
  500 is worse than refusing them everywhere.
* Nesting deeper than MAX_JSON_DEPTH: 400 `nesting_too_deep` (Python's decoder
  recurses; about 1000 levels end in a RecursionError, and far fewer can still
  exhaust whatever walks the value afterwards).
* NaN / Infinity: 400 `parse_error`; a float may become a token of the
  caller's choosing (`parse_float`) so that the event ingest can refuse it per item.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import BaseParser

MAX_JSON_DEPTH = 64


class BadJSON(exceptions.ParseError):
    def __init__(self, code: str, detail: str):
        super().__init__(detail, code)


def depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether containers nest deeper than `limit` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        if depth > limit:
            return True
        kind = type(item)
        if kind is dict:
            children = item.values()
        elif kind is list:
            children = item
        else:
            continue
        for child in children:
            if type(child) is dict or type(child) is list:
                push((child, depth + 1))
    return False


def parse_json_bytes(raw: bytes, *, parse_float: Callable[[str], Any] | None = None) -> Any:
    """Parse a request body under the rules above; raises BadJSON (400)."""
    if b"\x00" in raw or b"\\u0000" in raw:
        raise BadJSON("nul_not_allowed", "NUL characters are not allowed anywhere in a request")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadJSON("parse_error", f"Malformed JSON: {exc}") from exc

    def refuse_constant(name: str) -> None:
        raise ValueError(f"{name} is not valid JSON")

    try:
        value = json.loads(text, parse_float=parse_float, parse_constant=refuse_constant)
    except RecursionError as exc:
        raise BadJSON(
            "nesting_too_deep", f"JSON nests deeper than {MAX_JSON_DEPTH} levels"
        ) from exc
    except ValueError as exc:
        raise BadJSON("parse_error", f"Malformed JSON: {exc}") from exc
    # Only a body with more opening brackets than the limit can nest past it:
    # a single order never pays for the walk.
    if raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH and depth_exceeds(value):
        raise BadJSON("nesting_too_deep", f"JSON nests deeper than {MAX_JSON_DEPTH} levels")
    return value


class SafeJSONParser(BaseParser):
    """DRF's JSON parser with the limits above (the default for every view)."""

    media_type = "application/json"
    parse_float: Callable[[str], Any] | None = None

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        # (compliance_site.exceptions imports DRF's views, which import this module)
        from .exceptions import PayloadTooLarge

        request = (parser_context or {}).get("request")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        if length > limit:
            raise PayloadTooLarge(f"Request body is {length} bytes; the limit is {limit}.")
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.")
        parse_float = type(self).parse_float
        return parse_json_bytes(raw, parse_float=parse_float)
