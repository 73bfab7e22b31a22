"""What every venue adapter shares: the event type, timestamps to integer
microseconds UTC, decimals kept exactly as the venue wrote them, ids the
server accepts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

ORDER_FILLED = "ORDER_FILLED"
ORDER_CANCELED = "ORDER_CANCELED"
VENUE_REJECTED = "VENUE_REJECTED"

# The server's id pattern (audit/event_types.py ID).
_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_ISO = re.compile(
    r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$", re.IGNORECASE
)
_PRECISION = {0: "s", 3: "ms", 6: "us", 9: "ns"}


class VenueMessageError(ValueError):
    """The message claims to be an order or fill message but cannot be turned
    into an event without losing or inventing something (named in the text)."""


@dataclass(frozen=True)
class VenueEvent:
    """One event from a venue's message, ready to sign (CONTRACT section 11).

    `payload` follows the event type's schema (sections 6 and 12), decimals
    exactly as the venue wrote them. `occurred_at_us` is the venue's own time
    in integer microseconds UTC; `timestamp_precision` says what the venue's
    clock gave ("s", "ms", "us", "ns"; "received" when the message carried no
    time and the local clock was used). `dedup_key` is equal for the same
    venue event however it arrived (stream, REST backfill, replayed
    snapshot)."""

    event_type: str
    payload: dict[str, Any]
    occurred_at_us: int
    dedup_key: str
    venue: str
    timestamp_precision: str
    venue_order_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


def ms_to_us(value: Any) -> int:
    return _int(value, "millisecond timestamp") * 1000


def ns_to_us(value: Any) -> int:
    return _int(value, "nanosecond timestamp") // 1000


def seconds_to_us(value: Any) -> tuple[int, str]:
    """ "1560516023.070651" (Kraken) -> microseconds, exactly; digits past
    the sixth are truncated (precision says how many the venue gave)."""
    text = str(value)
    if not _DECIMAL.match(text):
        raise VenueMessageError(f"not a seconds timestamp: {value!r}")
    whole, _, frac = text.partition(".")
    return int(whole) * 1_000_000 + int((frac + "000000")[:6]), _precision(len(frac))


def iso_to_us(value: Any) -> tuple[int, str]:
    """ISO 8601 / RFC 3339 ("2023-02-09T20:33:57.609931463Z") -> microseconds
    UTC, exactly (digits past the sixth truncated); no offset means UTC."""
    match = _ISO.match(str(value).strip())
    if not match:
        raise VenueMessageError(f"not an ISO 8601 timestamp: {value!r}")
    date, time_part, frac, zone = match.groups()
    frac = frac or ""
    offset = dt.timedelta(0)
    if zone and zone.upper() != "Z":
        sign = -1 if zone[0] == "-" else 1
        hours, minutes = int(zone[1:3]), int(zone[-2:])
        offset = sign * dt.timedelta(hours=hours, minutes=minutes)
    base = dt.datetime.fromisoformat(f"{date}T{time_part}").replace(tzinfo=dt.UTC) - offset
    seconds = int(base.timestamp())
    return seconds * 1_000_000 + int((frac + "000000")[:6]), _precision(len(frac))


def _precision(digits: int) -> str:
    return _PRECISION.get(digits, f"{digits} fractional digits")


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise VenueMessageError(f"{what} must be an integer, not {value!r}")
    try:
        return int(value)
    except ValueError as exc:
        raise VenueMessageError(f"{what} must be an integer, not {value!r}") from exc


def decimal_text(value: Any, what: str) -> str:
    """The venue's decimal exactly as written. A float (ccxt's unified
    structures hold floats) becomes its shortest repr, which is the digits
    the exchange sent, minus trailing zeros."""
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, bool) or value is None:
        raise VenueMessageError(f"{what} is missing")
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        try:
            text = format(Decimal(repr(value)), "f")
        except InvalidOperation as exc:
            raise VenueMessageError(f"{what} is not a number: {value!r}") from exc
    else:
        raise VenueMessageError(f"{what} is not a decimal: {value!r}")
    if not _DECIMAL.match(text):
        raise VenueMessageError(f"{what} is not a plain decimal: {value!r}")
    return text


def server_id(value: Any, what: str) -> str:
    """An id the server accepts. Most venue ids already are and stay as they
    are; one with other characters (a "/" in some ccxt ids) is escaped
    reversibly: every byte outside [A-Za-z0-9.:-] becomes _xx (hex)."""
    if value is None or value == "":
        raise VenueMessageError(f"{what} is missing")
    text = str(value)
    if _ID.match(text):
        return text
    escaped = "".join(
        c
        if c.isascii() and (c.isalnum() or c in ".:-")
        else "".join(f"_{b:02x}" for b in c.encode())
        for c in text
    )
    if len(escaped) > 128:
        raise VenueMessageError(f"{what} is too long once escaped: {text!r}")
    return escaped


def _escape(char: str) -> str:
    return "".join(f"_{byte:02x}" for byte in char.encode())


def reason_text(text: str, detail: Any) -> str:
    """ "canceled on venue" or "canceled on venue: <the venue's words>"."""
    return f"{text}: {detail}" if detail not in (None, "") else text


def order_id_for(
    client_order_id: Any, venue_order_id: Any, order_ids: Mapping[str, str] | None
) -> str:
    """The bot's order_id (the one the gate saw): the client order id the
    venue echoes, else the bot's mapping from the venue's order id (REST fills
    often carry only that), else the venue's order id itself."""
    if client_order_id not in (None, ""):
        return server_id(client_order_id, "client order id")
    if venue_order_id in (None, ""):
        raise VenueMessageError("the message names no order")
    if order_ids and str(venue_order_id) in order_ids:
        return server_id(order_ids[str(venue_order_id)], "order id")
    return server_id(venue_order_id, "venue order id")


def fill(
    venue: str,
    *,
    order_id: str,
    fill_id: Any,
    quantity: Any,
    price: Any,
    occurred: tuple[int, str],
    dedup: str,
    venue_order_id: Any,
    raw: Mapping[str, Any],
) -> VenueEvent:
    payload = {
        "order_id": order_id,
        "fill_id": server_id(fill_id, "trade id"),
        "quantity": decimal_text(quantity, "quantity"),
        "price": decimal_text(price, "price"),
        "venue": venue,
    }
    return _event(venue, ORDER_FILLED, payload, occurred, dedup, venue_order_id, raw)


def closed(
    venue: str,
    event_type: str,
    *,
    order_id: str,
    reason: str,
    venue_code: str | None,
    occurred: tuple[int, str],
    dedup: str,
    venue_order_id: Any,
    raw: Mapping[str, Any],
) -> VenueEvent:
    """ORDER_CANCELED {order_id, reason} or VENUE_REJECTED {order_id, reason,
    venue, venue_code}."""
    payload: dict[str, Any] = {"order_id": order_id, "reason": reason[:4000]}
    if event_type == VENUE_REJECTED:
        payload["venue"] = venue
        if venue_code:
            payload["venue_code"] = venue_code[:128]
    return _event(venue, event_type, payload, occurred, dedup, venue_order_id, raw)


def _event(
    venue: str,
    event_type: str,
    payload: dict[str, Any],
    occurred: tuple[int, str],
    dedup: str,
    venue_order_id: Any,
    raw: Mapping[str, Any],
) -> VenueEvent:
    venue_order = None if venue_order_id in (None, "") else str(venue_order_id)
    return VenueEvent(event_type, payload, occurred[0], dedup, venue, occurred[1], venue_order, raw)
