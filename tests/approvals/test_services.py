"""Open, grant and deny: every transition and every refusal. Each refusal also
proves that nothing changed and no record was written."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.db import transaction

from approvals.models import ApprovalRequest, Notification
from approvals.registry import UnknownKind
from approvals.services import (
    approval_deny,
    approval_expire_due,
    approval_grant,
    approval_open,
    to_us,
)
from audit.models import Record
from compliance_site.exceptions import Conflict, Forbidden, Invalid, NotFound

from .conftest import records
from .factories import TEST_KIND, ApprovalRequestFactory, open_overdue

pytestmark = pytest.mark.django_db


# --- open ---------------------------------------------------------------------------


def test_open_holds_a_pending_request_with_its_record_and_notices(resolver, bot):
    # given a bot's order that needs a human
    # when the gate opens a request for it
    request = ApprovalRequestFactory(requested_by_agent=bot.agent, subject_id="o-1")

    # then it is pending for the timeout, with the summary frozen as asked
    request.refresh_from_db()
    assert request.status == ApprovalRequest.Status.PENDING
    assert (request.expires_at - request.requested_at).total_seconds() == 300
    assert request.summary["notional"] == "75001.5"
    # and APPROVAL_REQUESTED is recorded, by the agent, with what is asked
    [record] = records("APPROVAL_REQUESTED", request.pk)
    assert record["actor"] == {"type": "agent", "id": bot.agent.agent_id}
    assert record["data"]["summary"] == request.summary
    assert record["data"]["expires_at_us"] == to_us(request.expires_at)
    # and a webhook and an email notice wait in the outbox, tied to that record
    notices = Notification.objects.filter(approval=request).order_by("channel")
    assert [(n.channel, n.event_type) for n in notices] == [
        ("email", "APPROVAL_REQUESTED"),
        ("webhook", "APPROVAL_REQUESTED"),
    ]
    seq = Record.objects.get(event_type="APPROVAL_REQUESTED").seq
    assert {n.seq for n in notices} == {seq}
    assert notices[1].payload["approval"]["agent_id"] == bot.agent.agent_id
    # and nothing is resolved yet
    assert resolver.calls == []


def test_open_stores_decimals_as_decimal_strings(resolver):
    # when a summary carries Decimal amounts
    request = ApprovalRequestFactory(summary={"notional": Decimal("5000.10")})
    # then they are stored and recorded as exact decimal strings
    request.refresh_from_db()
    assert request.summary == {"notional": "5000.10"}
    assert records("APPROVAL_REQUESTED", request.pk)[0]["data"]["summary"] == {
        "notional": "5000.10"
    }


def test_open_refuses_a_float_in_the_summary(resolver, snapshot):
    before = snapshot()
    # when the summary holds a float
    with pytest.raises(Invalid) as exc:
        ApprovalRequestFactory(summary={"notional": 5000.1})
    # then nothing is opened or recorded
    assert exc.value.code == "float_not_allowed"
    assert snapshot() == before


def test_open_refuses_a_kind_without_resolver(people, snapshot):
    before = snapshot()
    with pytest.raises(UnknownKind):
        approval_open(kind="nobody_handles_this", subject_id="x", summary={})
    assert snapshot() == before


@pytest.mark.parametrize("timeout", [0, -5, 10**9])
def test_open_refuses_a_timeout_out_of_range(resolver, snapshot, timeout):
    before = snapshot()
    with pytest.raises(Invalid) as exc:
        ApprovalRequestFactory(timeout_secs=timeout)
    assert exc.value.code == "invalid_timeout"
    assert snapshot() == before


def test_open_in_a_rolled_back_transaction_leaves_nothing(resolver, snapshot):
    # given the caller's change fails after the request was opened
    before = snapshot()
    with pytest.raises(RuntimeError), transaction.atomic():  # noqa: PT012 (rollback)
        ApprovalRequestFactory()
        raise RuntimeError("the gate failed later")
    # then the request, its record and its notices went with it
    assert snapshot() == before


def test_open_mails_everyone_who_may_decide_after_commit(
    resolver, people, django_capture_on_commit_callbacks
):
    # given officers and others with email addresses
    for name in ("alice", "adam", "carol", "bob"):
        people[name].email = f"{name}@firm.test"
        people[name].save()
    # when a request is opened and the transaction commits
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        request = ApprovalRequestFactory(subject_id="o-77")
    # then no mail left inside the transaction
    assert mail.outbox == []
    for callback in callbacks:
        callback()
    # then one mail went to the compliance officer and the admin only
    [message] = mail.outbox
    assert sorted(message.to) == ["adam@firm.test", "alice@firm.test"]
    assert "o-77" in message.subject
    assert "notional: 75001.5" in message.body
    notice = Notification.objects.get(approval=request, channel="email")
    assert notice.sent_at is not None
    assert notice.attempts == 1


# --- grant and deny -----------------------------------------------------------------


def test_compliance_officer_grants_a_pending_request(resolver, people, bot):
    # given a pending request from bob's bot
    request = ApprovalRequestFactory(requested_by_agent=bot.agent)
    # when alice grants it with a reason
    granted = approval_grant(
        request_id=request.pk, acting_user=people["alice"], reason="  ok, hedged  "
    )
    # then it is granted by her, before its deadline, with the reason
    request.refresh_from_db()
    assert request.status == ApprovalRequest.Status.GRANTED == granted.status
    assert request.decided_by == people["alice"]
    assert request.reason == "ok, hedged"
    assert request.decided_at < request.expires_at
    # and exactly one APPROVAL_GRANTED record says so
    [record] = records("APPROVAL_GRANTED", request.pk)
    assert record["actor"] == {"type": "user", "id": "alice"}
    assert record["data"]["reason"] == "ok, hedged"
    assert record["data"]["decided_at_us"] == to_us(request.decided_at)
    assert record["data"]["decided_at_us"] < record["data"]["expires_at_us"]
    # and the kind's resolver carried it out, and the bot will be told
    assert resolver.calls == [("grant", request.pk)]
    assert Notification.objects.filter(
        approval=request, channel="webhook", event_type="APPROVAL_GRANTED", seq=record["seq"]
    ).exists()


def test_admin_denies_a_pending_request(resolver, people, bot):
    request = ApprovalRequestFactory(requested_by_agent=bot.agent)
    approval_deny(request_id=request.pk, acting_user=people["adam"], reason="too large")
    request.refresh_from_db()
    assert request.status == ApprovalRequest.Status.DENIED
    assert request.decided_by == people["adam"]
    [record] = records("APPROVAL_DENIED", request.pk)
    assert record["data"]["reason"] == "too large"
    assert records("APPROVAL_GRANTED") == []
    assert resolver.calls == [("deny", request.pk)]
    assert Notification.objects.filter(approval=request, event_type="APPROVAL_DENIED").count() == 1


@pytest.mark.parametrize("decide", [approval_grant, approval_deny])
@pytest.mark.parametrize("name", ["carol", "bob", "oscar", "rita"])
def test_refuses_a_decision_from_a_role_below_compliance_officer(
    resolver, people, bot, snapshot, decide, name
):
    request = ApprovalRequestFactory(requested_by_agent=bot.agent)
    before = snapshot()
    with pytest.raises(Forbidden) as exc:
        decide(request_id=request.pk, acting_user=people[name], reason="mine")
    assert exc.value.code == "permission_denied"
    assert snapshot() == before
    assert resolver.calls == []


def test_refuses_a_decision_from_a_bot(resolver, people, bot, snapshot):
    from accounts.authentication import AgentPrincipal

    request = ApprovalRequestFactory(requested_by_agent=bot.agent)
    before = snapshot()
    with pytest.raises(Forbidden):
        approval_grant(request_id=request.pk, acting_user=AgentPrincipal(bot.agent), reason="me")
    assert snapshot() == before


@pytest.mark.parametrize("decide", [approval_grant, approval_deny])
def test_refuses_the_requester_deciding_their_own_request(resolver, people, snapshot, decide):
    # given alice herself asked for the action
    request = ApprovalRequestFactory(requested_by_user=people["alice"])
    before = snapshot()
    # when she tries to decide it
    with pytest.raises(Forbidden) as exc:
        decide(request_id=request.pk, acting_user=people["alice"], reason="self")
    # then four eyes refuse, and nothing changed
    assert exc.value.code == "four_eyes_requester"
    assert snapshot() == before
    assert resolver.calls == []
    # while another officer may
    approval_grant(request_id=request.pk, acting_user=people["adam"], reason="second pair")
    assert ApprovalRequest.objects.get(pk=request.pk).status == "granted"


@pytest.mark.parametrize("decide", [approval_grant, approval_deny])
def test_refuses_the_owner_of_the_requesting_agent(resolver, people, make_bot, snapshot, decide):
    # given a bot owned by alice asked for the action
    alices_bot = make_bot("alice-bot", owner="alice")
    request = ApprovalRequestFactory(requested_by_agent=alices_bot.agent)
    before = snapshot()
    with pytest.raises(Forbidden) as exc:
        decide(request_id=request.pk, acting_user=people["alice"], reason="my bot is fine")
    assert exc.value.code == "four_eyes_owner"
    assert snapshot() == before
    assert resolver.calls == []


def test_refuses_the_owner_named_by_the_kinds_resolver(resolver, people, snapshot):
    # given the resolver says adam owns the subject (e.g. he proposed the config)
    resolver.owner = people["adam"]
    request = ApprovalRequestFactory()
    before = snapshot()
    with pytest.raises(Forbidden) as exc:
        approval_grant(request_id=request.pk, acting_user=people["adam"], reason="mine")
    assert exc.value.code == "four_eyes_owner"
    assert snapshot() == before


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (approval_grant, approval_grant),
        (approval_grant, approval_deny),
        (approval_deny, approval_grant),
        (approval_deny, approval_deny),
    ],
)
def test_refuses_deciding_a_request_already_decided(resolver, people, bot, snapshot, first, second):
    request = ApprovalRequestFactory(requested_by_agent=bot.agent)
    first(request_id=request.pk, acting_user=people["alice"], reason="first")
    before = snapshot()
    with pytest.raises(Conflict) as exc:
        second(request_id=request.pk, acting_user=people["adam"], reason="second")
    assert exc.value.code == "already_decided"
    assert snapshot() == before
    assert len(resolver.calls) == 1


@pytest.mark.parametrize("decide", [approval_grant, approval_deny])
def test_refuses_deciding_a_request_past_its_deadline_not_yet_swept(
    resolver, people, bot, snapshot, decide
):
    # given the deadline passed but the expiry task has not run yet
    request = open_overdue(requested_by_agent=bot.agent)
    assert ApprovalRequest.objects.get(pk=request.pk).status == "pending"
    before = snapshot()
    # when an officer decides it
    with pytest.raises(Conflict) as exc:
        decide(request_id=request.pk, acting_user=people["alice"], reason="late")
    # then it counts as expired: 409, still pending, nothing recorded
    assert exc.value.code == "expired"
    assert snapshot() == before
    assert resolver.calls == []


@pytest.mark.parametrize("decide", [approval_grant, approval_deny])
def test_refuses_deciding_an_expired_request(resolver, people, bot, snapshot, decide):
    request = open_overdue(requested_by_agent=bot.agent)
    assert approval_expire_due() == 1
    before = snapshot()
    with pytest.raises(Conflict) as exc:
        decide(request_id=request.pk, acting_user=people["alice"], reason="late")
    assert exc.value.code == "expired"
    assert snapshot() == before
    assert resolver.calls == [("expire", request.pk)]


@pytest.mark.parametrize("reason", ["", "   ", None, "x" * 2001])
def test_refuses_a_decision_without_a_usable_reason(resolver, people, bot, snapshot, reason):
    request = ApprovalRequestFactory(requested_by_agent=bot.agent)
    before = snapshot()
    with pytest.raises(Invalid):
        approval_grant(request_id=request.pk, acting_user=people["alice"], reason=reason)
    assert snapshot() == before


def test_deciding_an_unknown_request_is_not_found(resolver, people, snapshot):
    before = snapshot()
    with pytest.raises(NotFound):
        approval_grant(request_id=999_999, acting_user=people["alice"], reason="?")
    assert snapshot() == before


def test_a_failing_resolver_rolls_the_grant_back(resolver, people, bot, snapshot):
    # given the owning app cannot carry out the grant
    request = ApprovalRequestFactory(requested_by_agent=bot.agent)
    resolver.fail_on = {"grant"}
    before = snapshot()
    # when alice grants
    with pytest.raises(RuntimeError):
        approval_grant(request_id=request.pk, acting_user=people["alice"], reason="ok")
    # then the decision did not happen (fail closed): still pending, no record
    assert snapshot() == before


def test_a_kind_unregistered_after_opening_cannot_be_decided(resolver, people, snapshot):
    from approvals.registry import unregister_resolver

    request = ApprovalRequestFactory()
    unregister_resolver(TEST_KIND)
    before = snapshot()
    with pytest.raises(UnknownKind):
        approval_grant(request_id=request.pk, acting_user=people["alice"], reason="ok")
    assert snapshot() == before


@pytest.mark.parametrize(
    ("decide", "event_type"),
    [
        (approval_grant, "APPROVAL_GRANTED"),
        (approval_deny, "APPROVAL_DENIED"),
        (None, "APPROVAL_EXPIRED"),
    ],
)
def test_resolver_runs_after_the_approval_record_in_the_same_transaction(
    resolver, people, decide, event_type
):
    # The project's lock order is approval row -> log head -> domain rows, so the
    # resolver must find the approval's record already appended when it runs.
    seen: list[int] = []

    def note(request, *args):
        seen.append(len(records(event_type, request.pk)))

    resolver.on_grant = resolver.on_deny = resolver.on_expire = note
    if decide is None:
        open_overdue()
        approval_expire_due()
    else:
        request = ApprovalRequestFactory()
        decide(request_id=request.pk, acting_user=people["alice"], reason="ok")
    assert seen == [1]
