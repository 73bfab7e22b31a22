"""Users, roles, human bearer tokens, trading agents and their signing keys."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    """The five roles, lowest first. Each role has every right of the ones before it."""

    VIEWER = "viewer", "Viewer (auditor, read-only)"
    TRADER = "trader", "Trader"
    RISK_MANAGER = "risk_manager", "Risk manager"
    COMPLIANCE_OFFICER = "compliance_officer", "Compliance officer"
    ADMIN = "admin", "Admin"


ROLE_ORDER: list[str] = [r.value for r in Role]


class User(AbstractUser):
    """A human. Roles are Django groups named after `Role`; see accounts.roles."""

    class Meta:
        permissions = [
            ("view_log", "Read records, positions, orders, alerts and reports"),
            ("submit_orders", "Submit and cancel orders for owned agents"),
            ("manage_kill_switch", "Activate and release kill switches"),
            ("manage_risk_limits", "Set per-agent risk limits"),
            ("manage_agents", "Register agents and their keys"),
            ("decide_approvals", "Approve or deny held requests"),
            ("resolve_alerts", "Work and resolve surveillance alerts"),
            ("generate_reports", "Generate reports"),
            ("change_config", "Change the compliance configuration"),
            ("export_log", "Export evidence bundles and write checkpoints"),
            ("verify_log", "Run a verification of the audit log"),
            ("manage_users", "Manage users and roles"),
            ("manage_legal_holds", "Place and release legal holds"),
            ("purge_data", "Run retention purges"),
        ]


class ApiToken(models.Model):
    """An expiring bearer token for a human. Only the SHA-256 of the token is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"


class AgentManager(models.Manager["Agent"]):
    def authenticated(self, api_key_hash: str) -> Agent | None:
        """The agent holding this API key, its key registry read in the same
        query (accounts.store.agent_with_keys)."""
        from .store import agent_with_keys

        return agent_with_keys(api_key_hash)


class Agent(models.Model):
    """A trading bot. It authenticates with an API key (stored hashed) and signs
    what it reports with Ed25519 keys from its registry. Agents are never
    deleted: records refer to them for as long as the log exists."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    agent_id = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="agents"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    api_key_hash = models.CharField(max_length=64, unique=True)
    api_key_prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, related_name="+")

    objects = AgentManager()
    _keys_by_id: dict[str, AgentKey]  # set by AgentManager.authenticated, not a field

    class Meta:
        permissions = [("act_for_agent", "Act (orders, cancels) for this agent")]

    def __str__(self) -> str:
        return self.agent_id

    def keys_by_id(self, key_ids: Iterable[str]) -> dict[str, AgentKey]:
        """These keys of the agent's registry (revoked ones included), by key_id:
        from the authentication's read when it made this instance."""
        loaded: dict[str, AgentKey] | None = self.__dict__.get("_keys_by_id")
        if loaded is not None:
            return loaded
        return {k.key_id: k for k in AgentKey.objects.filter(agent=self, key_id__in=list(key_ids))}


class AgentKey(models.Model):
    """An Ed25519 public key of an agent. Keys are revoked, never deleted, so a
    record signed before the revocation still verifies."""

    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="keys")
    key_id = models.CharField(max_length=32)
    public_key = models.CharField(max_length=64)  # base64 of the raw 32 bytes
    created_at = models.DateTimeField(auto_now_add=True)
    created_at_us = models.BigIntegerField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_at_us = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "key_id"], name="agentkey_unique_key_id"),
            models.UniqueConstraint(
                fields=["agent", "public_key"], name="agentkey_unique_public_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id}/{self.key_id}"
