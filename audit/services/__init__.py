"""The audit entry points every other app uses. Import from here (or from
audit.models, audit.selectors, audit.event_types), never from the modules of
this package: tests/test_layout.py checks it."""

from .export import ExportError, export_request
from .ingest import (
    BatchRejected,
    CheckedItem,
    FloatToken,
    ItemError,
    check_items,
    register_projection_hook,
)
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
from .purge import records_purge

__all__ = [
    "DEFAULT_LOG",
    "Actor",
    "Appended",
    "AuditError",
    "BatchRejected",
    "CheckedItem",
    "ExportError",
    "FloatToken",
    "ItemError",
    "LogClaim",
    "PendingRecord",
    "append",
    "check_items",
    "export_request",
    "lock_head",
    "now_us",
    "pending_server_event",
    "record_event",
    "records_purge",
    "register_projection_hook",
]
