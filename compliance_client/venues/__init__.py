"""Venue adapters (CONTRACT section 11): a venue's own order and fill
messages, as parsed JSON, in; events ready to sign out.

    events = venues.normalize("binance", json.loads(ws_message))
    client.record_venue(events)

`normalize(venue, message, *, order_ids=None) -> list[VenueEvent]` for
`venue` in "binance", "coinbase", "kraken", "ccxt"; a list of messages
(a REST page of trades) is the events of each, in order. A message that carries no
fill, cancel or rejection gives `[]`; one that claims to but cannot be
represented exactly raises `VenueMessageError`.

The bot's `order_id` (the one the gate saw) is the client order id the
venue echoes. REST backfills often carry only the venue's order id: pass
`order_ids={venue_order_id: your_order_id}` so a fill from a backfill has the
same payload as the same fill from the stream (and the same `dedup_key`
either way; `ComplianceClient.record_venue` derives the event_id from it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import binance, ccxt_unified, coinbase, kraken
from ._common import (
    ORDER_CANCELED,
    ORDER_FILLED,
    VENUE_REJECTED,
    VenueEvent,
    VenueMessageError,
    iso_to_us,
    seconds_to_us,
)

__all__ = [
    "ORDER_CANCELED",
    "ORDER_FILLED",
    "VENUES",
    "VENUE_REJECTED",
    "VenueEvent",
    "VenueMessageError",
    "iso_to_us",
    "normalize",
    "seconds_to_us",
]

Adapter = Callable[[Any, Mapping[str, str] | None], list[VenueEvent]]
VENUES: dict[str, Adapter] = {
    "binance": binance.normalize,
    "coinbase": coinbase.normalize,
    "kraken": kraken.normalize,
    "ccxt": ccxt_unified.normalize,
}


def normalize(
    venue: str, message: Any, *, order_ids: Mapping[str, str] | None = None
) -> list[VenueEvent]:
    try:
        adapter = VENUES[venue]
    except KeyError:
        raise ValueError(f"unknown venue {venue!r}; one of {', '.join(VENUES)}") from None
    try:
        if isinstance(message, list) and venue != "kraken":  # Kraken's messages are arrays
            return [event for one in message for event in adapter(one, order_ids)]
        return adapter(message, order_ids)
    except (KeyError, TypeError, AttributeError) as exc:
        raise VenueMessageError(f"{venue}: malformed message ({exc!r})") from exc
