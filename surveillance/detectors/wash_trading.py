"""Wash trading: a buy and a sell fill in the same market by the same agent,
or by agents of the same owner (one beneficial owner on both sides), within
`wash_trade_threshold_secs` (MAR Annex I 1(a); FINRA 5210 .02 self-trades).

Critical. Repeats within the threshold of an alert are part of the same
episode and do not open a second alert."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .base import Detector, Finding, TradeEvent, dec, secs

# A remembered fill: [ts, seq, side, agent_id, quantity, price, order_seq]


class WashTradingDetector(Detector):
    name = "wash_trading"
    severity = "critical"
    kinds = frozenset({"fill"})

    def partition(self, event: TradeEvent) -> str | None:
        if event.market is None or event.side is None:
            return None  # a fill for an order the gate never saw
        return f"{event.owner}|{event.market}"

    def horizon_us(self) -> int:
        return self.config.wash_trade_threshold_us

    def feed(self, state: dict[str, Any], event: TradeEvent) -> list[Finding]:
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
        opposite = [f for f in fills if f[2] != side] if fills else []
        fills.append(
            [
                event.ts,
                event.seq,
                event.side,
                event.agent_id,
                dec(event.quantity or Decimal(0)),
                dec(event.price or Decimal(0)),
                event.order_seq,
            ]
        )
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
        return [
            self.finding(
                event=event,
                key=key,
                anchor=anchor,
                evidence=evidence,
                detail=(
                    f"{who} bought and sold {event.market} within {secs(span)}s "
                    f"(threshold {secs(threshold)}s): {described}"
                ),
                facts={
                    "owner": event.owner,
                    "agents": agents,
                    "fills": [leg[1] for leg in legs],
                    "span_secs": secs(span),
                    "threshold_secs": secs(threshold),
                },
            )
        ]
