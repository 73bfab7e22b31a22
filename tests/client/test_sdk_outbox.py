"""The durable outbox against a live server: delivery in order, receipts that
prove inclusion, resends that are duplicates, refusals that become dead letters."""

from __future__ import annotations

import sqlite3
import time

import pytest

from compliance_client import ComplianceClient, OutboxError, ProofError, Signer
from compliance_client.outbox import inspect

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def registered(register_bot):
    return lambda agent_id="sdk-bot": register_bot(agent_id)


def fills_on_server(agent_id: str) -> list[tuple[int, str]]:
    from audit.models import Record

    rows = Record.objects.filter(agent_id=agent_id, event_type="ORDER_FILLED").order_by("seq")
    return [(r.seq, r.as_dict()["source"]["envelope"]["payload"]["fill_id"]) for r in rows]


def test_outbox_delivers_fills_in_order_and_keeps_their_receipts(live_server, registered, tmp_path):
    signer, api_key = registered()
    client = ComplianceClient(live_server.url, api_key, signer, outbox_path=tmp_path / "bot.db")
    client.submit_order(order_id="o-1", market="BTC-USD", side="buy", quantity="100", price="10")
    answers = [
        client.fill(order_id="o-1", fill_id=f"f-{n}", quantity="1", price="10") for n in range(40)
    ]
    assert {a["status"] for a in answers} == {"queued"}

    assert client.flush(30) == 0
    on_server = fills_on_server("sdk-bot")
    assert [f for _, f in on_server] == [f"f-{n}" for n in range(40)]
    receipt = client.receipt(answers[7]["event_id"])
    assert receipt is not None
    assert receipt["seq"] == on_server[7][0]
    assert receipt["status"] == "created"
    assert len(receipt["leaf_hash"]) == 64
    assert client.order("o-1")["filled_quantity"] == "40"
    client.close()


def test_a_resend_after_a_lost_answer_is_a_duplicate_not_a_second_record(
    live_server, registered, tmp_path
):
    """The process died after the server stored a batch and before the outbox
    recorded it: the same bytes go again and the server answers `duplicate`."""
    signer, api_key = registered()
    path = tmp_path / "bot.db"
    client = ComplianceClient(live_server.url, api_key, signer, outbox_path=path)
    client.submit_order(order_id="o-1", market="BTC-USD", side="buy", quantity="10", price="10")
    client.sender.stop()  # hold the event in the outbox to read what will be sent
    first = client.fill(order_id="o-1", fill_id="f-1", quantity="1", price="10")
    with sqlite3.connect(path) as db:
        wire = db.execute("SELECT item FROM pending").fetchone()[0]
    client.close()
    client = ComplianceClient(live_server.url, api_key, signer, outbox_path=path)
    assert client.flush(30) == 0
    seq = client.receipt(first["event_id"])["seq"]
    client.close()

    with sqlite3.connect(path) as db:  # what a crash before settle() leaves behind
        db.execute("DELETE FROM delivered WHERE event_id = ?", (first["event_id"],))
        db.execute(
            "INSERT INTO pending (event_id, event_type, item, created_us) VALUES (?,?,?,0)",
            (first["event_id"], "ORDER_FILLED", wire),
        )

    again = ComplianceClient(live_server.url, api_key, signer, outbox_path=path)
    assert again.pending() == 1
    assert again.flush(30) == 0
    receipt = again.receipt(first["event_id"])
    assert receipt["status"] == "duplicate"
    assert receipt["seq"] == seq
    assert [f for _, f in fills_on_server("sdk-bot")] == ["f-1"]
    again.close()


def test_a_refused_event_goes_to_the_dead_letters_and_the_rest_are_delivered(
    live_server, registered, tmp_path
):
    signer, api_key = registered()
    client = ComplianceClient(live_server.url, api_key, signer, outbox_path=tmp_path / "bot.db")
    client.submit_order(order_id="o-1", market="BTC-USD", side="buy", quantity="10", price="10")
    with client.batch():
        client.fill(order_id="o-1", fill_id="f-1", quantity="1", price="10")
        bad = client.record("ORDER_FILLED", {"order_id": "o-1", "fill_id": "f-2", "quantity": "1"})
        client.fill(order_id="o-1", fill_id="f-3", quantity="1", price="10")
        client.record("NO_SUCH_TYPE", {"x": "1"})

    assert client.flush(30) == 0
    dead = client.dead_letters()
    assert [(d["event_type"], d["code"]) for d in dead] == [
        ("ORDER_FILLED", "schema_violation"),
        ("NO_SUCH_TYPE", "unknown_event_type"),
    ]
    assert dead[0]["event_id"] == bad["event_id"]
    assert dead[0]["http_status"] == 400
    assert dead[0]["detail"]
    assert [f for _, f in fills_on_server("sdk-bot")] == ["f-1", "f-3"]
    info = inspect(tmp_path / "bot.db")
    assert (info["pending"], info["dead_letters"], info["delivered"]) == (0, 2, 2)
    client.close()


def test_many_batches_arrive_in_order_with_refusals_and_events_written_meanwhile(
    live_server, registered, tmp_path
):
    """Batches of 4: the sender reads each next batch and settles the one
    before while a request is in flight. Order holds across batches, a
    refused event in the middle of the stream is a dead letter, and fills
    written while the sender runs all arrive, each once."""
    signer, api_key = registered()
    client = ComplianceClient(
        live_server.url, api_key, signer, outbox_path=tmp_path / "bot.db", batch_size=4
    )
    client.submit_order(order_id="o-1", market="BTC-USD", side="buy", quantity="100", price="10")
    with client.batch():
        for n in range(10):
            client.fill(order_id="o-1", fill_id=f"f-{n}", quantity="1", price="10")
        bad = client.record("ORDER_FILLED", {"order_id": "o-1", "fill_id": "f-x", "quantity": "1"})
        for n in range(10, 21):
            client.fill(order_id="o-1", fill_id=f"f-{n}", quantity="1", price="10")
    for n in range(21, 40):  # one commit each, while the sender delivers
        client.fill(order_id="o-1", fill_id=f"f-{n}", quantity="1", price="10")

    assert client.flush(30) == 0
    assert [f for _, f in fills_on_server("sdk-bot")] == [f"f-{n}" for n in range(40)]
    assert [(d["event_id"], d["code"]) for d in client.dead_letters()] == [
        (bad["event_id"], "schema_violation")
    ]
    info = inspect(tmp_path / "bot.db")
    assert (info["pending"], info["dead_letters"], info["delivered"]) == (0, 1, 40)
    client.close()


def test_the_same_venue_event_twice_is_one_event(live_server, registered, tmp_path):
    from compliance_client.venues import VenueEvent

    signer, api_key = registered()
    client = ComplianceClient(live_server.url, api_key, signer, outbox_path=tmp_path / "bot.db")
    client.submit_order(order_id="o-1", market="BTC-USD", side="buy", quantity="10", price="10")
    event = VenueEvent(
        "ORDER_FILLED",
        {"order_id": "o-1", "fill_id": "t-9", "quantity": "1", "price": "10", "venue": "binance"},
        int(time.time() * 1_000_000) - 60_000_000,  # a minute ago: inside the accepted window
        "binance:trade:BTCUSDT:1:9",
        "binance",
        "ms",
    )
    assert [r["status"] for r in client.record_venue([event])] == ["queued"]
    assert client.flush(30) == 0
    assert [r["status"] for r in client.record_venue([event])] == ["duplicate"]
    assert client.pending() == 0
    assert len(fills_on_server("sdk-bot")) == 1
    client.close()

    plain = ComplianceClient(live_server.url, api_key, signer)  # no outbox: the server dedups
    assert plain.record_venue([event])[0]["status"] == "duplicate"
    assert len(fills_on_server("sdk-bot")) == 1


def test_an_outbox_file_belongs_to_one_agent(tmp_path):
    path = tmp_path / "bot.db"
    ComplianceClient("http://127.0.0.1:9", "k", Signer.generate("a"), outbox_path=path).close()
    with pytest.raises(OutboxError, match="belongs to agent 'a'"):
        ComplianceClient("http://127.0.0.1:9", "k", Signer.generate("b"), outbox_path=path)


def test_a_bot_proves_its_event_is_in_the_log(live_server, registered, tmp_path):
    from audit.services.checkpoints import checkpoint_create

    signer, api_key = registered()
    client = ComplianceClient(live_server.url, api_key, signer, outbox_path=tmp_path / "bot.db")
    client.submit_order(order_id="o-1", market="BTC-USD", side="buy", quantity="10", price="10")
    answer = client.fill(order_id="o-1", fill_id="f-1", quantity="1", price="10")
    assert client.flush(30) == 0
    checkpoint_create(force=True)

    check = client.verify_inclusion(event_id=answer["event_id"])
    assert check.seq == client.receipt(answer["event_id"])["seq"]
    assert check.tree_size > check.seq

    with pytest.raises(ProofError, match="not the acknowledged"):
        client.verify_inclusion(seq=check.seq, leaf_hash="00" * 32)
    other = Signer.generate("x").public_key_b64  # a key that did not sign the checkpoint
    with pytest.raises(ProofError, match="does not verify"):
        client.verify_inclusion(event_id=answer["event_id"], log_public_key=other)
    client.close()
