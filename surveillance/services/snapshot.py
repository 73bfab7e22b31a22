"""What the gate's checks read while it holds the firm lock: one statement
(surveillance.store.SNAPSHOT_SQL says what it reads and why it is not the ORM).

Every order in the firm waits for the lock, so what runs under it is kept to
one round trip whose cost does not grow with history."""

from __future__ import annotations

from accounts.models import Agent

from ..checks import Intent, RiskSnapshot
from ..config import Limits
from ..models import AgentRiskLimit, FirmRisk, Order
from ..store import SnapshotQuery, snapshot_read

__all__ = ["snapshot_for"]


def snapshot_for(
    agent: Agent,
    intent: Intent,
    lim: Limits,
    *,
    firm: FirmRisk,
    now: int,
    window_secs: int | None = None,
    exclude: Order | None = None,
) -> tuple[RiskSnapshot, AgentRiskLimit | None]:
    """Everything the checks need, read while the caller holds the firm lock,
    and the agent's risk limits row (None: no limits; read under the lock as
    agent_limits_set takes it). `window_secs`: the cancel-ratio window, the
    config's surveillance window unless given. `exclude`: the order an
    amendment replaces (no duplicate check then)."""
    return snapshot_read(SnapshotQuery(agent, intent, lim, now, window_secs, exclude), firm)
