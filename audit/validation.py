"""Schema lookup and validation for event payloads (compiled once per process)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
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


# Amounts that must be strictly positive, per core type (CONTRACT section 12). The
# schemas' decimal pattern admits "0"; a zero quantity or price would make a
# notional 0 and walk past every notional limit, so they are refused here with a
# code per field. A market order's price is not trusted at all (the gate values
# it at a reference price), so it may be "0"; so may a flat position's.
POSITIVE_AMOUNTS: dict[str, tuple[str, ...]] = {
    "ORDER_SUBMITTED": ("quantity", "price", "reference_price"),
    "ORDER_AMENDED": ("quantity", "price"),
    "ORDER_FILLED": ("quantity", "price"),
    "POSITION_CHANGED": ("price",),
}
UNPRICED_ORDER_TYPES = frozenset({"market"})


def amount_problem(event_type: str, payload: dict[str, Any]) -> tuple[str, str] | None:
    """(code, detail) for the first amount that must be positive and is not
    (`invalid_quantity`, `invalid_price`), else None. Runs after the schema,
    so every amount present is a well-formed decimal string."""
    for name in POSITIVE_AMOUNTS.get(event_type, ()):
        value = payload.get(name)
        if value is None or Decimal(value) > 0:
            continue
        if name == "price" and payload.get("order_type") in UNPRICED_ORDER_TYPES:
            continue
        if event_type == "POSITION_CHANGED" and Decimal(payload["quantity"]) == 0:
            continue  # a flat position has no value to price
        code = "invalid_quantity" if name == "quantity" else "invalid_price"
        return code, f"{event_type}: {name} must be positive, got {value!r}"
    return None


def timestamp_problem(occurred_at_us: int, received_at_us: int) -> str | None:
    """Why an envelope's occurred_at_us lies outside the accepted window, else
    None: at most COMPLIANCE_MAX_CLOCK_DRIFT_US ahead of the server's clock
    (bot clocks drift; they do not run into the future) and at most
    COMPLIANCE_MAX_EVENT_AGE_US behind it (an outbox may hold events for a while
    after an outage, not for years)."""
    from django.conf import settings

    ahead = occurred_at_us - received_at_us
    if ahead > settings.COMPLIANCE_MAX_CLOCK_DRIFT_US:
        return (
            f"occurred_at_us is {ahead} us ahead of the server clock "
            f"(at most {settings.COMPLIANCE_MAX_CLOCK_DRIFT_US})"
        )
    behind = received_at_us - occurred_at_us
    if behind > settings.COMPLIANCE_MAX_EVENT_AGE_US:
        return (
            f"occurred_at_us is {behind} us behind the server clock "
            f"(at most {settings.COMPLIANCE_MAX_EVENT_AGE_US})"
        )
    return None
