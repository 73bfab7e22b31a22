"""Approvals fixtures: a test kind with a recording resolver (so these tests do
not depend on the order gate), and a snapshot to prove a refusal changed nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from approvals.models import ApprovalRequest, Notification
from approvals.registry import BaseResolver, register_resolver, unregister_resolver
from audit.models import Record

from .factories import TEST_KIND


class RecordingResolver(BaseResolver):
    """Remembers every call; can be told to name an owner or to fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.owner: Any = None
        self.fail_on: set[str] = set()
        self.fail_ids: set[int] = set()
        self._lock = threading.Lock()

    def _note(self, what: str, request: ApprovalRequest) -> None:
        if what in self.fail_on or request.pk in self.fail_ids:
            raise RuntimeError(f"resolver failed on {what}")
        with self._lock:
            self.calls.append((what, request.pk))

    def on_grant(self, request: ApprovalRequest, acting_user: Any) -> None:
        self._note("grant", request)

    def on_deny(self, request: ApprovalRequest, acting_user: Any) -> None:
        self._note("deny", request)

    def on_expire(self, request: ApprovalRequest) -> None:
        self._note("expire", request)

    def owner_of(self, request: ApprovalRequest) -> Any:
        return self.owner or super().owner_of(request)


@pytest.fixture
def resolver() -> Iterator[RecordingResolver]:
    instance = RecordingResolver()
    register_resolver(TEST_KIND, instance, replace=True)
    yield instance
    unregister_resolver(TEST_KIND)


class Snapshot:
    """Everything a refused approval operation must leave untouched."""

    def __init__(self) -> None:
        self.requests = list(
            ApprovalRequest.objects.order_by("pk").values(
                "pk", "status", "decided_by", "decided_at", "reason", "expires_at"
            )
        )
        self.records = Record.objects.count()
        self.notifications = Notification.objects.count()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Snapshot) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Snapshot({vars(self)!r})"


@pytest.fixture
def snapshot() -> type[Snapshot]:
    return Snapshot


def records(event_type: str, approval_id: int | None = None) -> list[dict[str, Any]]:
    """The hashed records of a type (optionally for one request), oldest first."""
    import json

    out = []
    for record in Record.objects.filter(event_type=event_type).order_by("seq"):
        body = json.loads(record.body)
        if approval_id is None or body["data"]["approval_id"] == approval_id:
            out.append(body)
    return out
