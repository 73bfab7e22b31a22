"""The detector interface.

The cycle turns new records into `TradeEvent`s (seq order), loads each
detector's state for the partitions those events touch, feeds the events one
by one and collects `Finding`s. A detector only sees events and its own
state, never the database, so the same records and config always give the
same findings (a repeated or rerun cycle agrees with the first one).

To add a detector: subclass `Detector`, set `name`, `severity` and `kinds`,
implement `partition` and `feed` (and `from_config` if it is configurable or
can be switched off), and list the class in `surveillance.detectors.DETECTORS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from compliance_site.decimals import decimal_text

from ..config import seconds_us

MINUTE_US = 60_000_000
SECOND_US = 1_000_000
FOREVER_US = 2**62

# The detectors' rules (an optional `detection` object in the config). Each
# default is the rule surveillance vendors and regulators use; the seed's plain
# rule stays selectable. A config without `detection` (every config written
# before it existed) means these defaults: its hash is unchanged.
DEFAULT_DETECTION: dict[str, Any] = {
    # "self_trade": a buy and a sell of one agent or owner at (nearly) the same
    # price, overlapping quantity, a round trip with no fill between the legs;
    # "opposite_fills": the seed's rule, any buy and sell within the threshold.
    "wash_trading_rule": "self_trade",
    "wash_trade_price_tolerance_pct": "0.01",
    "wash_trade_min_overlap": "0.5",
    # "stack_execute_cancel": a one-sided stack at `layering_depth` price levels,
    # an execution on the other side, then the stack cancelled, within the window;
    # "stack_depth": the seed's rule, any such stack.
    "layering_rule": "stack_execute_cancel",
    "layering_window_secs": 60,
    "layering_imbalance_ratio": "3",
    # "large_cancel_opposite": an order `spoof_size_multiple` times the agent's
    # usual size, cancelled unfilled within the threshold while the agent trades
    # on the other side; "quick_cancel": the seed's rule, any quick cancel.
    "spoofing_rule": "large_cancel_opposite",
    "spoof_size_multiple": "5",
    "spoof_min_history": 3,
}


def secs(us: int) -> str:
    """Microseconds as seconds, for details ("1.25")."""
    return decimal_text(Decimal(us) / SECOND_US)


@dataclass(slots=True)
class TradeEvent:
    """One trading fact from one record, normalized for the detectors.

    kind: submit (an order the gate accepted or held), reject (an order the
    gate refused), amend (an accepted amendment), fill, cancel, position,
    venue_reject (the venue refused an order), bypass (a reported fact that
    contradicts the gate, with its `note`).
    `ts` is the record's recorded_at_us: the server's clock, not the bot's.
    `market` and `side` of fills, cancels and amendments come from the order's
    own submission. `order_seq` is the seq of that submission."""

    seq: int
    ts: int
    kind: str
    agent_id: str
    owner: str
    market: str | None = None
    side: str | None = None
    order_id: str | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    accepted: bool = False
    order_seq: int | None = None
    # kind "bypass": what the ingest projection noted (surveillance.models.GateBypass).
    note: dict[str, Any] | None = None


@dataclass(frozen=True)
class DetectorConfig:
    """The compliance config as the detectors need it (one version, one hash)."""

    config_hash: str
    window_us: int
    wash_trade_threshold_us: int
    spoof_cancel_threshold_us: int
    layering_depth: int
    max_orders_per_minute: int | None
    max_concentration: Decimal | None  # a fraction, e.g. 0.25
    portfolio_capital: Decimal
    # The rules (the config's optional `detection` object; see surveillance.config).
    wash_trading_rule: str = "self_trade"
    wash_price_tolerance: Decimal = Decimal("0.0001")  # a fraction of the price
    wash_min_overlap: Decimal = Decimal("0.5")
    layering_rule: str = "stack_execute_cancel"
    layering_window_us: int = 60 * SECOND_US
    layering_imbalance_ratio: Decimal = Decimal(3)
    spoofing_rule: str = "large_cancel_opposite"
    spoof_size_multiple: Decimal = Decimal(5)
    spoof_min_history: int = 3

    @classmethod
    def from_config(cls, config: dict[str, Any], config_hash: str) -> DetectorConfig:
        limits = config["regulatory_limits"]
        pct = limits.get("max_concentration_pct")
        rules = {**DEFAULT_DETECTION, **(config.get("detection") or {})}
        return cls(
            config_hash=config_hash,
            window_us=seconds_us(config["surveillance_window_secs"]),
            wash_trade_threshold_us=seconds_us(config["wash_trade_threshold_secs"]),
            spoof_cancel_threshold_us=seconds_us(config["spoof_cancel_threshold_secs"]),
            layering_depth=int(config["layering_depth"]),
            max_orders_per_minute=limits.get("max_orders_per_minute"),
            max_concentration=None if pct is None else Decimal(pct) / 100,
            portfolio_capital=Decimal(limits.get("portfolio_capital") or "1000000"),
            wash_trading_rule=rules["wash_trading_rule"],
            wash_price_tolerance=Decimal(rules["wash_trade_price_tolerance_pct"]) / 100,
            wash_min_overlap=Decimal(rules["wash_trade_min_overlap"]),
            layering_rule=rules["layering_rule"],
            layering_window_us=int(rules["layering_window_secs"]) * SECOND_US,
            layering_imbalance_ratio=Decimal(rules["layering_imbalance_ratio"]),
            spoofing_rule=rules["spoofing_rule"],
            spoof_size_multiple=Decimal(rules["spoof_size_multiple"]),
            spoof_min_history=int(rules["spoof_min_history"]),
        )


@dataclass
class Finding:
    """What a detector reports. `fingerprint` names the finding uniquely and is
    derived from the records only, so it is the same on every run."""

    detector: str
    severity: str
    fingerprint: str
    agent_id: str
    market: str
    evidence: list[int]
    detail: str
    seq: int  # the record that triggered it
    ts: int
    facts: dict[str, Any] = field(default_factory=dict)


class Detector(ABC):
    """One pattern. State is per partition (see `partition`) and must survive a
    JSON round trip through `dump_state` / `load_state`; an absent partition
    starts from `load_state({})`."""

    name: ClassVar[str]
    severity: ClassVar[str]
    kinds: ClassVar[frozenset[str]]

    def __init__(self, config: DetectorConfig):
        self.config = config

    @classmethod
    def from_config(cls, config: DetectorConfig) -> Detector | None:
        """The detector for this config, or None when the config switches it off."""
        return cls(config)

    @abstractmethod
    def partition(self, event: TradeEvent) -> str | None:
        """The state partition this event belongs to (None: not for this detector)."""

    @abstractmethod
    def feed(self, state: Any, event: TradeEvent) -> list[Finding]:
        """Take one event (in seq order), update the partition's state in place,
        and report the findings it newly makes (usually none)."""

    def horizon_us(self) -> int:
        """How long after its last event a partition's state still matters."""
        return self.config.window_us

    def load_state(self, stored: dict[str, Any]) -> Any:
        return stored

    def dump_state(self, state: Any) -> dict[str, Any]:
        return state

    def finding(
        self,
        *,
        event: TradeEvent,
        key: str,
        anchor: int,
        evidence: list[int],
        detail: str,
        market: str | None = None,
        facts: dict[str, Any] | None = None,
    ) -> Finding:
        """A finding whose fingerprint is detector + partition + `anchor` (the
        seq that opened the episode)."""
        return Finding(
            detector=self.name,
            severity=self.severity,
            fingerprint=f"{self.name}:{key}:{anchor}",
            agent_id=event.agent_id,
            market=market if market is not None else (event.market or ""),
            evidence=sorted(set(evidence)),
            detail=detail,
            seq=event.seq,
            ts=event.ts,
            facts=facts or {},
        )
