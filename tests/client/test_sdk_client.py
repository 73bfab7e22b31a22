"""The bot SDK against a live server (pytest-django's live_server)."""

from __future__ import annotations

import pytest

from compliance_client.client import ComplianceClient, ComplianceError
from compliance_client.signing import Signer

pytestmark = pytest.mark.django_db(transaction=True)


def test_bot_submits_fills_and_cancels_through_the_sdk(live_server, people):
    from audit.services.agents import agent_register

    signer = Signer.generate("sdk-bot")
    _, _, api_key = agent_register(
        agent_id="sdk-bot",
        name="SDK",
        public_key=signer.public_key_b64,
        owner=people["bob"],
        acting_user=people["rita"],
    )
    client = ComplianceClient(live_server.url, api_key, signer, retries=1, backoff=0.01)
    decision = client.submit_order(
        order_id="o-1", market="BTC-USD", side="buy", quantity="2", price="100"
    )
    assert decision.accepted
    assert decision.status == "open"
    assert (
        client.fill(order_id="o-1", fill_id="f-1", quantity="1", price="100")["status"] == "created"
    )
    assert client.order("o-1")["status"] == "partially_filled"
    assert client.cancel(order_id="o-1", reason="done")["status"] == "created"
    assert client.order("o-1")["status"] == "canceled"
    with pytest.raises(ComplianceError) as refused:
        client.submit_order(order_id="o-1", market="BTC-USD", side="buy", quantity="2", price="100")
    assert refused.value.status == 409
    assert refused.value.code == "order_id_conflict"
    # the venue refuses an accepted order: reported, and the order is rejected
    assert client.submit_order(
        order_id="o-2", market="BTC-USD", side="sell", quantity="1", price="101"
    ).accepted
    refusal = client.venue_rejected(order_id="o-2", reason="price band", venue_code="17")
    assert refusal["status"] == "created"
    assert client.order("o-2")["status"] == "rejected"
    client.close()


def test_bot_hears_of_a_cancel_request_through_the_sdk(live_server, people):
    from audit.services.agents import agent_register
    from surveillance.services.orders import order_cancel_request

    signer = Signer.generate("sdk-bot")
    agent, _, api_key = agent_register(
        agent_id="sdk-bot",
        name="SDK",
        public_key=signer.public_key_b64,
        owner=people["bob"],
        acting_user=people["rita"],
    )
    client = ComplianceClient(live_server.url, api_key, signer, retries=1, backoff=0.01)
    first = client.submit_order(
        order_id="o-1", market="BTC-USD", side="buy", quantity="1", price="100"
    )
    assert first.cancel_orders == []
    # bob, who owns the bot, asks for o-1 to be canceled
    order_cancel_request(agent=agent, order_id="o-1", reason="desk", acting_user=people["bob"])
    second = client.submit_order(
        order_id="o-2", market="BTC-USD", side="buy", quantity="1", price="101"
    )
    assert second.cancel_orders == ["o-1"]
    assert client.order("o-1")["cancel_requested"] is True
    client.cancel(order_id="o-1", reason="asked by desk")
    third = client.submit_order(
        order_id="o-3", market="BTC-USD", side="buy", quantity="1", price="102"
    )
    assert third.cancel_orders == []
    client.close()
