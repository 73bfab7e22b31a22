"""Layering: `layering_depth` or more resting orders of one agent stacked at
distinct price levels on one side of one market, within the surveillance
window (MAR Annex II 2(5)(c)). One alert when the stack reaches the depth; the
episode ends when the stack falls below it again."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .base import Detector, Finding, TradeEvent, dec

ZERO = Decimal(0)

# A resting order: order_id -> [ts, seq, side, price, quantity, filled]


class LayeringDetector(Detector):
    name = "layering"
    severity = "high"
    kinds = frozenset({"submit", "amend", "fill", "cancel"})

    def partition(self, event: TradeEvent) -> str | None:
        if event.market is None:
            return None
        return f"{event.agent_id}|{event.market}"

    def load_state(self, stored: dict[str, Any]) -> dict[str, Any]:
        # Oldest first (jsonb does not keep key order): pruning relies on it.
        resting = sorted(stored.get("open", {}).items(), key=lambda kv: (kv[1][0], kv[1][1]))
        return {
            "open": {
                k: [o[0], o[1], o[2], Decimal(o[3]), Decimal(o[4]), Decimal(o[5])]
                for k, o in resting
            },
            "episode": dict(stored.get("episode", {})),
        }

    def dump_state(self, state: dict[str, Any]) -> dict[str, Any]:
        return {
            "open": {
                k: [o[0], o[1], o[2], dec(o[3]), dec(o[4]), dec(o[5])]
                for k, o in state["open"].items()
            },
            "episode": state["episode"],
        }

    def feed(self, state: dict[str, Any], event: TradeEvent) -> list[Finding]:
        resting: dict[str, list[Any]] = state["open"]
        horizon = event.ts - self.config.window_us
        while resting:  # oldest first: the dict keeps submission order
            oldest = next(iter(resting))
            if resting[oldest][0] >= horizon:
                break
            del resting[oldest]  # the window slides on
        order_id = event.order_id or ""
        order = resting.get(order_id)
        if event.kind == "submit":
            if event.accepted:  # held orders do not rest until granted
                resting[order_id] = [
                    event.ts,
                    event.seq,
                    event.side,
                    event.price,
                    event.quantity,
                    ZERO,
                ]
        elif order is not None:
            if event.kind == "cancel":
                del resting[order_id]
            elif event.kind == "fill":
                order[5] += event.quantity or ZERO
                if order[5] >= order[4]:
                    del resting[order_id]
            elif event.kind == "amend":
                order[3] = event.price if event.price is not None else order[3]
                order[4] = event.quantity if event.quantity is not None else order[4]
        # An episode ends when its stack falls below the depth; only the side
        # this event added to can newly reach it.
        depth = self.config.layering_depth
        episodes: dict[str, int] = state["episode"]
        for held in list(episodes):
            if len({o[3] for o in resting.values() if o[2] == held}) < depth:
                del episodes[held]
        side = event.side
        if event.kind not in ("submit", "amend") or side is None or side in episodes:
            return []
        stack = [o for o in resting.values() if o[2] == side]
        levels = sorted({o[3] for o in stack})
        if len(levels) < depth:
            return []
        episodes[side] = event.seq
        shown = ", ".join(dec(p) for p in levels)
        return [
            self.finding(
                event=event,
                key=f"{self.partition(event)}|{side}",
                anchor=event.seq,
                evidence=[o[1] for o in stack],
                detail=(
                    f"agent {event.agent_id} has {len(stack)} resting {side} orders "
                    f"on {event.market} at {len(levels)} price levels ({shown}); "
                    f"layering depth {depth}"
                ),
                facts={
                    "side": side,
                    "orders": len(stack),
                    "levels": [dec(p) for p in levels],
                    "depth": depth,
                },
            )
        ]
