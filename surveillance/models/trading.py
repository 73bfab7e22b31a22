"""Trading projections, the versioned compliance config, risk limits and kill switches.

Projections (orders, fills, positions, risk state) are updated from the gate's
decisions and the reported events in the same transaction as their records."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models

from accounts.models import Agent, User


def quantity_field(**options: Any) -> models.DecimalField:
    """Money and quantities: exact decimals, never floats."""
    return models.DecimalField(max_digits=30, decimal_places=12, **options)


class ComplianceConfigVersion(models.Model):
    """One version of the firm-wide compliance config. Never edited: every change
    is a new row, recorded as CONFIG_CHANGED with the whole config and its hash."""

    version = models.PositiveIntegerField(unique=True)
    config = models.JSONField()
    hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, related_name="+")
    seq = models.BigIntegerField(null=True)

    def __str__(self) -> str:
        return f"config v{self.version}"


class AgentRiskLimit(models.Model):
    """Per-agent risk limits, set by risk managers (null = no limit)."""

    agent = models.OneToOneField(Agent, on_delete=models.PROTECT, related_name="risk_limit")
    max_position = quantity_field(null=True, blank=True)
    max_order_notional = quantity_field(null=True, blank=True)
    max_daily_notional = quantity_field(null=True, blank=True)
    max_orders_per_minute = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, related_name="+")

    def __str__(self) -> str:
        return f"limits for {self.agent_id}"


class FirmRisk(models.Model):
    """The firm-wide risk row. The gate locks it for every decision, so two orders
    that each fit but together breach a cap can never both pass.

    It also names the config version in force (set with the firm lock held by
    whoever creates a version), so the gate learns from the row it locks
    whether its parsed copy of the config is current, without another query."""

    name = models.CharField(max_length=32, unique=True, default="firm")
    day = models.DateField(null=True)
    day_notional = quantity_field(default=Decimal(0))
    config_version = models.PositiveIntegerField(null=True)
    config_hash = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return self.name


class MarketRisk(models.Model):
    """Firm-wide exposure in one market: filled position and resting order quantity."""

    market = models.CharField(max_length=64, unique=True)
    position = quantity_field(default=Decimal(0))
    open_buy = quantity_field(default=Decimal(0))
    open_sell = quantity_field(default=Decimal(0))
    last_price = quantity_field(null=True)  # last traded or reported price
    mark_price = quantity_field(null=True)  # values the exposure: last price, else last order price

    class Meta:
        verbose_name = "firm position"

    def __str__(self) -> str:
        return self.market


class FirmExposure(models.Model):
    """Gross exposure of the firm: the sum over MarketRisk of each market's worst
    reachable position times its mark price, kept as each market row changes
    (surveillance.services.risk), so the gate reads one row instead of every
    market. Exact: products of two 12-place decimals need 24 places.

    Not a field of FirmRisk: fills and positions change it from the ingest
    path, which holds the log head and must never wait for the firm lock (the
    gate holds the firm lock while it waits for the log head)."""

    name = models.CharField(max_length=32, unique=True, default="firm")
    gross = models.DecimalField(max_digits=60, decimal_places=24, default=Decimal(0))

    def __str__(self) -> str:
        return f"{self.name}: {self.gross}"


class AgentMarketRisk(models.Model):
    """One agent's exposure in one market."""

    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="market_risk")
    market = models.CharField(max_length=64)
    position = quantity_field(default=Decimal(0))
    open_buy = quantity_field(default=Decimal(0))
    open_sell = quantity_field(default=Decimal(0))
    day = models.DateField(null=True)
    day_notional = quantity_field(default=Decimal(0))

    class Meta:
        verbose_name = "position"
        constraints = [
            models.UniqueConstraint(fields=["agent", "market"], name="agentmarketrisk_unique")
        ]

    def __str__(self) -> str:
        return f"{self.agent_id}/{self.market}"


class Order(models.Model):
    """Every order a bot asked the gate about, whatever the decision."""

    class Status(models.TextChoices):
        PENDING_APPROVAL = "pending_approval"
        OPEN = "open"
        PARTIALLY_FILLED = "partially_filled"
        FILLED = "filled"
        CANCELED = "canceled"
        REJECTED = "rejected"
        EXPIRED = "expired"

    RESTING = (Status.PENDING_APPROVAL, Status.OPEN, Status.PARTIALLY_FILLED)

    # No index of its own: order_unique_agent_order_id and two more lead with agent_id.
    agent = models.ForeignKey(
        Agent, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    order_id = models.CharField(max_length=128)
    market = models.CharField(max_length=64)
    side = models.CharField(max_length=4)
    order_type = models.CharField(max_length=16)
    venue = models.CharField(max_length=64, blank=True, default="")
    quantity = quantity_field()
    price = quantity_field()
    filled_quantity = quantity_field(default=Decimal(0))
    status = models.CharField(max_length=20, choices=Status.choices)
    decision = models.CharField(max_length=10)
    reasons = models.JSONField(default=list)
    config_hash = models.CharField(max_length=64)
    approval_id = models.BigIntegerField(null=True, blank=True)
    seq = models.BigIntegerField(help_text="seq of the record of the gate decision")
    created_at_us = models.BigIntegerField()
    updated_at_us = models.BigIntegerField()
    # A manual order: the person who submitted it for the agent (null: the bot).
    submitted_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # A person asked for the order to be canceled (CANCEL_REQUESTED at this
    # seq); the bot hears of it in each gate answer until the order rests no more.
    cancel_requested_at_us = models.BigIntegerField(null=True, blank=True)
    cancel_requested_seq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "order_id"], name="order_unique_agent_order_id"
            )
        ]
        indexes = [
            models.Index(fields=["agent", "created_at_us"], name="order_agent_time"),
            models.Index(fields=["status"], name="order_status"),
            # The gate's duplicate-order check: same agent, market and price, recent.
            models.Index(fields=["agent", "market", "price", "created_at_us"], name="order_shape"),
            # The gate's read of an agent's pending cancel requests: a tiny index,
            # empty unless a person asked for a cancel the bot has not done yet.
            models.Index(
                fields=["agent"],
                name="order_cancel_pending",
                condition=models.Q(
                    cancel_requested_at_us__isnull=False,
                    status__in=["pending_approval", "open", "partially_filled"],
                ),
            ),
            # The dashboard's orders per hour by decision, an index-only aggregate.
            models.Index(fields=["created_at_us", "decision"], name="order_time_decision"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id}/{self.order_id}"

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled_quantity


class AgentOrderCount(models.Model):
    """How many orders an agent sent in one time bucket, kept by the gate and the
    cancel projection in the transaction that changes them, so the rate-limit and
    cancel-ratio checks add up a few dozen buckets instead of scanning orders.

    Each order is counted in three buckets (1 s, 1 min, 1 h wide) by its
    created_at_us; a cancel is counted in the buckets of the order it cancels.
    `orders` counts every order (the rate limit counts rejected ones too),
    `live` those not rejected by the gate, `cancels` the live ones canceled."""

    WIDTHS_S = (1, 60, 3600)

    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="+", db_index=False)
    width_s = models.PositiveIntegerField()
    start_us = models.BigIntegerField()
    orders = models.PositiveIntegerField(default=0)
    live = models.PositiveIntegerField(default=0)
    cancels = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            # Leads with agent: the only index the counters need.
            models.UniqueConstraint(
                fields=["agent", "width_s", "start_us"], name="agentordercount_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.agent_id}@{self.start_us}/{self.width_s}s"


class Fill(models.Model):
    # fill_unique leads with agent_id: no separate index on agent.
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="fills", db_index=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, null=True, related_name="fills")
    order_ref = models.CharField(max_length=128)
    fill_id = models.CharField(max_length=128)
    market = models.CharField(max_length=64, blank=True, default="")
    side = models.CharField(max_length=4, blank=True, default="")
    quantity = quantity_field()
    price = quantity_field()
    seq = models.BigIntegerField()
    recorded_at_us = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "order_ref", "fill_id"], name="fill_unique")
        ]

    def __str__(self) -> str:
        return f"{self.order_ref}/{self.fill_id}"


class GateBypass(models.Model):
    """A reported fill, cancel or venue rejection that contradicts the gate,
    noted by the ingest projection in the transaction that stores its record
    (the order's state at that seq is known only there). Immutable: the
    surveillance cycle reads the rows of its seq range and the gate_bypass
    detector turns them into alerts. `reasons`: unknown_order, order_not_open,
    overfill, kill_switch, restricted_market."""

    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="+", db_index=False)
    order_ref = models.CharField(max_length=128)
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, null=True, related_name="+", db_index=False
    )
    event_type = models.CharField(max_length=32)
    reasons = models.JSONField(default=list)
    detail = models.TextField()
    market = models.CharField(max_length=64, blank=True, default="")
    side = models.CharField(max_length=4, blank=True, default="")
    quantity = quantity_field(null=True)
    price = quantity_field(null=True)
    seq = models.BigIntegerField(db_index=True, help_text="seq of the reported record")
    order_seq = models.BigIntegerField(null=True, help_text="seq of the order's gate decision")
    recorded_at_us = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.agent_id}/{self.order_ref}@{self.seq}"


class KillSwitch(models.Model):
    """A kill switch. Activation snapshots open positions; at most one active
    switch per scope and target."""

    class Scope(models.TextChoices):
        GLOBAL = "global"
        AGENT = "agent"
        MARKET = "market"

    scope = models.CharField(max_length=8, choices=Scope.choices)
    target = models.CharField(max_length=64, blank=True, default="")
    active = models.BooleanField(default=True)
    reason = models.TextField()
    snapshot = models.JSONField(default=dict)
    activated_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    activated_at = models.DateTimeField(auto_now_add=True)
    activated_seq = models.BigIntegerField()
    deactivated_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, related_name="+")
    deactivated_at = models.DateTimeField(null=True)
    deactivation_reason = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "target"],
                condition=models.Q(active=True),
                name="killswitch_one_active_per_target",
            )
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.target or '*'}"
