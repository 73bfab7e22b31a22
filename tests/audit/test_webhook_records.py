"""Webhooks for every record (issue 16): a subscription may name trading event
types; each record is delivered once, with the record and its leaf hash."""

from __future__ import annotations

import json
from typing import Any

import pytest

from audit.models import Record, WebhookDelivery, WebhookMessage
from audit.webhooks.records import webhook_records_fanout
from audit.webhooks.tasks import webhook_sweep_task
from compliance_client.bundle import record_leaf_hash
from tests.audit import test_webhooks as hooks
from tests.audit.test_webhooks import Receiver, drain, register
from tests.conftest import fill_payload

pytestmark = pytest.mark.django_db

# the webhook tests' real local receiver and fast retry settings
fast_webhooks = hooks.fast_webhooks
receiver = hooks.receiver


def bodies(server: Receiver) -> list[dict[str, Any]]:
    return [json.loads(body) for _, body, _ in server.requests]


def test_a_subscription_to_order_filled_receives_each_fill_once_with_record_and_leaf_hash(
    bot: Any, people: Any, fast_webhooks: Any, receiver: Receiver
) -> None:
    register(people, receiver.url, ["ORDER_FILLED"])
    fills = [bot.signer.item("ORDER_FILLED", fill_payload(n)) for n in range(3)]
    assert bot.post_events(fills[:2]).status_code == 201
    webhook_sweep_task()  # the beat: fan out, then send
    assert bot.post_events(fills).status_code == 201  # two resent (duplicates) and one new
    cancel = bot.signer.item("ORDER_CANCELED", {"order_id": "o-1", "reason": "test"})
    assert bot.post_events([cancel]).status_code == 201
    for _ in range(3):  # the sweep running again, and concurrently queued fan-outs
        webhook_records_fanout()
        webhook_sweep_task()
    drain()

    got = bodies(receiver)
    assert [b["type"] for b in got] == ["ORDER_FILLED"] * 3
    assert sorted(b["data"]["record"]["source"]["envelope"]["payload"]["fill_id"] for b in got) == [
        "f-0",
        "f-1",
        "f-2",
    ]
    for body in got:
        record = body["data"]["record"]
        stored = Record.objects.get(seq=body["data"]["seq"])
        assert body["data"]["leaf_hash"] == record["leaf_hash"] == bytes(stored.leaf_hash).hex()
        assert record_leaf_hash(record).hex() == body["data"]["leaf_hash"]  # it checks out
    assert len({h["webhook-id"] for h, _, _ in receiver.requests}) == 3
    assert WebhookMessage.objects.filter(event_type="ORDER_FILLED").count() == 3


def test_records_all_streams_every_record_but_not_the_notice_types_twice(
    bot: Any, people: Any, fast_webhooks: Any, receiver: Receiver
) -> None:
    register(people, receiver.url, ["records:*", "*"])
    start = Record.objects.count()
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload(1))])
    from surveillance.services.kill_switch import kill_switch_activate

    kill_switch_activate(scope="global", target=None, reason="drill", acting_user=people["rita"])
    webhook_sweep_task()
    drain()
    types = [b["type"] for b in bodies(receiver)]
    new_records = list(Record.objects.filter(seq__gte=start).values_list("event_type", flat=True))
    # every record since the subscription, the kill switch once (as its notice)
    assert types.count("KILL_SWITCH_ACTIVATED") == 1
    assert sorted(t for t in types if t != "KILL_SWITCH_ACTIVATED") == sorted(
        t for t in new_records if t != "KILL_SWITCH_ACTIVATED"
    )


def test_no_subscriber_no_messages_and_a_new_subscription_starts_from_now(
    bot: Any, people: Any, fast_webhooks: Any, receiver: Receiver
) -> None:
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload(1))])
    assert webhook_records_fanout() == []
    register(people, receiver.url, ["ORDER_FILLED"])
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload(2))])
    webhook_records_fanout()
    [delivery] = WebhookDelivery.objects.select_related("message")
    assert (
        json.loads(delivery.message.body)["data"]["record"]["source"]["envelope"]["payload"][
            "fill_id"
        ]
        == "f-2"
    )


def test_an_officer_subscribes_to_trading_types_through_the_api(
    client_for: Any, fast_webhooks: Any, receiver: Receiver
) -> None:
    response = client_for("alice").post(
        "/api/v1/webhooks/",
        {"url": receiver.url, "event_types": ["ORDER_FILLED", "ORDER_SUBMITTED", "records:*"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    denied = client_for("carol").post(
        "/api/v1/webhooks/", {"url": receiver.url, "event_types": ["ORDER_FILLED"]}, format="json"
    )
    assert denied.status_code == 403
