"""Wash trading: trading with oneself (MAR Annex I 1(a) and Annex II 1(a);
CFTC/CEA 4c(a); FINRA 5210 .02 self-trades).

The default rule (`wash_trading_rule: self_trade`), as surveillance vendors
run it: a buy and a sell fill in the same market by the same agent, or by
agents of the same owner (one beneficial owner on both sides), within
`wash_trade_threshold_secs`, at the same or nearly the same price (within
`wash_trade_price_tolerance_pct`), with overlapping quantity (the smaller leg
at least `wash_trade_min_overlap` of the larger) and no real change of
position (the owner's fills from the first leg to the second net out within
that overlap), where the two orders crossed each other: when the first leg
filled, the second leg's order rested on the other side at a price that
would trade with it (within the tolerance), so each could be the other's
counterparty. Buying at one's bid and selling at one's ask is a market
maker's spread, not a wash: the prices differ by the spread.

The seed's plain rule (`opposite_fills`) stays selectable: any buy and sell
fill of one owner in a market within the threshold.

Critical. Repeats within the threshold of an alert are part of the same
episode and do not open a second alert."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from compliance_site.decimals import decimal_text

from .base import Detector, Finding, TradeEvent, secs

ZERO = Decimal(0)

# A remembered fill: [ts, seq, side, agent_id, quantity, price, order_seq, crossing]
#   crossing: ids of the owner's opposite orders resting at a price that would
#   trade with this fill when it happened (self_trade rule).
# A resting order of the owner (self_trade rule): order_id -> [ts, side, price,
#   quantity, filled], Decimals in memory, decimal strings when stored


class WashTradingDetector(Detector):
    name = "wash_trading"
    severity = "critical"
    kinds = frozenset({"submit", "amend", "fill", "cancel", "venue_reject"})

    def partition(self, event: TradeEvent) -> str | None:
        if event.market is None or event.side is None:
            return None  # a fill for an order the gate never saw
        return f"{event.owner}|{event.market}"

    def load_state(self, stored: dict[str, Any]) -> dict[str, Any]:
        orders = stored.get("orders")
        if not orders:
            return stored
        # Oldest first (jsonb does not keep key order): pruning relies on it.
        ordered = sorted(orders.items(), key=lambda kv: kv[1][0])
        return {
            **stored,
            "orders": {
                k: [o[0], o[1], Decimal(o[2]), Decimal(o[3]), Decimal(o[4])] for k, o in ordered
            },
        }

    def dump_state(self, state: dict[str, Any]) -> dict[str, Any]:
        orders = state.get("orders")
        if not orders:
            return state
        return {
            **state,
            "orders": {
                k: [o[0], o[1], decimal_text(o[2]), decimal_text(o[3]), decimal_text(o[4])]
                for k, o in orders.items()
            },
        }

    def horizon_us(self) -> int:
        if self.config.wash_trading_rule == "opposite_fills":
            return self.config.wash_trade_threshold_us
        # resting orders are remembered for the window, like layering's
        return max(self.config.wash_trade_threshold_us, self.config.window_us)

    def _self_trade_legs(self, fills: list[list[Any]], event: TradeEvent) -> list[list[Any]]:
        """The earlier fill that makes a self-trade with this one, as a list."""
        quantity = event.quantity or Decimal(0)
        price = event.price or Decimal(0)
        tolerance = self.config.wash_price_tolerance
        overlap = self.config.wash_min_overlap
        signed = quantity if event.side == "buy" else -quantity
        # Walk back from the newest earlier fill, keeping the owner's net position
        # change from that fill up to this one.
        for index in range(len(fills) - 1, -1, -1):
            leg = fills[index]
            leg_qty = Decimal(leg[4])
            signed += leg_qty if leg[2] == "buy" else -leg_qty
            if leg[2] == event.side or event.order_id not in (leg[7] if len(leg) > 7 else ()):
                continue  # this fill's order was not resting across from that one
            leg_price = Decimal(leg[5])
            larger = max(leg_qty, quantity)
            if (
                abs(leg_price - price) <= tolerance * max(leg_price, price)
                and min(leg_qty, quantity) >= overlap * larger
                and abs(signed) <= (1 - overlap) * larger
            ):
                return [leg]
        return []

    def _crossing(self, state: dict[str, Any], event: TradeEvent) -> list[str]:
        """The owner's opposite orders resting at a price that would trade with this fill."""
        price = event.price or Decimal(0)
        slack = price * self.config.wash_price_tolerance
        out = []
        for order_id, order in state.get("orders", {}).items():
            if order[1] == event.side:
                continue
            rest = order[2]
            if (rest >= price - slack) if event.side == "sell" else (rest <= price + slack):
                out.append(order_id)
        return out

    def _track(self, state: dict[str, Any], event: TradeEvent) -> None:
        """Keep the owner's resting orders in this market (self_trade rule)."""
        orders: dict[str, list[Any]] = state.setdefault("orders", {})
        horizon = event.ts - self.config.window_us
        # Oldest first (load_state sorts them): most events look at one order here.
        while orders:
            oldest = next(iter(orders))
            if orders[oldest][0] >= horizon:
                break
            del orders[oldest]  # the window slides on
        order_id = event.order_id or ""
        if event.kind == "submit":
            if event.accepted:
                orders[order_id] = [
                    event.ts, event.side, event.price or ZERO, event.quantity or ZERO, ZERO,
                ]  # fmt: skip
            return
        order = orders.get(order_id)
        if order is None:
            return
        if event.kind == "cancel" or event.kind == "venue_reject":
            del orders[order_id]
        elif event.kind == "amend":
            if event.price is not None:
                order[2] = event.price
            if event.quantity is not None:
                order[3] = event.quantity
        elif event.kind == "fill":
            filled = order[4] + (event.quantity or ZERO)
            if filled >= order[3]:
                del orders[order_id]
            else:
                order[4] = filled

    def feed(self, state: dict[str, Any], event: TradeEvent) -> list[Finding]:
        plain = self.config.wash_trading_rule == "opposite_fills"
        if event.kind != "fill":
            if not plain:
                self._track(state, event)
            return []
        threshold = self.config.wash_trade_threshold_us
        fills: list[list[Any]] | None = state.get("fills")
        if fills is None:
            fills = state["fills"] = []
        start, floor = 0, event.ts - threshold
        while start < len(fills) and fills[start][0] < floor:  # oldest first
            start += 1
        if start:
            del fills[:start]
        side = event.side
        if plain:
            opposite = [f for f in fills if f[2] != side] if fills else []
        else:
            opposite = self._self_trade_legs(fills, event) if fills else []
        fills.append(
            [
                event.ts,
                event.seq,
                event.side,
                event.agent_id,
                decimal_text(event.quantity or Decimal(0)),
                decimal_text(event.price or Decimal(0)),
                event.order_seq,
                [] if plain else self._crossing(state, event),
            ]
        )
        if not plain:
            self._track(state, event)
        if not opposite:
            return []
        episode = state.get("episode")
        if episode is not None and event.ts <= episode[1]:
            episode[1] = event.ts + threshold  # the same episode goes on
            return []
        key = self.partition(event) or ""
        anchor = opposite[0][1]
        state["episode"] = [anchor, event.ts + threshold]
        legs = [*opposite, fills[-1]]
        evidence: list[int] = []
        for leg in legs:
            evidence.append(leg[1])
            if leg[6] is not None:
                evidence.append(leg[6])
        described = "; ".join(
            f"{leg[2]} {leg[4]} @ {leg[5]} by {leg[3]} (seq {leg[1]})" for leg in legs
        )
        agents = sorted({leg[3] for leg in legs})
        who = (
            f"agent {agents[0]}" if len(agents) == 1 else f"agents {', '.join(agents)} of one owner"
        )
        span = event.ts - opposite[0][0]
        how = (
            "bought and sold"
            if self.config.wash_trading_rule == "opposite_fills"
            else "traded with itself (opposite fills at the same price, no change of position)"
        )
        return [
            self.finding(
                event=event,
                key=key,
                anchor=anchor,
                evidence=evidence,
                detail=(
                    f"{who} {how} in {event.market} within {secs(span)}s "
                    f"(threshold {secs(threshold)}s): {described}"
                ),
                facts={
                    "owner": event.owner,
                    "agents": agents,
                    "fills": [leg[1] for leg in legs],
                    "span_secs": secs(span),
                    "threshold_secs": secs(threshold),
                    "rule": self.config.wash_trading_rule,
                },
            )
        ]
