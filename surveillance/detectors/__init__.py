"""Surveillance detectors behind one interface (see base.Detector).

The cycle runs every class listed in DETECTORS that its config switches on."""

from __future__ import annotations

from .base import Detector, DetectorConfig, Finding, TradeEvent
from .concentration import ConcentrationDetector
from .gate_bypass import GateBypassDetector
from .layering import LayeringDetector
from .rapid_fire import RapidFireDetector
from .spoofing import SpoofingDetector
from .wash_trading import WashTradingDetector

DETECTORS: list[type[Detector]] = [
    WashTradingDetector,
    SpoofingDetector,
    LayeringDetector,
    RapidFireDetector,
    ConcentrationDetector,
    GateBypassDetector,
]
DETECTOR_NAMES: list[str] = [d.name for d in DETECTORS]


def detectors_for(config: DetectorConfig) -> list[Detector]:
    """The detectors this config switches on, in a fixed order."""
    return [d for d in (cls.from_config(config) for cls in DETECTORS) if d is not None]


__all__ = [
    "DETECTORS",
    "DETECTOR_NAMES",
    "Detector",
    "DetectorConfig",
    "Finding",
    "TradeEvent",
    "detectors_for",
]
