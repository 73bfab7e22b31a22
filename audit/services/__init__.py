"""The audit entry points every other app uses. Import from here."""

from .log import DEFAULT_LOG, Actor, AuditError, PendingRecord, append, now_us, record_event

__all__ = ["DEFAULT_LOG", "Actor", "AuditError", "PendingRecord", "append", "now_us", "record_event"]
