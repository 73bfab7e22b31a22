"""The audit entry points every other app uses. Import from here."""

from .log import (
    DEFAULT_LOG,
    Actor,
    Appended,
    AuditError,
    LogClaim,
    PendingRecord,
    append,
    lock_head,
    now_us,
    pending_server_event,
    record_event,
)

__all__ = [
    "DEFAULT_LOG",
    "Actor",
    "Appended",
    "AuditError",
    "LogClaim",
    "PendingRecord",
    "append",
    "lock_head",
    "now_us",
    "pending_server_event",
    "record_event",
]
