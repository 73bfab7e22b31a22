"""Coinbase Advanced Trade: the WebSocket `user` channel's order updates
and the REST fills endpoint (`GET /api/v3/brokerage/orders/historical/fills`).

https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-channels
(User Channel); https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api/orders/list-fills.
Times are RFC 3339 strings (the channel's carry nanoseconds).

The user channel reports orders, not executions: it carries no trade id, so
fills come from the fills endpoint (which has one); order updates give the
cancels, expiries and venue rejections.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._common import (
    ORDER_CANCELED,
    VENUE_REJECTED,
    VenueEvent,
    VenueMessageError,
    closed,
    fill,
    iso_to_us,
    order_id_for,
    reason_text,
)

VENUE = "coinbase"
_NO_TIME = "0001-01-01T00:00:00Z"


def normalize(message: Any, order_ids: Mapping[str, str] | None) -> list[VenueEvent]:
    if not isinstance(message, Mapping):
        raise VenueMessageError("a Coinbase message is a JSON object")
    if message.get("channel") == "user":
        return _user_channel(message, order_ids)
    if isinstance(message.get("fills"), list):
        return [_fill(f, order_ids) for f in message["fills"]]
    if "trade_id" in message and "entry_id" in message:
        return [_fill(message, order_ids)]
    return []  # heartbeats, subscriptions, other channels


def _user_channel(m: Mapping[str, Any], order_ids: Mapping[str, str] | None) -> list[VenueEvent]:
    events: list[VenueEvent] = []
    for event in m.get("events") or []:
        for order in event.get("orders") or []:
            events += _order_update(order, m.get("timestamp"), order_ids)
    return events


def _order_update(
    o: Mapping[str, Any], message_time: Any, order_ids: Mapping[str, str] | None
) -> list[VenueEvent]:
    status = o.get("status")
    if status not in ("CANCELLED", "EXPIRED", "FAILED"):
        return []  # PENDING, OPEN, FILLED, CANCEL_QUEUED: fills come from the fills endpoint
    end = o.get("end_time")
    occurred = iso_to_us(end if end and end != _NO_TIME else message_time)
    venue_order = o.get("order_id")
    order_id = order_id_for(o.get("client_order_id"), venue_order, order_ids)
    dedup = f"{VENUE}:order:{venue_order}:{str(status).lower()}"
    if status == "FAILED":
        code = str(o.get("reject_reason") or "FAILED")
        return [
            closed(
                VENUE,
                VENUE_REJECTED,
                order_id=order_id,
                reason=f"rejected by Coinbase: {code}",
                venue_code=code,
                occurred=occurred,
                dedup=dedup,
                venue_order_id=venue_order,
                raw=o,
            )
        ]
    if status == "CANCELLED":
        reason = reason_text("canceled on venue", o.get("cancel_reason"))
    else:
        reason = "expired on venue"
    return [
        closed(
            VENUE,
            ORDER_CANCELED,
            order_id=order_id,
            reason=reason
            if o.get("cancel_reason") or status != "CANCELLED"
            else "canceled on venue",
            venue_code=None,
            occurred=occurred,
            dedup=dedup,
            venue_order_id=venue_order,
            raw=o,
        )
    ]


def _fill(f: Mapping[str, Any], order_ids: Mapping[str, str] | None) -> VenueEvent:
    if f.get("trade_type", "FILL") != "FILL":
        raise VenueMessageError(
            f"Coinbase {f.get('trade_type')} entries correct an earlier fill; "
            "they have no ORDER_FILLED equivalent: record them with record()"
        )
    if f.get("size_in_quote") is True:
        raise VenueMessageError(
            "a fill sized in the quote currency has no exact base quantity: "
            "fetch it from the order (filled_size)"
        )
    venue_order = f.get("order_id")
    return fill(
        VENUE,
        order_id=order_id_for(None, venue_order, order_ids),
        fill_id=f.get("trade_id"),
        quantity=f.get("size"),
        price=f.get("price"),
        occurred=iso_to_us(f.get("trade_time")),
        dedup=f"{VENUE}:trade:{venue_order}:{f.get('trade_id')}",
        venue_order_id=venue_order,
        raw=f,
    )
