"""Gate bypass: what a venue did that the gate never allowed (CONTRACT 12).

A fill or cancel for an order the gate never accepted (`unknown_order`; a
rejected, expired or still held order: `order_not_open`), a fill past the
order's quantity (`overfill`), or a fill while a kill switch covered the
agent or market (`kill_switch`) or in a restricted market
(`restricted_market`). The ingest projection notes each such record when it
stores it (only it knows the order's state at that seq); this detector makes
one critical alert per offending order out of those notes, with the reported
record and the order's gate decision as evidence. Later offences of an alerted
order are part of the same case (the fingerprint names the order)."""

from __future__ import annotations

from typing import Any

from .base import Detector, Finding, TradeEvent


class GateBypassDetector(Detector):
    name = "gate_bypass"
    severity = "critical"
    kinds = frozenset({"bypass"})

    def partition(self, event: TradeEvent) -> str | None:
        return f"{event.agent_id}|{event.order_id}"

    def horizon_us(self) -> int:
        # One alert per order, ever: the fingerprint refuses a second one, the
        # state only spares the cycle from rebuilding findings it already made.
        return self.config.window_us

    def feed(self, state: dict[str, Any], event: TradeEvent) -> list[Finding]:
        note = event.note or {}
        reasons: list[str] = list(note.get("reasons", []))
        if state.get("alerted"):
            return []
        state["alerted"] = True
        evidence = [event.seq]
        if event.order_seq is not None:
            evidence.append(event.order_seq)
        return [
            self.finding(
                event=event,
                key=self.partition(event) or "",
                anchor=event.order_seq if event.order_seq is not None else 0,
                evidence=evidence,
                detail=(
                    f"agent {event.agent_id}: {note.get('detail', '')} "
                    f"(order {event.order_id}; reasons: {', '.join(reasons)})"
                ),
                facts={
                    "order_id": event.order_id,
                    "reasons": reasons,
                    "event_type": note.get("event_type"),
                    "record_seq": event.seq,
                },
            )
        ]
