"""RFC 8785 (JCS) canonical JSON.

`canonicalize` is byte-identical to the `rfc8785` reference package on every
value our event schemas allow (tests/client/test_jcs.py proves it with
hypothesis). The fast path is the stdlib's C encoder with sorted keys; it only
differs from JCS in three places, and each one sends the value to the reference
implementation instead:

* floats: JCS uses the ECMAScript number format. We refuse floats at ingest;
  a float found by a walk of the value (about a microsecond) goes to rfc8785.
* integers beyond +/-(2**53 - 1): rfc8785 raises; the same walk finds them
  and falls back so that it still does.
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
MAX_SAFE_INTEGER = 2**53 - 1
encode_string = json.encoder.encode_basestring  # what _encoder uses for a str
_c_encoder = json.encoder.c_make_encoder  # type: ignore[attr-defined]
_encode_chunks = (
    _c_encoder(None, _encoder.default, encode_string, None, ":", ",", True, False, False)
    if _c_encoder is not None
    else None
)


def encode_sorted(value: Any) -> str:
    """What _encoder.encode(value) gives, without building an encoder per
    call (JSONEncoder.encode makes one each time): JSON with sorted keys, no
    spaces, no ASCII escaping. Not JCS by itself: canonicalize() checks the
    rest (floats, big integers, characters >= U+E000)."""
    if _encode_chunks is None:
        return _encoder.encode(value)
    return "".join(_encode_chunks(value, 0))


_HIGH_CHARACTER = re.compile("[\ud800-\udfff\ue000-\U0010ffff]")


class CanonicalizationError(ValueError):
    """The value cannot be represented in RFC 8785 JSON."""


def canonicalize(value: Any, *, numbers_checked: bool = False) -> bytes:
    """Return JCS(value) as UTF-8 bytes. `numbers_checked`: the caller has
    already walked the value and found no float and no integer beyond
    +/-(2**53 - 1) (ingest does, to report them per item), so the walk is skipped."""
    if type(value) is str:
        # Ids, signatures, event types: one C call, no walk.
        text = encode_string(value)
        if text.isascii() or not _HIGH_CHARACTER.search(text):
            return text.encode("utf-8")
        return reference(value)
    try:
        text = encode_sorted(value)
    except (TypeError, ValueError) as exc:
        raise CanonicalizationError(str(exc)) from exc
    if (not text.isascii() and _HIGH_CHARACTER.search(text)) or (
        not numbers_checked and _needs_reference(value)
    ):
        return reference(value)
    return text.encode("utf-8")


def reference(value: Any) -> bytes:
    """The rfc8785 reference implementation, with its errors mapped to ours."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CanonicalizationError(str(exc)) from exc


def _needs_reference(value: Any) -> bool:
    return number_problem(value) is not None


def number_problem(value: Any, float_type: type | None = None) -> str | None:
    """One walk: "float" if a float (or a value of `float_type`: what a JSON
    parser was told to turn floats into) is anywhere in the value, else
    "integer" if an integer lies beyond +/-(2**53 - 1), else None. Exact type
    checks first: parsed JSON holds only dict, list, str, int, bool, None."""
    stack = [value]
    pop, push = stack.pop, stack.extend
    big = False
    while stack:
        item = pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is dict:
            push(item.values())
        elif kind is int:
            big = big or not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER
        elif kind is list or kind is tuple:
            push(item)
        elif kind is float_type or isinstance(item, float):
            return "float"
        elif isinstance(item, dict):
            push(item.values())
        elif isinstance(item, list | tuple):
            push(item)
        elif isinstance(item, int):
            big = big or not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER
    return "integer" if big else None
