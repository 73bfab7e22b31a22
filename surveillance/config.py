"""The compliance config: field names and defaults (CONTRACT section 8), validation,
and its canonical hash. Money, quantities and ratios are decimal strings so the
config hashes exactly; `null` means no limit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rest_framework import serializers

from accounts.models import ROLE_ORDER
from compliance_client.jcs import canonicalize

DEFAULT_REGULATORY_LIMITS: dict[str, Any] = {
    "max_position_per_market": None,
    "max_total_notional": None,
    "max_concentration_pct": "25",
    "restricted_markets": [],
    "max_daily_volume": None,
    "max_orders_per_minute": 120,
    "max_cancel_ratio": "0.95",
    "cancel_ratio_min_orders": 20,
    "price_collar_pct": None,
    "max_order_quantity": None,
    "max_order_notional": None,
    "duplicate_window_secs": 1,
    "portfolio_capital": "1000000",
}

DEFAULT_CONFIG: dict[str, Any] = {
    "enabled": True,
    "audit_enabled": True,
    "surveillance_enabled": True,
    "approval_enabled": True,
    "approval_threshold_notional": "5000",
    "approval_timeout_secs": 300,
    "retention_days": 2555,
    "surveillance_window_secs": 3600,
    "wash_trade_threshold_secs": 60,
    "spoof_cancel_threshold_secs": 5,
    "layering_depth": 5,
    "kill_switch_requires_role": "risk_manager",
    "regulatory_limits": DEFAULT_REGULATORY_LIMITS,
}


def market_key(market: str) -> str:
    """Market ids are normalized at the door (upper case): "btc-usd" and "BTC-USD"
    are one market for orders, positions, restrictions, kill switches and the
    detectors. The signed envelope keeps what the bot wrote."""
    return market.upper()


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(canonicalize(config)).hexdigest()


class DecimalText(serializers.DecimalField):
    """Accepts a decimal string or a JSON number (floats via their shortest repr);
    `plain()` turns the validated Decimals into normalized decimal strings."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("max_digits", 30)
        kwargs.setdefault("decimal_places", 12)
        kwargs.setdefault("min_value", Decimal(0))
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, float):
            data = repr(data)
        return super().to_internal_value(data)


def plain(value: Any) -> Any:
    """Validated data as JSON for the config: Decimals become decimal strings."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text
    return value


class RegulatoryLimitsSerializer(serializers.Serializer):
    max_position_per_market = DecimalText(allow_null=True)
    max_total_notional = DecimalText(allow_null=True)
    max_concentration_pct = DecimalText(allow_null=True, max_value=Decimal(100))
    restricted_markets = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=1000
    )
    max_daily_volume = DecimalText(allow_null=True)
    max_orders_per_minute = serializers.IntegerField(allow_null=True, min_value=1)
    max_cancel_ratio = DecimalText(allow_null=True, max_value=Decimal(1))
    cancel_ratio_min_orders = serializers.IntegerField(min_value=1)
    price_collar_pct = DecimalText(allow_null=True)
    max_order_quantity = DecimalText(allow_null=True)
    max_order_notional = DecimalText(allow_null=True)
    duplicate_window_secs = serializers.IntegerField(min_value=0, max_value=86400)
    portfolio_capital = DecimalText()


class ComplianceConfigSerializer(serializers.Serializer):
    """The whole config; PUT must send every field (partial updates would make the
    four-eyes review of a change ambiguous)."""

    enabled = serializers.BooleanField()
    audit_enabled = serializers.BooleanField()
    surveillance_enabled = serializers.BooleanField()
    approval_enabled = serializers.BooleanField()
    approval_threshold_notional = DecimalText(allow_null=True)
    approval_timeout_secs = serializers.IntegerField(min_value=5, max_value=7 * 86400)
    retention_days = serializers.IntegerField(min_value=1, max_value=100 * 365)
    surveillance_window_secs = serializers.IntegerField(min_value=1, max_value=30 * 86400)
    wash_trade_threshold_secs = serializers.IntegerField(min_value=0)
    spoof_cancel_threshold_secs = serializers.IntegerField(min_value=0)
    layering_depth = serializers.IntegerField(min_value=2)
    kill_switch_requires_role = serializers.ChoiceField(choices=ROLE_ORDER)
    regulatory_limits = RegulatoryLimitsSerializer()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError({k: "unknown field" for k in sorted(unknown)})
        limits = self.initial_data.get("regulatory_limits")
        if isinstance(limits, dict):
            extra = set(limits) - set(RegulatoryLimitsSerializer().fields)
            if extra:
                raise serializers.ValidationError(
                    {"regulatory_limits": {k: "unknown field" for k in sorted(extra)}}
                )
        return attrs


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


@dataclass(frozen=True)
class Limits:
    """A config version parsed once for the gate's hot path."""

    version: int
    hash: str
    enabled: bool
    approval_enabled: bool
    approval_threshold: Decimal | None
    approval_timeout_secs: int
    kill_switch_role: str
    max_position_per_market: Decimal | None
    max_total_notional: Decimal | None
    max_concentration: Decimal | None  # as a fraction
    restricted_markets: frozenset[str]
    max_daily_volume: Decimal | None
    max_orders_per_minute: int | None
    max_cancel_ratio: Decimal | None
    cancel_ratio_min_orders: int
    price_collar: Decimal | None  # as a fraction
    max_order_quantity: Decimal | None
    max_order_notional: Decimal | None
    duplicate_window_us: int
    portfolio_capital: Decimal
    raw: dict[str, Any]

    @classmethod
    def parse(cls, version: int, digest: str, config: dict[str, Any]) -> Limits:
        reg = config["regulatory_limits"]
        pct = _dec(reg["max_concentration_pct"])
        collar = _dec(reg["price_collar_pct"])
        return cls(
            version=version,
            hash=digest,
            enabled=config["enabled"],
            approval_enabled=config["approval_enabled"],
            approval_threshold=_dec(config["approval_threshold_notional"]),
            approval_timeout_secs=config["approval_timeout_secs"],
            kill_switch_role=config["kill_switch_requires_role"],
            max_position_per_market=_dec(reg["max_position_per_market"]),
            max_total_notional=_dec(reg["max_total_notional"]),
            max_concentration=None if pct is None else pct / 100,
            restricted_markets=frozenset(market_key(m) for m in reg["restricted_markets"]),
            max_daily_volume=_dec(reg["max_daily_volume"]),
            max_orders_per_minute=reg["max_orders_per_minute"],
            max_cancel_ratio=_dec(reg["max_cancel_ratio"]),
            cancel_ratio_min_orders=reg["cancel_ratio_min_orders"],
            price_collar=None if collar is None else collar / 100,
            max_order_quantity=_dec(reg["max_order_quantity"]),
            max_order_notional=_dec(reg["max_order_notional"]),
            duplicate_window_us=reg["duplicate_window_secs"] * 1_000_000,
            portfolio_capital=Decimal(reg["portfolio_capital"]),
            raw=config,
        )
