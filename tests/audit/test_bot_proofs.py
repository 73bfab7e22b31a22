"""A bot reads the log key, the latest checkpoint and inclusion proofs for its
own records (the SDK's verify_inclusion), and nothing else of the log."""

from __future__ import annotations

import pytest

from audit.models import Record
from audit.services.checkpoints import checkpoint_create
from tests.conftest import fill_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_bots(make_bot):
    mine, theirs = make_bot("bot-1"), make_bot("bot-2")
    for n, bot in enumerate((mine, theirs, mine)):
        assert (
            bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload(n))]).status_code == 201
        )
    checkpoint_create(force=True)
    return mine, theirs


def seqs_of(agent_id: str) -> list[int]:
    return list(
        Record.objects.filter(agent_id=agent_id).order_by("seq").values_list("seq", flat=True)
    )


def test_bot_gets_the_log_key_and_the_latest_checkpoint(two_bots):
    mine, _ = two_bots
    assert mine.client.get("/api/v1/log/public-key/").json()["algorithm"] == "ed25519"
    assert mine.client.get("/api/v1/log/checkpoints/latest/").json()["tree_size"] >= 3


def test_bot_gets_inclusion_proofs_for_its_own_records_only(two_bots):
    mine, _ = two_bots
    size = Record.objects.count()
    own = mine.client.get(
        f"/api/v1/log/proofs/inclusion/?seq={seqs_of('bot-1')[0]}&tree_size={size}"
    )
    assert own.status_code == 200
    assert own.json()["hashes"]
    other = mine.client.get(
        f"/api/v1/log/proofs/inclusion/?seq={seqs_of('bot-2')[0]}&tree_size={size}"
    )
    assert other.status_code == 404


def test_bot_still_cannot_read_records_or_list_checkpoints(two_bots):
    mine, _ = two_bots
    assert mine.client.get("/api/v1/events/").status_code == 403
    assert mine.client.get("/api/v1/log/checkpoints/").status_code == 403
