"""Spoofing: orders not meant to trade (MAR Annex I 1(a)(ii) and Annex II
5(e); CEA 4c(a)(5)(C); FINRA 5210 .03).

The default rule (`spoofing_rule: large_cancel_opposite`), as surveillance
vendors run it: an order large relative to the agent's usual size in that
market (at least `spoof_size_multiple` times the median of its recent
orders, once it has `spoof_min_history` of them), cancelled unfilled within
`spoof_cancel_threshold_secs`, while the agent traded on the other side (a
fill of one of its opposite orders during the large order's life). A market
maker requoting cancels ordinary-sized orders within seconds all day: that
is not spoofing.

The seed's plain rule (`quick_cancel`) stays selectable: any order cancelled
unfilled within the threshold.

Cancels within the threshold of an alert on the same agent and market belong
to its episode."""

from __future__ import annotations

from bisect import bisect_left, insort
from decimal import Decimal
from typing import Any

from compliance_site.decimals import decimal_text

from .base import Detector, Finding, TradeEvent, secs

# A remembered order: order_id -> [ts, seq, side, quantity, price, filled (0/1),
#   large (0/1), usual size, opposite fill seq or None]
HISTORY = 10  # the orders whose median is the agent's usual size


class SpoofingDetector(Detector):
    name = "spoofing"
    severity = "high"
    kinds = frozenset({"submit", "fill", "cancel", "venue_reject"})

    def partition(self, event: TradeEvent) -> str | None:
        if event.market is None:
            return None
        return f"{event.agent_id}|{event.market}"

    def load_state(self, stored: dict[str, Any]) -> dict[str, Any]:
        # Oldest first (jsonb does not keep key order): pruning relies on it.
        orders = sorted(stored.get("orders", {}).items(), key=lambda kv: (kv[1][0], kv[1][1]))
        # State written before the rules existed holds six fields per order.
        pad = [int(self.config.spoofing_rule == "quick_cancel"), None, None]
        return {
            **stored,
            "orders": {k: [*o, *pad[len(o) - 6 :]] for k, o in orders},
            "sizes": [Decimal(q) for q in stored.get("sizes", ())],
        }

    @staticmethod
    def _sorted(state: dict[str, Any]) -> list[Decimal]:
        """The recent sizes in order (in memory only, beside the FIFO `sizes`)."""
        ordered: list[Decimal] | None = state.get("_sorted")
        if ordered is None:
            ordered = state["_sorted"] = sorted(state.setdefault("sizes", []))
        return ordered

    def dump_state(self, state: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in state.items() if k != "_sorted"}
        out["sizes"] = [decimal_text(q) for q in state.get("sizes", ())]
        return out

    def horizon_us(self) -> int:
        if self.config.spoofing_rule == "quick_cancel":
            return self.config.spoof_cancel_threshold_us
        # The usual size is remembered across quiet spells of the window.
        return max(self.config.spoof_cancel_threshold_us, self.config.window_us)

    def feed(self, state: dict[str, Any], event: TradeEvent) -> list[Finding]:
        threshold = self.config.spoof_cancel_threshold_us
        plain = self.config.spoofing_rule == "quick_cancel"
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
                quantity = event.quantity or Decimal(0)
                large, usual = (1, None) if plain else self._large(state, quantity)
                orders[event.order_id] = [
                    event.ts, event.seq, event.side, decimal_text(quantity),
                    decimal_text(event.price or Decimal(0)), 0, large, usual, None,
                ]  # fmt: skip
            return []
        order = orders.get(event.order_id or "")
        if event.kind == "fill":
            if order is not None:
                order[5] = 1
            if not plain:  # the agent trades on this side: its opposite orders are live spoofs
                for other in orders.values():
                    if other[2] != event.side and not other[5] and other[8] is None:
                        other[8] = event.seq
            return []
        if order is None:
            return []
        del orders[event.order_id or ""]
        if event.kind == "venue_reject":
            return []  # the venue refused it: the bot did not pull it
        lived = event.ts - order[0]
        if order[5] or lived > threshold or not order[6]:
            return []
        if not plain and order[8] is None:
            return []  # large and quickly cancelled, but no trade on the other side
        episode = state.get("episode")
        if episode is not None and event.ts <= episode[1]:
            episode[1] = event.ts + threshold
            return []
        state["episode"] = [order[1], event.ts + threshold]
        evidence = [order[1], event.seq]
        facts: dict[str, Any] = {
            "order_id": event.order_id,
            "side": order[2],
            "quantity": order[3],
            "price": order[4],
            "lived_secs": secs(lived),
            "threshold_secs": secs(threshold),
            "rule": self.config.spoofing_rule,
        }
        why = ""
        if not plain:
            evidence.append(order[8])
            facts["usual_quantity"] = order[7]
            facts["opposite_fill_seq"] = order[8]
            why = (
                f"; {decimal_text(Decimal(order[3]) / Decimal(order[7]))}x its usual size "
                f"{order[7]}, "
                f"while it traded on the other side (fill seq {order[8]})"
            )
        return [
            self.finding(
                event=event,
                key=self.partition(event) or "",
                anchor=order[1],
                evidence=evidence,
                detail=(
                    f"agent {event.agent_id} placed {order[2]} {order[3]} {event.market} "
                    f"@ {order[4]} (seq {order[1]}) and cancelled it unfilled after {secs(lived)}s "
                    f"(threshold {secs(threshold)}s, seq {event.seq}){why}"
                ),
                facts=facts,
            )
        ]

    def _large(self, state: dict[str, Any], quantity: Decimal) -> tuple[int, str | None]:
        """Whether `quantity` is large against the agent's recent orders here
        (their median); then the order joins them."""
        ordered = self._sorted(state)
        sizes: list[Decimal] = state["sizes"]
        large, usual = 0, None
        n = len(ordered)
        if n >= self.config.spoof_min_history:
            middle = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
            large = int(middle > 0 and quantity >= self.config.spoof_size_multiple * middle)
            usual = decimal_text(middle) if large else None
        sizes.append(quantity)
        insort(ordered, quantity)
        if len(sizes) > HISTORY:
            ordered.pop(bisect_left(ordered, sizes.pop(0)))
        return large, usual
