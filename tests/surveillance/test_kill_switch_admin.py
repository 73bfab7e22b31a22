"""The kill switch admin page: activation and release go through a confirmation step."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import Record
from surveillance.models import KillSwitch

pytestmark = pytest.mark.django_db


def logged_in(people, name: str) -> Client:
    client = Client()
    client.force_login(people[name])
    return client


def test_activation_shows_a_confirmation_before_acting(people, bot, submit):
    submit(bot, quantity="3", price="100", order_id="o-1")
    rita = logged_in(people, "rita")
    page = rita.get("/admin/surveillance/killswitch/")
    assert b"Activate a kill switch" in page.content
    review = rita.post(
        "/admin/surveillance/killswitch/activate/",
        {"scope": "agent", "target": "bot-1", "reason": "runaway bot"},
    )
    assert review.status_code == 200
    assert b"Yes, activate the kill switch" in review.content
    assert b"Resting orders the bots will be told to cancel: 1" in review.content
    assert not KillSwitch.objects.exists()  # nothing happens before the confirmation
    done = rita.post(
        "/admin/surveillance/killswitch/activate/",
        {"scope": "agent", "target": "bot-1", "reason": "runaway bot", "confirm": "1"},
    )
    assert done.status_code == 302
    switch = KillSwitch.objects.get(active=True)
    assert switch.target == "bot-1"
    assert switch.activated_by == people["rita"]
    assert Record.objects.get(seq=switch.activated_seq).event_type == "KILL_SWITCH_ACTIVATED"
    assert submit(bot).json()["decision"] == "rejected"

    release = rita.get(f"/admin/surveillance/killswitch/{switch.pk}/release/")
    assert b"Yes, release the kill switch" in release.content
    rita.post(
        f"/admin/surveillance/killswitch/{switch.pk}/release/", {"reason": "fixed", "confirm": "1"}
    )
    assert not KillSwitch.objects.filter(active=True).exists()


def test_viewer_sees_switches_but_cannot_act(people):
    carol = logged_in(people, "carol")
    page = carol.get("/admin/surveillance/killswitch/")
    assert page.status_code == 200
    assert b"Activate a kill switch" not in page.content
    before = Record.objects.count()
    carol.post(
        "/admin/surveillance/killswitch/activate/",
        {"scope": "global", "reason": "x", "confirm": "1"},
    )
    assert not KillSwitch.objects.exists()
    assert Record.objects.count() == before


def test_the_confirmation_previews_a_market_named_in_lower_case(people, bot, submit):
    # given a resting order in BTC-USD
    submit(bot, quantity="3", price="100", order_id="o-1", market="BTC-USD")
    # when a risk manager reviews a market switch typed in lower case
    review = logged_in(people, "rita").post(
        "/admin/surveillance/killswitch/activate/",
        {"scope": "market", "target": "btc-usd", "reason": "halt"},
    )
    # then the preview covers the market the switch will stop (ids are upper-cased)
    assert b"Resting orders the bots will be told to cancel: 1" in review.content
    assert not KillSwitch.objects.exists()
