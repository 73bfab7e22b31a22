"""Schema lookup and validation for event payloads (compiled once per process)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastjsonschema

from .event_types import CORE_TYPES, Channel

Validator = Callable[[Any], Any]


@dataclass(frozen=True)
class ResolvedType:
    name: str
    channel: str
    version: int
    validate: Validator


_compiled: dict[tuple[str, int], Validator] = {}
_custom_cache: dict[str, tuple[float, ResolvedType | None]] = {}
_CUSTOM_TTL_S = 10.0


def _compile(name: str, version: int, schema: dict[str, Any]) -> Validator:
    key = (name, version)
    if key not in _compiled:
        _compiled[key] = fastjsonschema.compile(schema)
    return _compiled[key]


def resolve(name: str) -> ResolvedType | None:
    """The latest schema version of a core or registered custom type, or None."""
    spec = CORE_TYPES.get(name)
    if spec is not None:
        version = spec.latest
        return ResolvedType(
            name, spec.channel, version, _compile(name, version, spec.versions[version])
        )
    now = time.monotonic()
    cached = _custom_cache.get(name)
    if cached is not None and now - cached[0] < _CUSTOM_TTL_S:
        return cached[1]
    from .models import EventType

    row = EventType.objects.filter(name=name).order_by("-version").first()
    resolved = (
        ResolvedType(name, Channel.BOT, row.version, _compile(name, row.version, row.schema))
        if row is not None
        else None
    )
    _custom_cache[name] = (now, resolved)
    return resolved


def forget_custom(name: str) -> None:
    _custom_cache.pop(name, None)


def schema_errors(validate: Validator, payload: Any) -> str | None:
    """None if the payload is valid, else a human-readable reason."""
    try:
        validate(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        return str(exc.message)
    return None
