"""The compliance config: field names and defaults (CONTRACT section 8), validation,
and its canonical hash. Money, quantities and ratios are decimal strings so the
config hashes exactly; `null` means no limit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import ROLE_ORDER
from compliance_client.jcs import canonicalize
from compliance_site.decimals import decimal_text
from compliance_site.exceptions import Invalid

# The market names the gate accepts (audit.event_types.MARKET).
MARKET_PATTERN = r"^[A-Za-z0-9._:/\-]+$"


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

# The ComplianceConfig reference's defaults. Only a new install starts from
# them: the first config version is stored (and recorded) when first needed,
# and a stored version is never rewritten, so an upgrade changes no version
# an existing install already has (see config_current).
DEFAULT_CONFIG: dict[str, Any] = {
    "enabled": True,
    "audit_enabled": True,
    "surveillance_enabled": True,
    "approval_enabled": False,
    "approval_threshold_notional": "5000",
    "approval_timeout_secs": 300,
    "retention_days": 2555,
    "surveillance_window_secs": 300,
    "wash_trade_threshold_secs": "5",
    "spoof_cancel_threshold_secs": "2",
    "layering_depth": 3,
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
        return decimal_text(value)
    return value


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "description": "a decimal: the cap in every market"},
            {
                "type": "object",
                "additionalProperties": {"type": "string", "nullable": True},
                "description": 'per market, "*" for the others',
            },
        ],
        "nullable": True,
    }
)
class PositionCapField(serializers.Field):
    """`max_position_per_market`: a number (every market), null (no cap), or a
    map `{market: cap, "*": default}` whose caps are numbers or null. A market
    missing from the map takes "*", or has no cap when there is no "*"."""

    default_error_messages = {
        "invalid": 'Expected a number, null or a map {"MARKET": cap, "*": default}.',
        "too_many": "At most 1000 markets.",
    }

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        cap = DecimalText(allow_null=True)
        if not isinstance(data, dict):
            return cap.run_validation(data)
        if len(data) > 1000:
            self.fail("too_many")
        market = serializers.RegexField(MARKET_PATTERN, max_length=64)
        out: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for key, value in data.items():
            try:
                name = key if key == "*" else market.run_validation(key)
                out[name] = DecimalText(allow_null=True).run_validation(value)
            except serializers.ValidationError as exc:
                errors[str(key)] = exc.detail
        if errors:
            raise serializers.ValidationError(errors)
        return out

    def to_representation(self, value: Any) -> Any:
        return value


class RegulatoryLimitsSerializer(serializers.Serializer):
    max_position_per_market = PositionCapField()
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


class DetectionSerializer(serializers.Serializer):
    """Optional: every field may be left out (its default applies)."""

    wash_trading_rule = serializers.ChoiceField(
        choices=["self_trade", "opposite_fills"], required=False
    )
    wash_trade_price_tolerance_pct = DecimalText(required=False, max_value=Decimal(100))
    wash_trade_min_overlap = DecimalText(required=False, max_value=Decimal(1))
    layering_rule = serializers.ChoiceField(
        choices=["stack_execute_cancel", "stack_depth"], required=False
    )
    layering_window_secs = serializers.IntegerField(min_value=1, max_value=86400, required=False)
    layering_imbalance_ratio = DecimalText(required=False, min_value=Decimal(1))
    spoofing_rule = serializers.ChoiceField(
        choices=["large_cancel_opposite", "quick_cancel"], required=False
    )
    spoof_size_multiple = DecimalText(required=False, min_value=Decimal(1))
    spoof_min_history = serializers.IntegerField(min_value=1, max_value=1000, required=False)


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
    # Decimal seconds (2.5 is two and a half seconds), stored as decimal strings.
    wash_trade_threshold_secs = DecimalText(max_value=Decimal(86400))
    spoof_cancel_threshold_secs = DecimalText(max_value=Decimal(86400))
    layering_depth = serializers.IntegerField(min_value=2)
    kill_switch_requires_role = serializers.ChoiceField(choices=ROLE_ORDER)
    regulatory_limits = RegulatoryLimitsSerializer()
    detection = DetectionSerializer(required=False)

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
        detection = self.initial_data.get("detection")
        if isinstance(detection, dict):
            extra = set(detection) - set(DetectionSerializer().fields)
            if extra:
                raise serializers.ValidationError(
                    {"detection": {k: "unknown field" for k in sorted(extra)}}
                )
        return attrs


AUDIT_REQUIRED = (
    "audit_enabled cannot be false: the audit log is what this product is. Every "
    "decision, change and event is a record, and the law requires them kept (SEC "
    "Rule 17a-4 for broker-dealers, MiFID II Article 16(6) and 25(1) of MiFIR); "
    "there is no mode that runs without it."
)


def config_validate(config: Any) -> dict[str, Any]:
    """The config as it will be stored (decimals as normalized strings), or
    Invalid (every way in gets the same refusal, because the service
    validates): `audit_required` for `audit_enabled: false`, else `invalid`
    with the serializer's errors per field."""
    if isinstance(config, dict) and config.get("audit_enabled") is False:
        raise Invalid("audit_required", AUDIT_REQUIRED)
    data = ComplianceConfigSerializer(data=config)
    if not data.is_valid():
        raise Invalid("invalid", data.errors)
    validated = plain(data.validated_data)
    if not validated["audit_enabled"]:  # "false" or 0, parsed
        raise Invalid("audit_required", AUDIT_REQUIRED)
    return validated


def seconds_us(value: Any) -> int:
    """Seconds from the config (an int in versions stored before thresholds took
    decimals, a decimal string since) in whole microseconds."""
    return int(Decimal(str(value)) * 1_000_000)


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _position_caps(value: Any) -> tuple[Decimal | None, dict[str, Decimal | None]]:
    """(default cap, per-market caps) from `max_position_per_market`."""
    if isinstance(value, dict):
        caps = {market: _dec(cap) for market, cap in value.items()}
        return caps.pop("*", None), caps
    return _dec(value), {}


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
    max_position_default: Decimal | None  # "*" of the map, or the single number
    max_position_markets: dict[str, Decimal | None]
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
        default_cap, market_caps = _position_caps(reg["max_position_per_market"])
        return cls(
            version=version,
            hash=digest,
            enabled=config["enabled"],
            approval_enabled=config["approval_enabled"],
            approval_threshold=_dec(config["approval_threshold_notional"]),
            approval_timeout_secs=config["approval_timeout_secs"],
            kill_switch_role=config["kill_switch_requires_role"],
            max_position_default=default_cap,
            max_position_markets=market_caps,
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

    def position_cap(self, market: str) -> Decimal | None:
        """The firm's position cap in `market` (None: no cap): its own entry of
        the map, else the "*" default (or the single number)."""
        if market in self.max_position_markets:
            return self.max_position_markets[market]
        return self.max_position_default
