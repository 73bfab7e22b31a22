"""Audit's models, one module per sub-domain, re-exported here: other code
imports them from `audit.models`, never from the submodules.

- log: the append-only log (head, records, Merkle nodes, event types,
  checkpoints, exports, verifications);
- webhooks: endpoints and the webhook outbox;
- witness: witnesses and their cosignatures."""

from .log import (
    MAX_SEQ,
    Checkpoint,
    EventType,
    Log,
    LogExport,
    LogVerification,
    MerkleNode,
    Record,
)
from .webhooks import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
    WebhookRecordCursor,
)
from .witness import Cosignature, Witness

__all__ = [
    "MAX_SEQ",
    "Checkpoint",
    "Cosignature",
    "EventType",
    "Log",
    "LogExport",
    "LogVerification",
    "MerkleNode",
    "Record",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookMessage",
    "WebhookRecordCursor",
    "Witness",
]
