"""Surveillance's models, re-exported here: other code imports them from
`surveillance.models`, never from the submodules.

- trading: the versioned compliance config, risk limits and exposures, orders,
  fills, gate bypasses and kill switches;
- alerts: alerts and their case log, the cycle's cursor, detector state."""

from .alerts import Alert, AlertLogEntry, DetectorState, SurveillanceCursor
from .trading import (
    AgentMarketRisk,
    AgentOrderCount,
    AgentRiskLimit,
    ComplianceConfigVersion,
    Fill,
    FirmExposure,
    FirmRisk,
    GateBypass,
    KillSwitch,
    MarketRisk,
    Order,
    quantity_field,
)

__all__ = [
    "AgentMarketRisk",
    "AgentOrderCount",
    "AgentRiskLimit",
    "Alert",
    "AlertLogEntry",
    "ComplianceConfigVersion",
    "DetectorState",
    "Fill",
    "FirmExposure",
    "FirmRisk",
    "GateBypass",
    "KillSwitch",
    "MarketRisk",
    "Order",
    "SurveillanceCursor",
    "quantity_field",
]
