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
        orders = {
            k: [o[0], o[1], o[2], Decimal(o[3]), Decimal(o[4]), Decimal(o[5])] for k, o in resting
        }
        # Orders per price level and side, kept in step with `open` (not stored).
        levels: dict[str, dict[Decimal, int]] = {"buy": {}, "sell": {}}
        for o in orders.values():
            side_levels = levels.setdefault(o[2], {})
            side_levels[o[3]] = side_levels.get(o[3], 0) + 1
        return {"open": orders, "levels": levels, "episode": dict(stored.get("episode", {}))}

    def dump_state(self, state: dict[str, Any]) -> dict[str, Any]:
        return {
            "open": {
                k: [o[0], o[1], o[2], dec(o[3]), dec(o[4]), dec(o[5])]
                for k, o in state["open"].items()
            },
            "episode": state["episode"],
        }

    @staticmethod
    def _leave(levels: dict[str, dict[Decimal, int]], order: list[Any]) -> None:
        side_levels = levels[order[2]]
        left = side_levels[order[3]] - 1
        if left:
            side_levels[order[3]] = left
        else:
            del side_levels[order[3]]

    @staticmethod
    def _join(levels: dict[str, dict[Decimal, int]], order: list[Any]) -> None:
        side_levels = levels.setdefault(order[2], {})
        side_levels[order[3]] = side_levels.get(order[3], 0) + 1

    def feed(self, state: dict[str, Any], event: TradeEvent) -> list[Finding]:
        resting: dict[str, list[Any]] = state["open"]
        levels: dict[str, dict[Decimal, int]] = state["levels"]
        horizon = event.ts - self.config.window_us
        # Oldest first: the dict keeps submission order. Most events find the
        # oldest order inside the window, so it is looked at once before looping.
        if resting and next(iter(resting.values()))[0] < horizon:
            while resting:
                oldest = next(iter(resting))
                if resting[oldest][0] >= horizon:
                    break
                self._leave(levels, resting.pop(oldest))  # the window slides on
        order_id = event.order_id or ""
        order = resting.get(order_id)
        kind = event.kind
        if kind == "submit":
            if event.accepted:  # held orders do not rest until granted
                order = [event.ts, event.seq, event.side, event.price, event.quantity, ZERO]
                resting[order_id] = order
                self._join(levels, order)
        elif order is not None:
            if kind == "cancel":
                self._leave(levels, resting.pop(order_id))
            elif kind == "fill":
                order[5] += event.quantity or ZERO
                if order[5] >= order[4]:
                    self._leave(levels, resting.pop(order_id))
            elif kind == "amend":
                if event.price is not None:
                    self._leave(levels, order)
                    order[3] = event.price
                    self._join(levels, order)
                if event.quantity is not None:
                    order[4] = event.quantity
        # An episode ends when its stack falls below the depth; only the side
        # this event added to can newly reach it.
        depth = self.config.layering_depth
        episodes: dict[str, int] = state["episode"]
        if episodes:
            for held in list(episodes):
                if len(levels.get(held, ())) < depth:
                    del episodes[held]
        side = event.side
        if (kind != "submit" and kind != "amend") or side is None or side in episodes:
            return []
        if len(levels.get(side, ())) < depth:
            return []
        stack = [o for o in resting.values() if o[2] == side]
        levels_seen = sorted(levels[side])
        episodes[side] = event.seq
        shown = ", ".join(dec(p) for p in levels_seen)
        return [
            self.finding(
                event=event,
                key=f"{self.partition(event)}|{side}",
                anchor=event.seq,
                evidence=[o[1] for o in stack],
                detail=(
                    f"agent {event.agent_id} has {len(stack)} resting {side} orders "
                    f"on {event.market} at {len(levels_seen)} price levels ({shown}); "
                    f"layering depth {depth}"
                ),
                facts={
                    "side": side,
                    "orders": len(stack),
                    "levels": [dec(p) for p in levels_seen],
                    "depth": depth,
                },
            )
        ]
