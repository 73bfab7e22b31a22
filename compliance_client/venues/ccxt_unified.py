"""ccxt's unified structures: the trade structure (`fetchMyTrades`,
ccxt.pro `watchMyTrades`) and the order structure (`fetchOrder`,
`watchOrders`, ...), which cover every exchange ccxt supports.

https://docs.ccxt.com/#/README?id=trade-structure and
https://docs.ccxt.com/#/README?id=order-structure. `timestamp` is in
milliseconds; prices and amounts are floats, turned back into the shortest
decimal that parses to them (the exchange's digits without trailing zeros).
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
)

VENUE = "ccxt"


def normalize(message: Any, order_ids: Mapping[str, str] | None) -> list[VenueEvent]:
    if not isinstance(message, Mapping):
        raise VenueMessageError("a ccxt structure is a JSON object (or a list of them)")
    if "status" in message and ("filled" in message or "remaining" in message):
        return _order(message, order_ids)
    if "amount" in message and "price" in message and "id" in message:
        return [_trade(message, order_ids, None)]
    return []


def _trade(
    t: Mapping[str, Any], order_ids: Mapping[str, str] | None, client_order_id: Any
) -> VenueEvent:
    venue_order = t.get("order")
    if t.get("timestamp") is None:
        raise VenueMessageError("the trade has no timestamp")
    return fill(
        VENUE,
        order_id=order_id_for(client_order_id, venue_order, order_ids),
        fill_id=t.get("id"),
        quantity=t.get("amount"),
        price=t.get("price"),
        occurred=(ms_to_us(t["timestamp"]), "ms"),
        dedup=f"{VENUE}:trade:{t.get('symbol')}:{venue_order}:{t.get('id')}",
        venue_order_id=venue_order,
        raw=t,
    )


def _order(o: Mapping[str, Any], order_ids: Mapping[str, str] | None) -> list[VenueEvent]:
    events = [
        _trade({**t, "order": t.get("order") or o.get("id")}, order_ids, o.get("clientOrderId"))
        for t in o.get("trades") or []
    ]
    status = o.get("status")
    if status not in ("canceled", "expired", "rejected"):
        return events
    stamp = o.get("lastUpdateTimestamp") or o.get("lastTradeTimestamp") or o.get("timestamp")
    if stamp is None:
        raise VenueMessageError(f"the {status} order has no timestamp")
    kind = VENUE_REJECTED if status == "rejected" else ORDER_CANCELED
    events.append(
        closed(
            VENUE,
            kind,
            order_id=order_id_for(o.get("clientOrderId"), o.get("id"), order_ids),
            reason=f"{status} on venue" if kind == ORDER_CANCELED else "rejected by the exchange",
            venue_code=str(status),
            occurred=(ms_to_us(stamp), "ms"),
            dedup=f"{VENUE}:order:{o.get('symbol')}:{o.get('id')}:{status}",
            venue_order_id=o.get("id"),
            raw=o,
        )
    )
    return events
