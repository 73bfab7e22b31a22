from tests.conftest import fill_payload


def test_bot_event_is_stored_with_seq_and_hashes(bot):
    # given a registered bot, when it reports a fill
    item = bot.signer.item("ORDER_FILLED", fill_payload())
    response = bot.post_events([item])
    # then the event is appended after the registration record
    assert response.status_code == 201, response.content
    result = response.json()["results"][0]
    assert result["status"] == "created"
    assert result["seq"] == 1
