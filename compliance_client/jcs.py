"""RFC 8785 (JCS) canonical JSON.

`canonicalize` is byte-identical to the `rfc8785` reference package on every
value our event schemas allow (tests/client/test_jcs.py proves it with
hypothesis). The fast path is the stdlib's C encoder with sorted keys; it only
differs from JCS in three places, and each one sends the value to the reference
implementation instead:

* floats: JCS uses the ECMAScript number format. We refuse floats at ingest;
  a float found by a walk of the value (a few microseconds) goes to rfc8785.
* integers beyond +/-(2**53 - 1): rfc8785 raises; a 17-digit run (or a
  16-digit one starting with 9) in the output falls back so that it still does.
* key order: JCS sorts by UTF-16 code units, Python by code points. They only
  disagree when a non-BMP character meets one in U+E000..U+FFFF, so any output
  holding a character >= U+E000 (or a lone surrogate) falls back.
"""

from __future__ import annotations

import json
import re
from typing import Any

import rfc8785

_encoder = json.JSONEncoder(
    ensure_ascii=False,
    sort_keys=True,
    separators=(",", ":"),
    allow_nan=False,
    check_circular=False,
)
_BIG_INTEGER = re.compile("[0-9]{17}|9[0-9]{15}")
_HIGH_CHARACTER = re.compile("[\ud800-\udfff\ue000-\U0010ffff]")


class CanonicalizationError(ValueError):
    """The value cannot be represented in RFC 8785 JSON."""


def canonicalize(value: Any) -> bytes:
    """Return JCS(value) as UTF-8 bytes."""
    try:
        text = _encoder.encode(value)
    except (TypeError, ValueError) as exc:
        raise CanonicalizationError(str(exc)) from exc
    if (
        _BIG_INTEGER.search(text)
        or (not text.isascii() and _HIGH_CHARACTER.search(text))
        or _has_float(value)
    ):
        return reference(value)
    return text.encode("utf-8")


def reference(value: Any) -> bytes:
    """The rfc8785 reference implementation, with its errors mapped to ours."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CanonicalizationError(str(exc)) from exc


def _has_float(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
