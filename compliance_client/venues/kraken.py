"""Kraken spot, WebSocket API v1: `ownTrades` and `openOrders`.

https://docs.kraken.com/api/docs/websocket-v1/owntrades and
https://docs.kraken.com/api/docs/websocket-v1/openorders. Messages are
arrays `[[{id: {...}}, ...], channel_name, {"sequence": n}]`; times are
seconds with six decimals, as strings.

Every (re)subscription to ownTrades replays the last 50 trades: each comes
back with the same dedup_key, so it is recorded once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ._common import (
    ORDER_CANCELED,
    VenueEvent,
    VenueMessageError,
    closed,
    fill,
    order_id_for,
    reason_text,
    seconds_to_us,
)

VENUE = "kraken"


def normalize(message: Any, order_ids: Mapping[str, str] | None) -> list[VenueEvent]:
    if isinstance(message, Mapping):
        return []  # heartbeat, systemStatus, subscriptionStatus
    if not isinstance(message, list) or len(message) < 2:
        raise VenueMessageError("a Kraken channel message is [data, channel_name, ...]")
    data, channel = message[0], message[1]
    if channel == "ownTrades":
        return [_trade(tid, t, order_ids) for entry in data for tid, t in entry.items()]
    if channel == "openOrders":
        return [e for entry in data for oid, o in entry.items() for e in _order(oid, o, order_ids)]
    return []


def _trade(trade_id: str, t: Mapping[str, Any], order_ids: Mapping[str, str] | None) -> VenueEvent:
    venue_order = t.get("ordertxid")
    return fill(
        VENUE,
        order_id=order_id_for(t.get("cl_ord_id"), venue_order, order_ids),
        fill_id=trade_id,
        quantity=t.get("vol"),
        price=t.get("price"),
        occurred=seconds_to_us(t.get("time")),
        dedup=f"{VENUE}:trade:{venue_order}:{trade_id}",
        venue_order_id=venue_order,
        raw=t,
    )


def _order(
    venue_order: str, o: Mapping[str, Any], order_ids: Mapping[str, str] | None
) -> list[VenueEvent]:
    status = o.get("status")
    if status not in ("canceled", "expired"):
        return []  # pending, open, closed (fills arrive on ownTrades)
    stamp = o.get("lastupdated")
    # A status-only update may carry no time: then the local clock, said so.
    occurred = seconds_to_us(stamp) if stamp is not None else (time.time_ns() // 1000, "received")
    reason = reason_text("canceled on venue", o.get("cancel_reason"))
    return [
        closed(
            VENUE,
            ORDER_CANCELED,
            order_id=order_id_for(o.get("cl_ord_id"), venue_order, order_ids),
            reason=reason if status == "canceled" else "expired on venue",
            venue_code=None,
            occurred=occurred,
            dedup=f"{VENUE}:order:{venue_order}:{status}",
            venue_order_id=venue_order,
            raw=o,
        )
    ]
