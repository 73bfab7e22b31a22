"""Spoofing: an order placed and cancelled unfilled within
`spoof_cancel_threshold_secs` (MAR Annex I 1(a)(ii), orders not meant to
trade). Cancels within the threshold of an alert on the same agent and market
belong to its episode."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .base import Detector, Finding, TradeEvent, dec, secs

# A remembered order: order_id -> [ts, seq, side, quantity, price, filled (0/1)]


class SpoofingDetector(Detector):
    name = "spoofing"
    severity = "high"
    kinds = frozenset({"submit", "fill", "cancel"})

    def partition(self, event: TradeEvent) -> str | None:
        if event.market is None:
            return None
        return f"{event.agent_id}|{event.market}"

    def load_state(self, stored: dict[str, Any]) -> dict[str, Any]:
        # Oldest first (jsonb does not keep key order): pruning relies on it.
        orders = sorted(stored.get("orders", {}).items(), key=lambda kv: (kv[1][0], kv[1][1]))
        return {**stored, "orders": dict(orders)}

    def horizon_us(self) -> int:
        return self.config.spoof_cancel_threshold_us

    def feed(self, state: dict[str, Any], event: TradeEvent) -> list[Finding]:
        threshold = self.config.spoof_cancel_threshold_us
        orders: dict[str, list[Any]] | None = state.get("orders")
        if orders is None:
            orders = state["orders"] = {}
        horizon = event.ts - threshold
        # Oldest first: the dict keeps submission order. Most events find the
        # oldest order still young, so it is looked at once before looping.
        if orders and next(iter(orders.values()))[0] < horizon:
            while orders:
                oldest = next(iter(orders))
                if orders[oldest][0] >= horizon:
                    break
                del orders[oldest]  # cancelled after this, it is not a spoof
        if event.kind == "submit":
            if event.accepted and event.order_id is not None:
                orders[event.order_id] = [
                    event.ts,
                    event.seq,
                    event.side,
                    dec(event.quantity or Decimal(0)),
                    dec(event.price or Decimal(0)),
                    0,
                ]
            return []
        order = orders.get(event.order_id or "")
        if order is None:
            return []
        if event.kind == "fill":
            order[5] = 1
            return []
        del orders[event.order_id or ""]
        lived = event.ts - order[0]
        if order[5] or lived > threshold:
            return []
        episode = state.get("episode")
        if episode is not None and event.ts <= episode[1]:
            episode[1] = event.ts + threshold
            return []
        state["episode"] = [order[1], event.ts + threshold]
        return [
            self.finding(
                event=event,
                key=self.partition(event) or "",
                anchor=order[1],
                evidence=[order[1], event.seq],
                detail=(
                    f"agent {event.agent_id} placed {order[2]} {order[3]} {event.market} "
                    f"@ {order[4]} (seq {order[1]}) and cancelled it unfilled after {secs(lived)}s "
                    f"(threshold {secs(threshold)}s, seq {event.seq})"
                ),
                facts={
                    "order_id": event.order_id,
                    "side": order[2],
                    "quantity": order[3],
                    "price": order[4],
                    "lived_secs": secs(lived),
                    "threshold_secs": secs(threshold),
                },
            )
        ]
