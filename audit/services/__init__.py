"""The audit entry points every other app uses. Import from here."""

from .log import (
    DEFAULT_LOG,
    Actor,
    Appended,
    AuditError,
    PendingRecord,
    append,
    append_with,
    head_from_row,
    head_lock_statement,
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
    "PendingRecord",
    "append",
    "append_with",
    "head_from_row",
    "head_lock_statement",
    "lock_head",
    "now_us",
    "pending_server_event",
    "record_event",
]
