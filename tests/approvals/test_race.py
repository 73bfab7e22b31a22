"""A grant racing the expiry sweep at the deadline, on real PostgreSQL: every
request ends in exactly one final state with exactly one final record, and
nothing is granted at or after its deadline."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import User
from approvals.models import ApprovalRequest, Notification
from approvals.services import approval_grant, to_us
from approvals.tasks import approval_expire_due_task
from audit.services.verify import verify_log
from compliance_site.exceptions import Conflict

from .conftest import records
from .factories import ApprovalRequestFactory

N_REQUESTS = 200
GRANT_THREADS = 8
EXPIRY_THREADS = 3
SPREAD = timedelta(milliseconds=150)  # grants are fired from deadline - SPREAD to + SPREAD


def _sleep_until(moment) -> None:
    delay = (moment - timezone.now()).total_seconds()
    if delay > 0:
        time.sleep(delay)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_grant_racing_expiry_has_exactly_one_winner_per_request(resolver, people, bot, monkeypatch):
    # (the officers' email is beside the point here and only slows the setup)
    monkeypatch.setattr("approvals.services._enqueue_email", lambda notification_id: None)
    # given 200 pending requests that all fall due at the same deadline, just ahead
    requests = [ApprovalRequestFactory(requested_by_agent=bot.agent) for _ in range(N_REQUESTS)]
    # (opening 200 takes a variable time on a busy machine, so the common deadline
    # is set once they all exist rather than guessed before)
    deadline = timezone.now() + timedelta(seconds=1)
    ApprovalRequest.objects.update(expires_at=deadline)

    # and grants scheduled around the deadline, in random order, half before it
    rng = random.Random(4)
    schedule = [(deadline + (rng.random() * 2 - 1) * SPREAD, request.pk) for request in requests]
    rng.shuffle(schedule)
    slices = [sorted(schedule[i::GRANT_THREADS]) for i in range(GRANT_THREADS)]
    officer_ids = [people["alice"].pk, people["adam"].pk]

    outcomes: dict[int, str] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    grants_done = threading.Event()
    start = threading.Barrier(GRANT_THREADS + EXPIRY_THREADS)

    def granter(index: int) -> None:
        try:
            officer = User.objects.get(pk=officer_ids[index % 2])
            start.wait()
            for when, request_id in slices[index]:
                _sleep_until(when)
                try:
                    approval_grant(request_id=request_id, acting_user=officer, reason="race")
                    result = "granted"
                except Conflict as exc:
                    result = exc.code
                with lock:
                    outcomes[request_id] = result
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def sweeper() -> None:
        try:
            start.wait()
            _sleep_until(deadline - timedelta(milliseconds=5))
            give_up = deadline + timedelta(seconds=30)
            while timezone.now() < give_up:
                approval_expire_due_task()  # the beat task itself, in this thread
                pending = ApprovalRequest.objects.filter(status="pending").exists()
                if grants_done.is_set() and not pending:
                    return
                time.sleep(0.001)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    granters = [threading.Thread(target=granter, args=(i,)) for i in range(GRANT_THREADS)]
    sweepers = [threading.Thread(target=sweeper) for _ in range(EXPIRY_THREADS)]
    # when grants and the expiry task run concurrently across the deadline
    for thread in granters + sweepers:
        thread.start()
    for thread in granters:
        thread.join(60)
    grants_done.set()
    for thread in sweepers:
        thread.join(60)

    # then no thread failed in any other way than losing the race (no deadlock)
    assert errors == []
    assert len(outcomes) == N_REQUESTS
    final = {
        row["pk"]: row
        for row in ApprovalRequest.objects.values("pk", "status", "decided_at", "expires_at")
    }
    statuses = Counter(row["status"] for row in final.values())
    print(f"race: final {dict(statuses)}, grant calls {dict(Counter(outcomes.values()))}")
    # and every request is in exactly one final state
    assert set(statuses) <= {"granted", "expired"}
    assert sum(statuses.values()) == N_REQUESTS
    # and the race really happened: some grants won, some lost to the deadline
    assert statuses["granted"] > 0, statuses
    assert statuses["expired"] > 0, statuses
    # and each grant call's outcome agrees with the final state
    for request_id, result in outcomes.items():
        expected = "granted" if result == "granted" else "expired"
        assert final[request_id]["status"] == expected, (request_id, result)
    # and each request has exactly one final record, of its final state
    finals: dict[int, list[str]] = {}
    for event_type in ("APPROVAL_GRANTED", "APPROVAL_EXPIRED", "APPROVAL_DENIED"):
        for record in records(event_type):
            finals.setdefault(record["data"]["approval_id"], []).append(event_type)
            if event_type == "APPROVAL_GRANTED":
                # the record itself proves the grant came before the deadline
                assert record["data"]["decided_at_us"] < record["data"]["expires_at_us"]
    assert finals == {pk: [f"APPROVAL_{row['status'].upper()}"] for pk, row in final.items()}
    # and nothing was granted at or after its deadline
    for row in final.values():
        if row["status"] == "granted":
            assert row["decided_at"] < row["expires_at"]
            assert to_us(row["decided_at"]) < to_us(deadline)
    # and each request was resolved once, and one decision notice queued for it
    assert Counter(pk for _, pk in resolver.calls) == Counter(dict.fromkeys(final, 1))
    assert {what for what, _ in resolver.calls} <= {"grant", "expire"}
    decisions = Notification.objects.exclude(event_type="APPROVAL_REQUESTED")
    assert Counter(decisions.values_list("approval_id", flat=True)) == Counter(
        dict.fromkeys(final, 1)
    )
    # and the log is intact
    assert verify_log().ok
