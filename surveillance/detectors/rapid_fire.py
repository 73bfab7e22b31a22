"""Rapid-fire: more orders from one agent in any 60 seconds than
`regulatory_limits.max_orders_per_minute` (orders the gate refused count too:
the attempt is the behaviour). One alert per burst; a burst ends after a
minute back under the limit."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .base import MINUTE_US, Detector, DetectorConfig, Finding, TradeEvent

# A remembered order: [ts, seq, market]


class RapidFireDetector(Detector):
    name = "rapid_fire"
    severity = "medium"
    kinds = frozenset({"submit", "reject"})

    @classmethod
    def from_config(cls, config: DetectorConfig) -> Detector | None:
        return None if config.max_orders_per_minute is None else cls(config)

    def partition(self, event: TradeEvent) -> str | None:
        return event.agent_id

    def horizon_us(self) -> int:
        return MINUTE_US

    def feed(self, state: dict[str, Any], event: TradeEvent) -> list[Finding]:
        limit = self.config.max_orders_per_minute or 0
        recent: list[list[Any]] | None = state.get("recent")
        if recent is None:
            recent = state["recent"] = []
        start = 0
        floor = event.ts - MINUTE_US
        while start < len(recent) and recent[start][0] <= floor:
            start += 1
        if start:
            del recent[:start]  # in place: the minute slides on
        recent.append([event.ts, event.seq, event.market])
        if len(recent) <= limit:
            return []
        episode = state.get("episode")
        if episode is not None and event.ts <= episode[1]:
            episode[1] = event.ts + MINUTE_US
            return []
        anchor = recent[0][1]
        state["episode"] = [anchor, event.ts + MINUTE_US]
        markets = Counter(r[2] for r in recent)
        market = markets.most_common(1)[0][0] if len(markets) == 1 else ""
        return [
            self.finding(
                event=event,
                key=event.agent_id,
                anchor=anchor,
                evidence=[r[1] for r in recent],
                market=market,
                detail=(
                    f"agent {event.agent_id} sent {len(recent)} orders within 60s "
                    f"(limit {limit} per minute) in {', '.join(sorted(markets))}"
                ),
                facts={"orders_in_minute": len(recent), "limit": limit, "markets": sorted(markets)},
            )
        ]
