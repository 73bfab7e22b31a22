"""The expiry sweep and the email notices, as the beat runs them: run twice it
has one effect; killed halfway and run again it ends where one run would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from approvals import services
from approvals.models import ApprovalRequest, Notification
from approvals.services import approval_expire_due, approval_grant
from approvals.tasks import (
    approval_expire_due_task,
    approval_notification_email_sweep_task,
    approval_notification_email_task,
)

from .conftest import records
from .factories import ApprovalRequestFactory, open_overdue

pytestmark = pytest.mark.django_db


def final_state() -> list[tuple[int, str, int]]:
    """(id, status, number of APPROVAL_EXPIRED records) for every request."""
    expired = {}
    for record in records("APPROVAL_EXPIRED"):
        expired[record["data"]["approval_id"]] = expired.get(record["data"]["approval_id"], 0) + 1
    return [
        (pk, status, expired.get(pk, 0))
        for pk, status in ApprovalRequest.objects.order_by("pk").values_list("pk", "status")
    ]


def test_expiry_expires_only_requests_past_their_deadline(resolver, people, bot):
    # given one overdue request and one with time left
    overdue = open_overdue(requested_by_agent=bot.agent)
    fresh = ApprovalRequestFactory(requested_by_agent=bot.agent)
    # when the beat task runs
    assert approval_expire_due_task.delay().get() == 1
    # then only the overdue one expired, by the system, with one record and notice
    overdue.refresh_from_db()
    fresh.refresh_from_db()
    assert (overdue.status, fresh.status) == ("expired", "pending")
    assert overdue.decided_by is None
    assert overdue.decided_at >= overdue.expires_at
    [record] = records("APPROVAL_EXPIRED")
    assert record["data"]["approval_id"] == overdue.pk
    assert record["actor"] == {"type": "system", "id": "approvals-expiry"}
    assert record["data"]["expired_at_us"] >= record["data"]["expires_at_us"]
    assert resolver.calls == [("expire", overdue.pk)]
    assert Notification.objects.filter(approval=overdue, event_type="APPROVAL_EXPIRED").count() == 1


def test_expiry_leaves_decided_requests_alone(resolver, people):
    # given a request granted in time whose deadline has since passed
    request = ApprovalRequestFactory()
    approval_grant(request_id=request.pk, acting_user=people["alice"], reason="ok")
    # when expiry runs after the deadline
    assert approval_expire_due(now=request.expires_at + timedelta(seconds=1)) == 0
    # then it stays granted, with no expiry record
    assert ApprovalRequest.objects.get(pk=request.pk).status == "granted"
    assert records("APPROVAL_EXPIRED") == []


def test_expiry_task_run_twice_has_the_effect_of_one_run(resolver, people):
    # given 7 overdue requests and 2 live ones
    for _ in range(7):
        open_overdue()
    for _ in range(2):
        ApprovalRequestFactory()
    # when the task runs twice
    first = approval_expire_due_task.delay().get()
    after_first = final_state()
    second = approval_expire_due_task.delay().get()
    # then the second run did nothing: same states, one record each
    assert (first, second) == (7, 0)
    assert final_state() == after_first
    assert sorted(s for _, s, _ in after_first) == ["expired"] * 7 + ["pending"] * 2
    assert all(n == (1 if s == "expired" else 0) for _, s, n in after_first)
    assert len(resolver.calls) == 7


class Killed(BaseException):
    """Stands for the worker being killed: not an Exception, so nothing catches it."""


def test_expiry_killed_halfway_then_rerun_ends_as_one_run(resolver, people):
    # given 25 overdue requests, swept in batches of 10
    for _ in range(25):
        open_overdue()
    calls = {"n": 0}
    real_expire_one = services._expire_one

    def dies_in_second_batch(request_id, now):
        calls["n"] += 1
        if calls["n"] == 15:
            raise Killed
        return real_expire_one(request_id, now)

    # when the worker dies in the middle of the second batch
    services._expire_one = dies_in_second_batch
    try:
        with pytest.raises(Killed):
            approval_expire_due(batch_size=10)
    finally:
        services._expire_one = real_expire_one
    # then the first batch is done and the half-done second one left no trace
    midway = final_state()
    assert sum(1 for _, s, _ in midway if s == "expired") == 10
    assert sum(n for _, _, n in midway) == 10
    # when the task runs again
    assert approval_expire_due(batch_size=10) == 15
    # then every request expired exactly once, as after a single clean run
    end = final_state()
    assert [(s, n) for _, s, n in end] == [("expired", 1)] * 25
    # (the resolver's call list is in memory, so it also saw the rolled-back
    # calls; a real resolver's writes roll back with the batch)
    assert {pk for _, pk in resolver.calls} == {pk for pk, _, _ in end}


def test_expiry_is_bounded_per_run(resolver, people):
    for _ in range(12):
        open_overdue()
    # a run does at most batch_size * max_batches; the next tick does the rest
    assert approval_expire_due(batch_size=5, max_batches=2) == 10
    assert approval_expire_due(batch_size=5, max_batches=2) == 2
    assert approval_expire_due(batch_size=5, max_batches=2) == 0


def test_expiry_skips_a_request_whose_resolver_fails_and_expires_the_rest(resolver, people):
    # given three overdue requests, the middle one's resolver fails
    first, broken, last = (open_overdue() for _ in range(3))
    resolver.fail_ids = {broken.pk}
    # when expiry runs (with a batch smaller than the failures plus the rest)
    assert approval_expire_due(batch_size=1) == 2
    # then the others expired, the broken one is still pending with no record
    states = dict(ApprovalRequest.objects.values_list("pk", "status"))
    assert states == {first.pk: "expired", broken.pk: "pending", last.pk: "expired"}
    assert records("APPROVAL_EXPIRED", broken.pk) == []
    # and once the resolver is fixed, the next run expires it
    resolver.fail_ids = set()
    assert approval_expire_due() == 1


# --- email notices ------------------------------------------------------------------


@pytest.fixture
def officer_mail(people):
    people["alice"].email = "alice@firm.test"
    people["alice"].save()


def test_email_task_run_twice_sends_once(resolver, officer_mail):
    # given an opened request whose on-commit hook never ran
    request = ApprovalRequestFactory()
    notice = Notification.objects.get(approval=request, channel="email")
    # when the email task runs twice
    assert approval_notification_email_task.delay(notice.pk).get() is True
    assert approval_notification_email_task.delay(notice.pk).get() is False
    # then one mail went out
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@firm.test"]


def test_email_sweep_sends_notices_whose_task_never_ran(resolver, officer_mail):
    # given two requests opened while the broker was down (no task ran)
    for _ in range(2):
        ApprovalRequestFactory()
    # when the sweep runs, twice
    assert approval_notification_email_sweep_task.delay().get() == 2
    assert approval_notification_email_sweep_task.delay().get() == 0
    # then each notice was mailed once
    assert len(mail.outbox) == 2
    assert Notification.objects.filter(channel="email", sent_at__isnull=True).count() == 0


def test_email_failure_releases_the_claim_for_a_retry(resolver, officer_mail, monkeypatch):
    request = ApprovalRequestFactory()
    notice = Notification.objects.get(approval=request, channel="email")

    def smtp_down(*args, **kwargs):
        raise OSError("smtp down")

    monkeypatch.setattr(services, "send_mail", smtp_down)
    with pytest.raises(OSError, match="smtp down"):
        services.notification_email_send(notification_id=notice.pk)
    notice.refresh_from_db()
    assert (notice.sent_at, notice.claimed_at, notice.last_error) == (None, None, "smtp down")
    monkeypatch.undo()
    assert services.notification_email_send_pending() == 1
    assert len(mail.outbox) == 1


def test_email_claimed_by_a_dead_worker_is_retried_after_the_lease(resolver, officer_mail):
    request = ApprovalRequestFactory()
    notice = Notification.objects.get(approval=request, channel="email")
    # given a worker claimed it a minute ago and died
    Notification.objects.filter(pk=notice.pk).update(
        claimed_at=timezone.now() - timedelta(minutes=1)
    )
    assert services.notification_email_send_pending() == 0
    # when the lease has run out
    Notification.objects.filter(pk=notice.pk).update(
        claimed_at=timezone.now() - timedelta(minutes=6)
    )
    assert services.notification_email_send_pending() == 1
    assert len(mail.outbox) == 1
