"""Layering (MAR Annex II 2(5)(c) and 5(e); FINRA 5210 .03; ESMA's layering
indicators).

The default rule (`layering_rule: stack_execute_cancel`), as surveillance
vendors run it: resting orders of one agent stacked at `layering_depth` or
more price levels on one side of a market (placed within
`layering_window_secs`, and outweighing the agent's own orders on the other
side by `layering_imbalance_ratio`), then an execution of the agent on the
opposite side, then the stack cancelled (at least half of its orders, and
two) within `layering_window_secs` of the execution. A market maker quotes
several levels on both sides, balanced: its stacks never outweigh the other
side, so its fills and requotes are not layering.

The seed's plain rule (`stack_depth`) stays selectable: one alert when a
one-sided stack reaches the depth; the episode ends when the stack falls
below it again."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from compliance_site.decimals import decimal_text

from .base import Detector, Finding, TradeEvent

ZERO = Decimal(0)

# A resting order: order_id -> [ts, seq, side, price, quantity, filled]


class LayeringDetector(Detector):
    name = "layering"
    severity = "high"
    kinds = frozenset({"submit", "amend", "fill", "cancel", "venue_reject"})

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
        return {
            "open": orders,
            "levels": levels,
            "episode": dict(stored.get("episode", {})),
            "stacks": dict(stored.get("stacks", {})),
        }

    def dump_state(self, state: dict[str, Any]) -> dict[str, Any]:
        return {
            "open": {
                k: [o[0], o[1], o[2], decimal_text(o[3]), decimal_text(o[4]), decimal_text(o[5])]
                for k, o in state["open"].items()
            },
            "episode": state["episode"],
            "stacks": state["stacks"],
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
            if kind == "cancel" or kind == "venue_reject":
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
        if self.config.layering_rule != "stack_depth":
            return self._stack_execute_cancel(state, event, order)
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
        shown = ", ".join(decimal_text(p) for p in levels_seen)
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
                    "levels": [decimal_text(p) for p in levels_seen],
                    "depth": depth,
                },
            )
        ]

    # --- the vendor rule: stack, opposite execution, stack cancelled --------------------

    def _stack_execute_cancel(
        self, state: dict[str, Any], event: TradeEvent, order: list[Any] | None
    ) -> list[Finding]:
        """`order` is the event's order as it rested before the event (None if
        it was not resting). A candidate stack is opened by an execution on the
        other side, and alerts when enough of it is cancelled in time."""
        stacks: dict[str, dict[str, Any]] = state["stacks"]
        for side in [s for s, c in stacks.items() if c["deadline"] < event.ts]:
            del stacks[side]  # the stack outlived the window: not this pattern
        if event.kind == "fill" and event.side is not None:
            stack_side = "sell" if event.side == "buy" else "buy"
            if stack_side not in stacks:
                self._open_candidate(state, event, stack_side)
            return []
        if event.kind != "cancel" or order is None:
            return []
        candidate = stacks.get(order[2])
        if candidate is None or event.order_id not in candidate["orders"]:
            return []
        candidate["cancels"].append(event.seq)
        size = len(candidate["orders"])
        if len(candidate["cancels"]) < max(2, (size + 1) // 2):
            return []
        del stacks[order[2]]
        side = order[2]
        evidence = [*candidate["seqs"], *candidate["execution"], *candidate["cancels"]]
        return [
            self.finding(
                event=event,
                key=f"{self.partition(event)}|{side}",
                anchor=candidate["execution"][0],
                evidence=[seq for seq in evidence if seq is not None],
                detail=(
                    f"agent {event.agent_id} stacked {size} {side} orders on {event.market} at "
                    f"{len(candidate['levels'])} price levels ({', '.join(candidate['levels'])}), "
                    f"traded on the other side (seq {candidate['execution'][0]}), then cancelled "
                    f"{len(candidate['cancels'])} of them within "
                    f"{self.config.layering_window_us // 1_000_000}s"
                ),
                facts={
                    "side": side,
                    "orders": size,
                    "levels": candidate["levels"],
                    "depth": self.config.layering_depth,
                    "execution_seq": candidate["execution"][0],
                    "cancelled": len(candidate["cancels"]),
                    "rule": self.config.layering_rule,
                },
            )
        ]

    def _open_candidate(self, state: dict[str, Any], event: TradeEvent, side: str) -> None:
        if len(state["levels"].get(side, ())) < self.config.layering_depth:
            return  # not even the resting orders make a stack (most fills stop here)
        resting: dict[str, list[Any]] = state["open"]
        since = event.ts - self.config.layering_window_us
        stack = {k: o for k, o in resting.items() if o[2] == side and o[5] == 0 and o[0] >= since}
        levels = sorted({o[3] for o in stack.values()})
        if len(levels) < self.config.layering_depth:
            return
        weight = sum((o[4] for o in stack.values()), ZERO)
        other = sum((o[4] - o[5] for o in resting.values() if o[2] == event.side), ZERO)
        if weight < self.config.layering_imbalance_ratio * (other + (event.quantity or ZERO)):
            return  # balanced quoting: a market maker's book
        state["stacks"][side] = {
            "orders": sorted(stack),
            "seqs": sorted(o[1] for o in stack.values()),
            "levels": [decimal_text(p) for p in levels],
            "execution": [event.seq, event.order_seq],
            "deadline": event.ts + self.config.layering_window_us,
            "cancels": [],
        }
