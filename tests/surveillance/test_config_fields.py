"""Every field of the config (ComplianceConfig and RegulatoryLimitConfig) does
what the README's table says, or is refused. Fields whose effect is tested
elsewhere, one test each:

- kill_switch_requires_role: test_gate.py::test_kill_switch_needs_configured_role
- surveillance_enabled: test_detectors.py::test_run_surveillance_command_and_disabled_config
- retention_days: tests/reporting/test_retention.py (the `aged` dataset)
- restricted_markets, price_collar_pct, max_order_quantity, max_order_notional,
  max_orders_per_minute, max_total_notional, max_concentration_pct,
  max_daily_volume, max_cancel_ratio, duplicate_window_secs (on), and
  max_position_per_market as one number: test_gate.py::test_rejects_order_*

Here: the rest, with the decisions and records they change."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from audit.models import Record
from compliance_site.exceptions import Invalid
from surveillance.config import DEFAULT_CONFIG, config_validate
from surveillance.detectors.base import DetectorConfig, TradeEvent
from surveillance.detectors.layering import LayeringDetector
from surveillance.detectors.spoofing import SpoofingDetector
from surveillance.detectors.wash_trading import WashTradingDetector
from surveillance.models import ComplianceConfigVersion
from surveillance.services.config import config_current, config_update
from tests.surveillance.test_detectors import SEED_RULES

pytestmark = pytest.mark.django_db

SECOND = 1_000_000


def record(seq: int) -> dict[str, Any]:
    return json.loads(Record.objects.get(seq=seq).body)


def codes(body: dict[str, Any]) -> list[str]:
    return [r["code"] for r in body["reasons"]]


# A new install


def test_fresh_install_shows_the_seeds_defaults(client_for):
    body = client_for("carol").get("/api/v1/config/").json()
    config = body["config"]
    assert body["version"] == 1
    assert config["enabled"] is True
    assert config["audit_enabled"] is True
    assert config["surveillance_enabled"] is True
    assert config["approval_enabled"] is False
    assert Decimal(config["approval_threshold_notional"]) == 5000
    assert config["approval_timeout_secs"] == 300
    assert config["retention_days"] == 2555
    assert config["surveillance_window_secs"] == 300
    assert Decimal(config["wash_trade_threshold_secs"]) == Decimal("5.0")
    assert Decimal(config["spoof_cancel_threshold_secs"]) == Decimal("2.0")
    assert config["layering_depth"] == 3
    assert config["kill_switch_requires_role"] == "risk_manager"
    limits = config["regulatory_limits"]
    assert Decimal(limits["max_concentration_pct"]) == 25
    assert limits["max_orders_per_minute"] == 120
    assert Decimal(limits["max_cancel_ratio"]) == Decimal("0.95")
    assert limits["cancel_ratio_min_orders"] == 20
    assert Decimal(limits["portfolio_capital"]) == 1_000_000
    assert limits["restricted_markets"] == []
    for unlimited in (
        "max_position_per_market",
        "max_total_notional",
        "max_daily_volume",
        "price_collar_pct",
        "max_order_quantity",
        "max_order_notional",
    ):
        assert limits[unlimited] is None, unlimited
    # the version in force is the recorded one
    assert (
        record(ComplianceConfigVersion.objects.get(version=1).seq)["data"]["hash"] == body["hash"]
    )


def test_an_existing_install_keeps_its_stored_versions(db, people):
    # given an install whose version 1 was stored before the defaults changed
    # (integer thresholds, an hour's window, approvals on)
    ComplianceConfigVersion.objects.all().delete()
    old = copy.deepcopy(DEFAULT_CONFIG) | {
        "approval_enabled": True,
        "surveillance_window_secs": 3600,
        "wash_trade_threshold_secs": 60,
        "spoof_cancel_threshold_secs": 5,
        "layering_depth": 5,
    }
    ComplianceConfigVersion.objects.create(version=1, config=old, hash="h-old")
    # then it stays in force as stored, and the detectors read its integers
    current = config_current()
    assert (current.version, current.hash, current.config) == (1, "h-old", old)
    detectors = DetectorConfig.from_config(current.config, current.hash)
    assert detectors.wash_trade_threshold_us == 60 * SECOND
    assert detectors.window_us == 3600 * SECOND


# enabled


def test_enabled_false_turns_the_limit_checks_off_and_marks_every_decision(bot, submit, set_config):
    # given a limit this order breaches
    set_config(regulatory_limits={"max_order_quantity": "1"})
    assert codes(submit(bot, quantity="5").json()) == ["max_order_quantity"]
    # when the checks are turned off
    set_config(enabled=False)
    body = submit(bot, quantity="5").json()
    # then the order passes, and its record says the checks were off
    assert body["decision"] == "accepted"
    data = record(body["seq"])["data"]
    assert data["checks_disabled"] is True
    assert data["config_hash"] == body["config_hash"]


def test_enabled_false_keeps_the_kill_switch(bot, submit, set_config, client_for):
    set_config(enabled=False)
    client_for("rita").post(
        "/api/v1/kill-switch/",
        {"action": "activate", "scope": "global", "reason": "halt"},
        format="json",
    )
    body = submit(bot).json()
    assert body["decision"] == "rejected"
    assert codes(body) == ["kill_switch"]
    assert body["cancel_all"] is True
    rejected = record(body["seq"])
    assert rejected["event_type"] == "ORDER_REJECTED"
    assert rejected["data"]["checks_disabled"] is True


def test_enabled_false_still_holds_for_approval_when_approvals_are_on(bot, submit, set_config):
    set_config(enabled=False, approval_enabled=True, approval_threshold_notional="100")
    body = submit(bot, quantity="2", price="100").json()
    assert body["decision"] == "held"
    assert record(body["seq"])["data"]["checks_disabled"] is True


def test_enabled_true_decisions_are_not_marked(bot, submit):
    body = submit(bot).json()
    assert "checks_disabled" not in record(body["seq"])["data"]


# audit_enabled


def test_audit_enabled_false_is_refused_with_audit_required(client_for):
    config = copy.deepcopy(config_current().config) | {"audit_enabled": False}
    versions, records = ComplianceConfigVersion.objects.count(), Record.objects.count()
    response = client_for("alice").put("/api/v1/config/", config, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "audit_required"
    assert "17a-4" in body["detail"]
    assert "MiFID II" in body["detail"]
    assert (ComplianceConfigVersion.objects.count(), Record.objects.count()) == (versions, records)


def test_the_service_refuses_an_invalid_config_whoever_calls(people):
    # the admin, a command or a script call the service directly, not the API
    config = copy.deepcopy(config_current().config)
    versions = ComplianceConfigVersion.objects.count()
    with pytest.raises(Invalid) as audit_off:
        config_update(config=config | {"audit_enabled": False}, acting_user=people["alice"])
    assert audit_off.value.code == "audit_required"
    bad = copy.deepcopy(config)
    bad["regulatory_limits"]["max_order_quantity"] = "-1"
    with pytest.raises(Invalid) as invalid:
        config_update(config=bad, acting_user=people["alice"])
    assert invalid.value.code == "invalid"
    assert "max_order_quantity" in str(invalid.value.detail)
    assert ComplianceConfigVersion.objects.count() == versions


# approval_enabled, approval_threshold_notional, approval_timeout_secs


def test_approval_enabled_holds_orders_above_the_threshold(bot, submit, set_config):
    assert submit(bot, quantity="2", price="100").json()["decision"] == "accepted"  # off
    set_config(approval_enabled=True, approval_threshold_notional="150")
    assert submit(bot, quantity="1", price="100").json()["decision"] == "accepted"  # 100
    held = submit(bot, quantity="2", price="100.5").json()  # 201 > 150
    assert held["decision"] == "held"
    assert held["reasons"][0]["limit"] == "150"


def test_approval_timeout_secs_sets_the_expiry(bot, submit, set_config):
    set_config(approval_enabled=True, approval_timeout_secs=42)
    held = submit(bot, quantity="60", price="100").json()
    expires = datetime.fromisoformat(held["approval"]["expires_at"]).timestamp()
    requested_at = Record.objects.get(seq=held["seq"]).recorded_at_us / SECOND
    assert 41 <= expires - requested_at <= 43


# max_position_per_market as a map, duplicate_window_secs off, portfolio_capital,
# cancel_ratio_min_orders


def test_position_cap_map_per_market_with_a_default(bot, submit, set_config):
    set_config(regulatory_limits={"max_position_per_market": {"BTC-USD": "1", "*": "3"}})
    btc = submit(bot, market="BTC-USD", quantity="2").json()
    assert codes(btc) == ["max_position"]
    assert btc["reasons"][0]["limit"] == "1"
    assert submit(bot, market="ETH-USD", quantity="2").json()["decision"] == "accepted"
    eth = submit(bot, market="ETH-USD", quantity="2").json()  # 4 resting > "*" 3
    assert codes(eth) == ["max_position"]
    assert eth["reasons"][0]["limit"] == "3"


def test_position_cap_map_without_a_default_leaves_other_markets_uncapped(bot, submit, set_config):
    set_config(regulatory_limits={"max_position_per_market": {"BTC-USD": "1", "SOL-USD": None}})
    assert codes(submit(bot, market="BTC-USD", quantity="2").json()) == ["max_position"]
    assert submit(bot, market="SOL-USD", quantity="500").json()["decision"] == "accepted"
    assert submit(bot, market="ETH-USD", quantity="500").json()["decision"] == "accepted"


@pytest.mark.parametrize(
    "value",
    [{"BTC-USD": "-1"}, {"BTC USD": "1"}, {"BTC-USD": [1]}, ["1"], "lots"],
    ids=["negative", "bad market", "not a number", "a list", "text"],
)
def test_position_cap_invalid_values_are_refused(client_for, value):
    config = copy.deepcopy(config_current().config)
    config["regulatory_limits"]["max_position_per_market"] = value
    versions = ComplianceConfigVersion.objects.count()
    response = client_for("alice").put("/api/v1/config/", config, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert ComplianceConfigVersion.objects.count() == versions


def test_duplicate_window_zero_turns_the_duplicate_check_off(bot, submit, set_config):
    submit(bot, price="100", order_id="a")
    assert codes(submit(bot, price="100", order_id="b").json()) == ["duplicate_order"]
    set_config(regulatory_limits={"duplicate_window_secs": 0})
    assert submit(bot, price="100", order_id="c").json()["decision"] == "accepted"


def test_portfolio_capital_is_the_concentration_floor(bot, submit, set_config):
    # 2 x 100 = 200 of a 1,000,000 capital is 0.02%: not concentrated
    assert submit(bot, quantity="2", price="100").json()["decision"] == "accepted"
    # against a capital of 500, about 400 in one market is 80% > 25%
    set_config(regulatory_limits={"portfolio_capital": "500"})
    body = submit(bot, quantity="2", price="100.5").json()
    assert codes(body) == ["max_concentration"]


def test_cancel_ratio_min_orders_waits_for_enough_orders(bot, submit, set_config):
    set_config(regulatory_limits={"max_cancel_ratio": "0.5", "cancel_ratio_min_orders": 3})
    for n in (1, 2):
        submit(bot, order_id=f"c-{n}")
        bot.post_events([bot.signer.item("ORDER_CANCELED", {"order_id": f"c-{n}", "reason": "x"})])
    # two orders, both canceled: too few to judge
    assert submit(bot, order_id="c-3").json()["decision"] == "accepted"
    bot.post_events([bot.signer.item("ORDER_CANCELED", {"order_id": "c-3", "reason": "x"})])
    # three orders, three canceled: the ratio applies
    assert codes(submit(bot, order_id="c-4").json()) == ["max_cancel_ratio"]


# Detector fields: wash_trade_threshold_secs and spoof_cancel_threshold_secs take
# decimals; surveillance_window_secs and layering_depth


def detectors(**changes: Any) -> DetectorConfig:
    """The detectors' view of a config as the service stores it, with the
    seed's plain rules (`detection`), whose thresholds these tests read off
    one or two events; the vendor rules' use of them is in test_detection_rules."""
    config = copy.deepcopy(DEFAULT_CONFIG) | {"detection": SEED_RULES} | changes
    return DetectorConfig.from_config(config_validate(config), "h")


def event(seq: int, kind: str, side: str, ts: int, price: str = "100", order: str = "") -> Any:
    return TradeEvent(
        seq=seq,
        ts=ts,
        kind=kind,
        agent_id="a",
        owner="agent:a",
        market="M",
        side=side,
        order_id=order or f"o{seq}",
        quantity=Decimal(1),
        price=Decimal(price),
        accepted=True,
    )


@pytest.mark.parametrize(("gap_s", "alerts"), [("2.4", 1), ("2.6", 0)])
def test_wash_trade_threshold_takes_decimal_seconds(gap_s, alerts):
    config = detectors(wash_trade_threshold_secs=2.5)  # a JSON number, stored "2.5"
    assert config.wash_trade_threshold_us == 2_500_000
    detector = WashTradingDetector(config)
    state = detector.load_state({})
    assert detector.feed(state, event(1, "fill", "buy", 0)) == []
    gap = int(Decimal(gap_s) * SECOND)
    assert len(detector.feed(state, event(2, "fill", "sell", gap))) == alerts


@pytest.mark.parametrize(("lived_s", "threshold", "alerts"), [("1.4", None, 1), ("1.4", "1.25", 0)])
def test_spoof_cancel_threshold_takes_decimal_seconds(lived_s, threshold, alerts):
    # the default is 2.0 s; 1.25 s is a stricter reading
    config = detectors(**({"spoof_cancel_threshold_secs": threshold} if threshold else {}))
    detector = SpoofingDetector(config)
    state = detector.load_state({})
    detector.feed(state, event(1, "submit", "buy", 0, order="x"))
    lived = int(Decimal(lived_s) * SECOND)
    assert len(detector.feed(state, event(2, "cancel", "buy", lived, order="x"))) == alerts


@pytest.mark.parametrize(("depth", "alerts"), [(3, 1), (4, 0)])
def test_layering_depth(depth, alerts):
    detector = LayeringDetector(detectors(layering_depth=depth))
    state = detector.load_state({})
    found = [
        f
        for i, price in enumerate(["101", "102", "103"])
        for f in detector.feed(state, event(i, "submit", "sell", i * SECOND, price=price))
    ]
    assert len(found) == alerts


@pytest.mark.parametrize(("window", "alerts"), [(300, 1), (60, 0)])
def test_surveillance_window_bounds_what_the_detectors_look_back_on(window, alerts):
    # three price levels a hundred seconds apart: one stack within 300 s, none within 60 s
    detector = LayeringDetector(detectors(surveillance_window_secs=window))
    state = detector.load_state({})
    found = [
        f
        for i, price in enumerate(["101", "102", "103"])
        for f in detector.feed(state, event(i, "submit", "sell", i * 100 * SECOND, price=price))
    ]
    assert len(found) == alerts
