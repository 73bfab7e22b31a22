"""Approval requests opened through the service, so every one has its record
and notices exactly as in production."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import factory
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.services import approval_open

TEST_KIND = "test_action"


class ApprovalRequestFactory(factory.Factory):
    class Meta:
        model = ApprovalRequest

    kind = TEST_KIND
    subject_id = factory.Sequence(lambda n: f"subject-{n}")
    summary = factory.LazyAttribute(
        lambda o: {
            "market": "BTC-USD",
            "side": "buy",
            "quantity": "3",
            "price": "25000.5",
            "notional": "75001.5",
            "subject": o.subject_id,
        }
    )
    requested_by_user = None
    requested_by_agent = None
    timeout_secs = 300
    now = None

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> ApprovalRequest:
        return approval_open(**kwargs)


def open_overdue(seconds_overdue: int = 10, **kwargs: Any) -> ApprovalRequest:
    """A request whose deadline passed `seconds_overdue` ago and that the expiry
    task has not swept yet."""
    timeout = kwargs.pop("timeout_secs", 300)
    opened = timezone.now() - timedelta(seconds=timeout + seconds_overdue)
    return ApprovalRequestFactory(now=opened, timeout_secs=timeout, **kwargs)
