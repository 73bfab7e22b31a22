"""Concentration: the firm's exposure in one market above
`max_concentration_pct` of the portfolio, where the portfolio is
max(gross exposure, `portfolio_capital`) as in the gate's check (CONTRACT 8).

The gate refuses orders that would breach it; positions still drift past it
through fills, reported positions and price moves, which is what this
watches. Exposure is |net firm position| x last fill or reported price. One
alert when a market goes above the limit; the episode ends when it is back
under."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from compliance_site.decimals import decimal_text

from .base import FOREVER_US, Detector, DetectorConfig, Finding, TradeEvent

RECENT = 20  # evidence: the last records that moved a market's position
ZERO = Decimal(0)


class ConcentrationDetector(Detector):
    name = "concentration"
    severity = "high"
    kinds = frozenset({"fill", "position"})

    @classmethod
    def from_config(cls, config: DetectorConfig) -> Detector | None:
        return None if config.max_concentration is None else cls(config)

    def partition(self, event: TradeEvent) -> str | None:
        return "firm" if event.market is not None else None

    def horizon_us(self) -> int:
        return FOREVER_US  # positions do not age out of the window

    def load_state(self, stored: dict[str, Any]) -> dict[str, Any]:
        markets = {}
        for market, m in stored.get("markets", {}).items():
            markets[market] = {
                "agents": {a: Decimal(q) for a, q in m["agents"].items()},
                "net": Decimal(m["net"]),
                "price": Decimal(m["price"]),
                "recent": list(m["recent"]),
                "over": m.get("over"),
            }
        state: dict[str, Any] = {"markets": markets}
        state["gross"] = sum((abs(m["net"]) * m["price"] for m in markets.values()), ZERO)
        return state

    def dump_state(self, state: dict[str, Any]) -> dict[str, Any]:
        return {
            "markets": {
                market: {
                    "agents": {a: decimal_text(q) for a, q in m["agents"].items()},
                    "net": decimal_text(m["net"]),
                    "price": decimal_text(m["price"]),
                    "recent": m["recent"],
                    "over": m["over"],
                }
                for market, m in state["markets"].items()
            }
        }

    def feed(self, state: dict[str, Any], event: TradeEvent) -> list[Finding]:
        markets: dict[str, dict[str, Any]] = state["markets"]
        market = event.market or ""
        m = markets.get(market)
        if m is None:
            m = markets[market] = {
                "agents": {},
                "net": ZERO,
                "price": ZERO,
                "recent": [],
                "over": None,
            }
        before = abs(m["net"]) * m["price"]
        held = m["agents"].get(event.agent_id, ZERO)
        if event.kind == "fill":
            qty = event.quantity or ZERO
            now = held + qty if event.side == "buy" else held - qty
        else:  # a reported absolute position
            now = event.quantity if event.quantity is not None else held
        m["agents"][event.agent_id] = now
        m["net"] += now - held
        if event.price:
            m["price"] = event.price
        recent = m["recent"]  # its own list (load_state copies it): trimmed in place
        recent.append(event.seq)
        if len(recent) > RECENT:
            del recent[:-RECENT]
        after = abs(m["net"]) * m["price"]
        gross_before = state["gross"]
        state["gross"] = gross_before - before + after
        capital = self.config.portfolio_capital
        # Other markets' shares rise only when the portfolio shrinks while it is
        # above the capital (the denominator is max(gross, capital)); otherwise
        # only this market can newly cross the limit.
        shrank = state["gross"] < gross_before and gross_before > capital
        if not shrank:
            found = self._check(state, market, event)
            return [] if found is None else [found]
        names = sorted(markets, key=lambda name: (name != market, name))  # the event's market first
        return [f for f in (self._check(state, name, event) for name in names) if f is not None]

    def _check(self, state: dict[str, Any], market: str, event: TradeEvent) -> Finding | None:
        m = state["markets"][market]
        limit = self.config.max_concentration or ZERO
        exposure = abs(m["net"]) * m["price"]
        base = max(state["gross"], self.config.portfolio_capital)
        share = exposure / base if base else ZERO
        if share <= limit:
            m["over"] = None
            return None
        if m["over"] is not None:
            return None
        m["over"] = event.seq
        pct = (share * 100).quantize(Decimal("0.01"))
        return self.finding(
            event=event,
            key=market,
            anchor=event.seq,
            evidence=[*m["recent"], event.seq],
            market=market,
            detail=(
                f"{market} is {decimal_text(pct)}% of the portfolio "
                f"(exposure {decimal_text(exposure)} over "
                f"max(gross {decimal_text(state['gross'])}, "
                f"capital {decimal_text(self.config.portfolio_capital)})); "
                f"limit {decimal_text(limit * 100)}%"
            ),
            facts={
                "share_pct": decimal_text(pct),
                "limit_pct": decimal_text(limit * 100),
                "exposure": decimal_text(exposure),
                "gross_exposure": decimal_text(state["gross"]),
                "portfolio_capital": decimal_text(self.config.portfolio_capital),
                "net_position": decimal_text(m["net"]),
                "price": decimal_text(m["price"]),
            },
        )
