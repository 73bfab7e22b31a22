"""Event types and their versioned JSON Schemas.

A schema version may add optional properties, never remove or rename required
ones (tests/audit/test_event_types.py checks this for every type). Money and
quantities are decimal strings so that no float ever enters a hash.

`bot` types may be reported by agents on POST /api/v1/events/; `gate` types
arrive only through the pre-trade gate; everything else is written by the
server itself and refused from bots with `server_only_event_type`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DECIMAL = {
    "type": "string",
    "pattern": r"^-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,12})?$",
    "maxLength": 32,
}
POSITIVE_DECIMAL = {
    "type": "string",
    "pattern": r"^(0|[1-9][0-9]{0,17})(\.[0-9]{1,12})?$",
    "maxLength": 32,
}
ID = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": r"^[A-Za-z0-9._:\-]+$"}
TEXT = {"type": "string", "maxLength": 4000}
MARKET = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[A-Za-z0-9._:/\-]+$"}
INT = {"type": "integer", "minimum": -(2**53 - 1), "maximum": 2**53 - 1}
SEQ = {"type": "integer", "minimum": 0, "maximum": 2**53 - 1}
# The five roles (accounts.models.Role), lowest first.
ROLES = ["viewer", "trader", "risk_manager", "compliance_officer", "admin"]


def obj(
    required: dict[str, Any], optional: dict[str, Any] | None = None, *, closed: bool = True
) -> dict[str, Any]:
    props = {**required, **(optional or {})}
    return {
        "type": "object",
        "properties": props,
        "required": sorted(required),
        "additionalProperties": not closed,
    }


class Channel:
    BOT = "bot"
    GATE = "gate"
    SERVER = "server"


@dataclass(frozen=True)
class EventTypeSpec:
    name: str
    channel: str
    versions: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def latest(self) -> int:
        return max(self.versions)


ORDER_PAYLOAD = obj(
    {
        "order_id": ID,
        "market": MARKET,
        "side": {"enum": ["buy", "sell"]},
        "quantity": POSITIVE_DECIMAL,
        "price": POSITIVE_DECIMAL,
        "order_type": {"enum": ["limit", "market", "stop", "stop_limit"]},
    },
    {"venue": {"type": "string", "maxLength": 64}},
)
# v2: a market order's price is not trusted; the bot may name the price it
# expects (`reference_price`) for the gate to value the order at.
ORDER_PAYLOAD_V2 = {
    **ORDER_PAYLOAD,
    "properties": {**ORDER_PAYLOAD["properties"], "reference_price": POSITIVE_DECIMAL},
}

SIDE = {"enum": ["buy", "sell"]}
FILL_REQUIRED = {
    "order_id": ID,
    "fill_id": ID,
    "quantity": POSITIVE_DECIMAL,
    "price": POSITIVE_DECIMAL,
}
FILL_OPTIONAL = {"venue": {"type": "string", "maxLength": 64}, "fee": DECIMAL}

_SPECS: list[EventTypeSpec] = [
    # Through the gate.
    EventTypeSpec("ORDER_SUBMITTED", Channel.GATE, {1: ORDER_PAYLOAD, 2: ORDER_PAYLOAD_V2}),
    EventTypeSpec(
        "ORDER_AMENDED",
        Channel.GATE,
        {1: obj({"order_id": ID}, {"quantity": POSITIVE_DECIMAL, "price": POSITIVE_DECIMAL})},
    ),
    # Reported by bots.
    EventTypeSpec(
        "ORDER_FILLED",
        Channel.BOT,
        {
            1: obj(FILL_REQUIRED, FILL_OPTIONAL),
            # v2: a fill for an order the gate never saw names its own market and
            # side, so the position still follows it (evidence of a gate bypass).
            2: obj(FILL_REQUIRED, {**FILL_OPTIONAL, "market": MARKET, "side": SIDE}),
        },
    ),
    EventTypeSpec("ORDER_CANCELED", Channel.BOT, {1: obj({"order_id": ID, "reason": TEXT})}),
    # The venue refused an order the gate had accepted (RTS 25 / MiFID II keep
    # refusals too): the order becomes rejected and its reserved exposure is released.
    EventTypeSpec(
        "VENUE_REJECTED",
        Channel.BOT,
        {
            1: obj(
                {"order_id": ID, "reason": TEXT},
                {
                    "venue": {"type": "string", "maxLength": 64},
                    "venue_code": {"type": "string", "maxLength": 64},
                },
            )
        },
    ),
    EventTypeSpec(
        "POSITION_CHANGED",
        Channel.BOT,
        {1: obj({"market": MARKET, "quantity": DECIMAL, "price": POSITIVE_DECIMAL})},
    ),
    EventTypeSpec(
        "SYSTEM_ERROR",
        Channel.BOT,
        {
            1: obj(
                {
                    "error_type": {"type": "string", "minLength": 1, "maxLength": 128},
                    "message": TEXT,
                }
            )
        },
    ),
    # Written by the server.
    EventTypeSpec("ORDER_REJECTED", Channel.SERVER, {1: obj({}, closed=False)}),
    EventTypeSpec(
        "LIMIT_BREACH",
        Channel.SERVER,
        {1: obj({"code": ID, "limit": {}, "value": {}}, closed=False)},
    ),
    EventTypeSpec(
        "KILL_SWITCH_ACTIVATED",
        Channel.SERVER,
        {1: obj({"scope": {"enum": ["global", "agent", "market"]}, "reason": TEXT}, closed=False)},
    ),
    EventTypeSpec(
        "KILL_SWITCH_DEACTIVATED",
        Channel.SERVER,
        {1: obj({"scope": {"enum": ["global", "agent", "market"]}, "reason": TEXT}, closed=False)},
    ),
    EventTypeSpec(
        "APPROVAL_REQUESTED", Channel.SERVER, {1: obj({"approval_id": {}}, closed=False)}
    ),
    EventTypeSpec("APPROVAL_GRANTED", Channel.SERVER, {1: obj({"approval_id": {}}, closed=False)}),
    EventTypeSpec("APPROVAL_DENIED", Channel.SERVER, {1: obj({"approval_id": {}}, closed=False)}),
    EventTypeSpec("APPROVAL_EXPIRED", Channel.SERVER, {1: obj({"approval_id": {}}, closed=False)}),
    EventTypeSpec(
        "CONFIG_CHANGED",
        Channel.SERVER,
        {
            1: obj(
                {"version": INT, "hash": {"type": "string"}, "config": {"type": "object"}},
                closed=False,
            )
        },
    ),
    EventTypeSpec(
        "RISK_LIMITS_CHANGED",
        Channel.SERVER,
        {
            1: obj(
                {"agent_id": ID, "limits": {"type": "object"}, "hash": {"type": "string"}},
                closed=False,
            )
        },
    ),
    EventTypeSpec("SURVEILLANCE_ALERT", Channel.SERVER, {1: obj({"detector": ID}, closed=False)}),
    EventTypeSpec(
        "REPORT_GENERATED", Channel.SERVER, {1: obj({"sha256": {"type": "string"}}, closed=False)}
    ),
    EventTypeSpec(
        "DATA_PURGED",
        Channel.SERVER,
        {1: obj({"from_seq": SEQ, "to_seq": SEQ, "count": SEQ}, closed=False)},
    ),
    EventTypeSpec(
        "AUDIT_VERIFIED",
        Channel.SERVER,
        {1: obj({"ok": {"type": "boolean"}, "checked": SEQ}, closed=False)},
    ),
    EventTypeSpec("ALERT_UPDATED", Channel.SERVER, {1: obj({"alert_id": {}}, closed=False)}),
    EventTypeSpec("LEGAL_HOLD_PLACED", Channel.SERVER, {1: obj({"hold_id": {}}, closed=False)}),
    EventTypeSpec("LEGAL_HOLD_RELEASED", Channel.SERVER, {1: obj({"hold_id": {}}, closed=False)}),
    EventTypeSpec(
        "AGENT_REGISTERED",
        Channel.SERVER,
        {1: obj({"agent_id": ID, "key_id": ID, "public_key": {"type": "string"}}, closed=False)},
    ),
    EventTypeSpec(
        "AGENT_KEY_ADDED",
        Channel.SERVER,
        {1: obj({"agent_id": ID, "key_id": ID, "public_key": {"type": "string"}}, closed=False)},
    ),
    EventTypeSpec(
        "AGENT_STATUS_CHANGED",
        Channel.SERVER,
        {
            1: obj(
                {"agent_id": ID, "status": {"enum": ["active", "suspended"]}, "reason": TEXT},
                closed=False,
            )
        },
    ),
    EventTypeSpec(
        "AGENT_KEY_REVOKED",
        Channel.SERVER,
        {1: obj({"agent_id": ID, "key_id": ID}, closed=False)},
    ),
    # Where reports are emailed is evidence too: subscriptions made and ended.
    EventTypeSpec(
        "REPORT_SUBSCRIPTION_CHANGED",
        Channel.SERVER,
        {
            1: obj(
                {
                    "subscription_id": INT,
                    "action": {"enum": ["created", "deactivated"]},
                    "kind": {"type": "string"},
                    "format": {"type": "string"},
                    "recipients": {"type": "array", "items": {"type": "string"}},
                },
                closed=False,
            )
        },
    ),
    # Who holds which role is the most sensitive control there is: every
    # creation, role change, (de)activation and flag change (CONTRACT 12).
    EventTypeSpec(
        "USER_ROLE_CHANGED",
        Channel.SERVER,
        {
            1: obj(
                {
                    "username": {"type": "string", "minLength": 1, "maxLength": 150},
                    "role_from": {"enum": [*ROLES, None]},
                    "role_to": {"enum": [*ROLES, None]},
                    "reason": TEXT,
                },
                closed=False,
            )
        },
    ),
    # Who may vouch for the log from outside: registering and revoking a witness key.
    EventTypeSpec(
        "WITNESS_CHANGED",
        Channel.SERVER,
        {
            1: obj(
                {
                    "name": {"type": "string", "minLength": 1, "maxLength": 200},
                    "action": {"enum": ["registered", "revoked"]},
                    "public_key": {"type": "string"},
                },
                closed=False,
            )
        },
    ),
    # A person asked that an open order of an agent they act for be canceled;
    # only the bot can cancel on the venue (CONTRACT 12).
    EventTypeSpec(
        "CANCEL_REQUESTED",
        Channel.SERVER,
        {1: obj({"order_id": ID, "agent_id": ID, "reason": TEXT}, closed=False)},
    ),
    # Where notices leave the firm is itself evidence: registering, enabling and
    # (automatic) disabling of a webhook receiver.
    EventTypeSpec(
        "WEBHOOK_CHANGED",
        Channel.SERVER,
        {
            1: obj(
                {
                    "endpoint_id": INT,
                    "action": {"enum": ["registered", "enabled", "disabled"]},
                    "url": {"type": "string"},
                    "event_types": {"type": "array", "items": {"type": "string"}},
                    "reason": {"type": "string"},
                },
                closed=False,
            )
        },
    ),
]

CORE_TYPES: dict[str, EventTypeSpec] = {spec.name: spec for spec in _SPECS}
CUSTOM_TYPE_NAME = r"^[A-Z][A-Z0-9_]{2,63}$"
