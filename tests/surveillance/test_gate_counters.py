"""The gate's incremental state: per-agent order counters in time buckets and
the firm's gross exposure. Each must give exactly what counting the orders and
summing the markets gives, at every bucket boundary and after every flow that
changes them."""

from __future__ import annotations

import importlib
import time
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from approvals.services import approval_expire_due
from surveillance.checks import Intent
from surveillance.models import AgentOrderCount, FirmExposure, FirmRisk, MarketRisk, Order
from surveillance.services import risk
from surveillance.services.config import limits_current
from surveillance.services.counters import bucket_starts, counters_prune, counters_rebuild
from surveillance.services.snapshot import snapshot_for

pytestmark = pytest.mark.django_db

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 3600 * SECOND


class Clock:
    def __init__(self, now: int):
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The gate's clock (orders' created_at_us), pinned; starts on a whole hour
    ten hours ahead, so every bucket boundary is at a known offset."""
    hour = (time.time_ns() // 1000 // HOUR + 10) * HOUR
    sim = Clock(hour)
    monkeypatch.setattr("surveillance.services.gate.now_us", sim)
    return sim


def submit_at(clock: Clock, at: int, submit: Any, handle: Any, **kwargs: Any) -> dict[str, Any]:
    clock.now = at
    response = submit(handle, **kwargs)
    assert response.status_code == 201, response.content
    return response.json()


def cancel(handle: Any, *order_ids: str) -> None:
    items = [
        handle.signer.item("ORDER_CANCELED", {"order_id": oid, "reason": "test"})
        for oid in order_ids
    ]
    assert handle.post_events(items).status_code == 201


def counted(agent: Any, since: int, *, live: bool = False) -> Any:
    orders = Order.objects.filter(agent=agent, created_at_us__gte=since)
    return orders.exclude(decision="rejected") if live else orders


def expected_buckets() -> dict[tuple[int, int, int], list[int]]:
    """Every bucket recounted from the orders table."""
    out: dict[tuple[int, int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for order in Order.objects.all():
        live = order.decision != "rejected"
        for width, start in bucket_starts(order.created_at_us):
            row = out[(order.agent_id, width, start)]
            row[0] += 1
            row[1] += live
            row[2] += live and order.status == Order.Status.CANCELED
    return dict(out)


def stored_buckets() -> dict[tuple[int, int, int], list[int]]:
    return {
        (r.agent_id, r.width_s, r.start_us): [r.orders, r.live, r.cancels]
        for r in AgentOrderCount.objects.all()
        if r.orders or r.live or r.cancels
    }


def assert_gross_is_the_sum_over_markets() -> None:
    stored = FirmExposure.objects.get(name="firm").gross
    assert stored == risk.gross_exposure_recompute()


# -- counters -------------------------------------------------------------------


def test_snapshot_counts_equal_counting_the_orders_at_every_boundary(
    bot, make_bot, submit, clock, set_config
):
    set_config(regulatory_limits={"restricted_markets": ["X"]})
    other = make_bot("bot-2", owner="bob")
    h = clock.now
    # Orders on both sides of second, minute and hour boundaries, to the microsecond.
    offsets = [
        -HOUR - SECOND // 2, -HOUR, -MINUTE - 1, -MINUTE, -MINUTE + 1, -SECOND, -300_000,
        -1, 0, 1, SECOND // 2, SECOND - 1, SECOND, 59 * SECOND, MINUTE, MINUTE + 1,
        MINUTE + 1_500_000, 2 * MINUTE - 1, HOUR - 1, HOUR,
    ]  # fmt: skip
    for n, offset in enumerate(offsets):
        # Every fourth one rejected (restricted market): counted by the rate
        # limit, not by the cancel ratio.
        market = "X" if n % 4 == 3 else "BTC-USD"
        body = submit_at(clock, h + offset, submit, bot, market=market, order_id=f"o-{n}")
        assert body["decision"] == ("rejected" if market == "X" else "accepted")
        submit_at(clock, h + offset, submit, other, order_id=f"p-{n}")
    cancel(bot, *[f"o-{n}" for n in range(0, len(offsets), 3)])
    assert Order.objects.filter(agent=bot.agent, status="canceled").count() == 5

    lim = limits_current()
    intent = Intent("bot-1", "BTC-USD", "buy", Decimal(1), Decimal(1))
    firm = FirmRisk.objects.get(name="firm")
    probes = sorted({h + o + d for o in offsets for d in (-1, 0, 1)} | {h + 2 * HOUR})
    windows = [1, 59, 60, 61, 3599, 3600, 3601, 7200]
    for now in probes:
        for window in windows:
            snap, _ = snapshot_for(bot.agent, intent, lim, firm=firm, now=now, window_secs=window)
            since = now - window * SECOND
            key = (now - h, window)
            assert snap.agent_orders_last_minute == counted(bot.agent, now - MINUTE).count(), key
            assert snap.agent_orders_in_window == counted(bot.agent, since, live=True).count(), key
            assert (
                snap.agent_cancels_in_window
                == counted(bot.agent, since, live=True).filter(status="canceled").count()
            ), key
    assert stored_buckets() == expected_buckets()


@pytest.mark.parametrize(
    "start", [700_000, -300_000, 0], ids=["mid-second", "before-hour", "on-hour"]
)
def test_rate_limit_counts_the_order_exactly_one_minute_old(
    bot, make_bot, submit, clock, set_config, start
):
    set_config(regulatory_limits={"max_orders_per_minute": 3, "duplicate_window_secs": 0})
    late = make_bot("bot-2", owner="bob")
    t1 = clock.now + start
    for handle in (bot, late):
        for n, at in enumerate([t1, t1 + 30 * SECOND, t1 + MINUTE - 100_000]):
            assert submit_at(clock, at, submit, handle)["decision"] == "accepted", n
    # Exactly one minute after the first: it is still inside the minute.
    body = submit_at(clock, t1 + MINUTE, submit, bot)
    assert body["decision"] == "rejected"
    assert [(r["code"], r["limit"], r["value"]) for r in body["reasons"]] == [("rate_limit", 3, 4)]
    # A microsecond later it is not.
    assert submit_at(clock, t1 + MINUTE + 1, submit, late)["decision"] == "accepted"


@pytest.mark.parametrize("start", [700_000, -300_000], ids=["mid-second", "before-hour"])
def test_cancel_ratio_window_slides_to_the_microsecond(
    bot, make_bot, submit, clock, set_config, start
):
    set_config(
        surveillance_window_secs=60,
        regulatory_limits={
            "max_cancel_ratio": "0.5",
            "cancel_ratio_min_orders": 4,
            "duplicate_window_secs": 0,
        },
    )
    late = make_bot("bot-2", owner="bob")
    t1 = clock.now + start
    for handle in (bot, late):
        for n in range(4):
            submit_at(clock, t1 + n * 10 * SECOND, submit, handle, order_id=f"c-{n}")
        cancel(handle, "c-0", "c-1", "c-2")
    body = submit_at(clock, t1 + MINUTE, submit, bot)
    assert [(r["code"], r["value"]) for r in body["reasons"]] == [("max_cancel_ratio", "0.75")]
    # The first order has left the window: three live orders, under the minimum of four.
    assert submit_at(clock, t1 + MINUTE + 1, submit, late)["decision"] == "accepted"


def test_counters_follow_cancels_fills_and_refusals_through_the_api(
    approvals_on, bot, submit, clock, client_for, order_item
):
    h = clock.now
    for n in range(6):
        submit_at(clock, h + n * 700_000, submit, bot, quantity="5", order_id=f"o-{n}")
    held = submit_at(clock, h + 5 * SECOND, submit, bot, quantity="60", order_id="big")
    assert held["decision"] == "held"
    items = [
        bot.signer.item(
            "ORDER_FILLED", {"order_id": "o-1", "fill_id": "a", "quantity": "5", "price": "100"}
        ),
        bot.signer.item("ORDER_CANCELED", {"order_id": "o-1", "reason": "filled already"}),
        bot.signer.item(
            "ORDER_FILLED", {"order_id": "o-2", "fill_id": "b", "quantity": "2", "price": "100"}
        ),
        bot.signer.item("ORDER_CANCELED", {"order_id": "o-2", "reason": "rest"}),
        bot.signer.item("ORDER_CANCELED", {"order_id": "o-2", "reason": "again"}),
        bot.signer.item("ORDER_CANCELED", {"order_id": "o-3", "reason": "x"}),
        bot.signer.item("ORDER_CANCELED", {"order_id": "ghost", "reason": "unknown"}),
    ]
    assert bot.post_events(items).status_code == 201
    cancel(bot, "o-3")  # canceled twice, counted once
    # A denied held order is not a cancel; a refused order_id and a resend change nothing.
    client_for("alice").post(
        f"/api/v1/approvals/{held['approval']['id']}/deny/", {"reason": "no"}, format="json"
    )
    before = stored_buckets()
    assert submit(bot, order_id="o-0").status_code == 409
    item = order_item(bot, order_id="o-9")
    assert bot.client.post("/api/v1/orders/", item, format="json").status_code == 201
    after_one = stored_buckets()
    assert bot.client.post("/api/v1/orders/", item, format="json").status_code == 200
    assert stored_buckets() == after_one != before

    statuses = dict(Order.objects.values_list("order_id", "status"))
    assert (statuses["o-1"], statuses["o-2"], statuses["o-3"]) == ("filled", "canceled", "canceled")
    assert statuses["big"] == "rejected"
    assert stored_buckets() == expected_buckets()
    seconds = {
        (w, s): counts for (a, w, s), counts in stored_buckets().items() if a == bot.agent.pk
    }
    # o-0..o-5, big and o-9 (the refused o-0 rolled back): two cancels.
    assert seconds[(60, h)] == [8, 8, 2]


def test_rebuild_and_migration_backfill_match_the_incremental_counters(
    bot, submit, clock, set_config
):
    set_config(regulatory_limits={"restricted_markets": ["X"]})
    h = clock.now
    for n in range(8):
        market = "X" if n == 5 else "BTC-USD"
        submit_at(clock, h + n * 37 * SECOND, submit, bot, market=market, order_id=f"o-{n}")
    cancel(bot, "o-1", "o-4")
    incremental = stored_buckets()
    assert incremental == expected_buckets()

    counters_rebuild()
    assert stored_buckets() == incremental

    gross = FirmExposure.objects.get(name="firm").gross
    AgentOrderCount.objects.all().delete()
    FirmExposure.objects.all().delete()
    FirmRisk.objects.update(config_version=None, config_hash="")
    migration = importlib.import_module("surveillance.migrations.0004_gate_counters")
    from django.apps import apps

    migration.backfill(apps, SimpleNamespace(connection=connection))
    assert stored_buckets() == incremental
    assert FirmExposure.objects.get(name="firm").gross == gross
    firm = FirmRisk.objects.get(name="firm")
    assert (firm.config_version, firm.config_hash) == (
        limits_current().version,
        limits_current().hash,
    )


def test_prune_keeps_every_bucket_a_window_can_read(bot, submit, clock):
    h = clock.now
    submit_at(clock, h - 31 * 86400 * SECOND, submit, bot, order_id="old")
    submit_at(clock, h - 29 * 86400 * SECOND, submit, bot, order_id="recent")
    assert counters_prune(now_us=h) == 3
    kept = stored_buckets()
    assert sorted(w for (_, w, _) in kept) == [1, 60, 3600]
    assert {s for (_, _, s) in kept} == {h - 29 * 86400 * SECOND}


# -- gross exposure ---------------------------------------------------------------


def test_gross_exposure_row_is_the_sum_over_markets_through_every_flow(
    approvals_on, bot, make_bot, submit, client_for, set_config
):
    other = make_bot("bot-2", owner="bob")
    submit(bot, quantity="5", price="100", order_id="o-1")
    submit(bot, market="ETH-USD", quantity="3", price="10", side="sell", order_id="o-2")
    submit(other, quantity="2", price="99", order_id="p-1")
    assert_gross_is_the_sum_over_markets()
    assert FirmExposure.objects.get().gross == Decimal("7") * Decimal("99") + Decimal("30")

    # fills move positions and the mark; a cancel drops what rests
    bot.post_events(
        [
            bot.signer.item(
                "ORDER_FILLED",
                {"order_id": "o-1", "fill_id": "f", "quantity": "2", "price": "101.25"},
            ),
            bot.signer.item("ORDER_CANCELED", {"order_id": "o-1", "reason": "rest"}),
        ]
    )
    assert_gross_is_the_sum_over_markets()
    other.post_events(
        [
            other.signer.item(
                "POSITION_CHANGED", {"market": "SOL-USD", "quantity": "-4", "price": "7.5"}
            ),
            other.signer.item(
                "POSITION_CHANGED", {"market": "BTC-USD", "quantity": "1", "price": "98"}
            ),
        ]
    )
    assert_gross_is_the_sum_over_markets()

    # an amendment releases and reserves again
    amend = bot.signer.item("ORDER_AMENDED", {"order_id": "o-2", "quantity": "4", "price": "11"})
    assert bot.client.post("/api/v1/orders/", amend, format="json").json()["decision"] == "accepted"
    assert_gross_is_the_sum_over_markets()

    # held orders: denied and expired ones release their reservation
    denied = submit(bot, quantity="60", price="100", order_id="big-1").json()
    expiring = submit(bot, market="ETH-USD", quantity="600", price="10", order_id="big-2").json()
    assert denied["decision"] == expiring["decision"] == "held"
    assert_gross_is_the_sum_over_markets()
    client_for("alice").post(
        f"/api/v1/approvals/{denied['approval']['id']}/deny/", {"reason": "no"}, format="json"
    )
    assert_gross_is_the_sum_over_markets()
    assert approval_expire_due(now=timezone.now() + timedelta(seconds=301)) == 1
    assert_gross_is_the_sum_over_markets()

    # the kill switch rejects without reserving, and release lets orders reserve again
    rita = client_for("rita")
    rita.post(
        "/api/v1/kill-switch/",
        {"action": "activate", "scope": "global", "reason": "drill"},
        format="json",
    )
    before = FirmExposure.objects.get().gross
    assert submit(bot, quantity="1", price="100").json()["decision"] == "rejected"
    assert FirmExposure.objects.get().gross == before
    rita.post(
        "/api/v1/kill-switch/",
        {"action": "deactivate", "scope": "global", "reason": "over"},
        format="json",
    )
    assert submit(bot, quantity="1", price="100").json()["decision"] == "accepted"
    assert_gross_is_the_sum_over_markets()
    assert MarketRisk.objects.count() == 3


def test_gross_exposure_limit_uses_the_kept_row(bot, submit, set_config):
    set_config(regulatory_limits={"max_total_notional": "1000", "max_concentration_pct": None})
    assert submit(bot, market="A", quantity="5", price="100").json()["decision"] == "accepted"
    # A fill at a higher price re-marks market A: 5 * 150 = 750 of the 1000.
    bot.post_events(
        [
            bot.signer.item(
                "ORDER_FILLED", {"order_id": "o-1", "fill_id": "f", "quantity": "1", "price": "150"}
            )
        ]
    )
    assert FirmExposure.objects.get().gross == 750
    body = submit(bot, market="B", quantity="3", price="100").json()
    assert [(r["code"], r["value"]) for r in body["reasons"]] == [("max_total_notional", "1050")]
    assert submit(bot, market="B", quantity="2", price="100").json()["decision"] == "accepted"


def test_gross_exposure_row_is_rebuilt_from_the_markets_when_missing(bot, submit):
    submit(bot, quantity="5", price="100")
    FirmExposure.objects.all().delete()
    submit(bot, market="ETH-USD", quantity="1", price="10")
    assert FirmExposure.objects.get().gross == 510
    assert_gross_is_the_sum_over_markets()


def test_snapshot_sums_read_exactly_what_was_stored(bot):
    """The agent's day notional is a sum over its markets. SQLite sums its
    decimals as floats (0.1 + 0.2 = 0.30000000000000004); the snapshot reads
    the decimal that was stored, as PostgreSQL's numeric sum gives it."""
    from surveillance.models import AgentMarketRisk

    for market, notional in (("BTC-USD", "0.1"), ("ETH-USD", "0.2")):
        AgentMarketRisk.objects.create(
            agent=bot.agent, market=market, day=timezone.now().date(), day_notional=notional
        )
    lim = limits_current()
    intent = Intent("bot-1", "BTC-USD", "buy", Decimal(1), Decimal(1))
    firm = FirmRisk.objects.get_or_create(name="firm")[0]
    snap, _ = snapshot_for(bot.agent, intent, lim, firm=firm, now=int(time.time() * 1_000_000))
    assert snap.agent_day_notional == Decimal("0.3")
