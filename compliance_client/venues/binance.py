"""Binance spot: the user data stream's `executionReport` and the REST
`GET /api/v3/myTrades` trades (for a backfill).

https://developers.binance.com/docs/binance-spot-api-docs/user-data-stream
(Order Update); https://developers.binance.com/docs/binance-spot-api-docs/rest-api
(Account trade list). Times are milliseconds.
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
    ms_to_us,
    order_id_for,
    reason_text,
)

VENUE = "binance"


def normalize(message: Any, order_ids: Mapping[str, str] | None) -> list[VenueEvent]:
    if not isinstance(message, Mapping):
        raise VenueMessageError("a Binance message is a JSON object or a list of trades")
    if isinstance(message.get("event"), Mapping):  # WebSocket API: {"subscriptionId", "event"}
        message = message["event"]
    if message.get("e") == "executionReport":
        return _execution_report(message, order_ids)
    if "e" in message:
        return []  # outboundAccountPosition, balanceUpdate, listStatus, ...
    if {"id", "orderId", "qty", "price", "time"} <= message.keys():
        return [_rest_trade(message, order_ids)]
    return []


def _trade_key(symbol: Any, order_id: Any, trade_id: Any) -> str:
    return f"{VENUE}:trade:{symbol}:{order_id}:{trade_id}"


def _execution_report(
    m: Mapping[str, Any], order_ids: Mapping[str, str] | None
) -> list[VenueEvent]:
    kind = m.get("x")
    venue_order = m.get("i")
    occurred = (ms_to_us(m.get("T", m.get("E"))), "ms")
    if kind == "TRADE":
        return [
            fill(
                VENUE,
                order_id=order_id_for(m.get("c"), venue_order, order_ids),
                fill_id=m.get("t"),
                quantity=m.get("l"),
                price=m.get("L"),
                occurred=occurred,
                dedup=_trade_key(m.get("s"), venue_order, m.get("t")),
                venue_order_id=venue_order,
                raw=m,
            )
        ]
    if kind in ("CANCELED", "EXPIRED", "TRADE_PREVENTION"):
        # On a cancel, "c" is the cancel request's own id and "C" the order's.
        client_id = m.get("C") or m.get("c")
        reason = {
            "CANCELED": "canceled on venue",
            "EXPIRED": reason_text("expired on venue", m.get("eR")),
            "TRADE_PREVENTION": "expired on venue: self-trade prevention",
        }[str(kind)]
        return [
            closed(
                VENUE,
                ORDER_CANCELED,
                order_id=order_id_for(client_id, venue_order, order_ids),
                reason=reason,
                venue_code=None,
                occurred=occurred,
                dedup=f"{VENUE}:order:{m.get('s')}:{venue_order}:{str(kind).lower()}",
                venue_order_id=venue_order,
                raw=m,
            )
        ]
    if kind == "REJECTED":
        code = str(m.get("r") or "REJECTED")
        return [
            closed(
                VENUE,
                VENUE_REJECTED,
                order_id=order_id_for(m.get("c"), venue_order, order_ids),
                reason=f"rejected by Binance: {code}",
                venue_code=code,
                occurred=occurred,
                dedup=f"{VENUE}:order:{m.get('s')}:{m.get('c') or venue_order}:rejected",
                venue_order_id=venue_order,
                raw=m,
            )
        ]
    return []  # NEW, REPLACED: nothing the log needs from the venue


def _rest_trade(t: Mapping[str, Any], order_ids: Mapping[str, str] | None) -> VenueEvent:
    venue_order = t.get("orderId")
    return fill(
        VENUE,
        order_id=order_id_for(None, venue_order, order_ids),
        fill_id=t.get("id"),
        quantity=t.get("qty"),
        price=t.get("price"),
        occurred=(ms_to_us(t.get("time")), "ms"),
        dedup=_trade_key(t.get("symbol"), venue_order, t.get("id")),
        venue_order_id=venue_order,
        raw=t,
    )
