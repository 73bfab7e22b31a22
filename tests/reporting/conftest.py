"""A known trading day, built through the real gate, ingest, approvals and kill
switch services with the clock frozen at chosen moments, so every figure in a
report can be stated in advance.

Day D = Monday 2025-03-10 (UTC). Times below are on D unless said otherwise.

bot-a (owner bob), nothing abnormal:
  09:00 order a1 1 @ 100 accepted          09:01 order a2 2 @ 101 accepted
  09:02 fill a1 1 @ 100                    09:03 fill a2 1 @ 101 (partial)
  09:04 amend a2 to 3 (accepted)           09:05 cancel a2
  09:06 position BTC-USD 2 @ 100
  09:07 order a3 60 @ 100 held             09:09 alice grants it (120 s)
  09:08 order a4 60 @ 99 held              09:12 alice denies it (240 s) -> ORDER_REJECTED
bot-b (owner bob): 10 orders 10:00-10:09, all cancelled 10:10-10:19, no fill
  -> cancel ratio 1.0000 > 0.9 and orders without fills.
bot-c (owner oscar):
  11:00 order c1 on XRP-USD (restricted) rejected, one LIMIT_BREACH
  11:01 order c2 1 @ 50 ETH-USD accepted   11:02 fill c2 1 @ 50
  11:03 SYSTEM_ERROR                       11:04 SYSTEM_ERROR signed 5 ms before receipt
  -> error rate 2/5 = 0.4000 > 0.05; clock drift 5000 us > 1000 us.
kill switch: rita activates market ETH-USD 12:00, releases 12:30.
bot-d (owner bob): positions at 08:00 and 13:00 -> a 5 h gap in trading hours.
Outside D: bot-a reports a fill at D+1 00:00:01 (must not be counted).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine

from audit.services.checkpoints import checkpoint_create
from surveillance.config import DEFAULT_CONFIG

D = date(2025, 3, 10)


def at(hh: int, mm: int, ss: int = 0, *, days: int = 0) -> datetime:
    return datetime(D.year, D.month, D.day, hh, mm, ss, tzinfo=UTC) + timedelta(days=days)


@dataclass
class Dataset:
    day: date
    bots: dict[str, Any]
    seqs: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(at(7, 0), tick=False) as traveller:
        yield traveller


@pytest.fixture
def dataset(people, make_bot, clock, client_for) -> Dataset:
    from approvals.services import approval_deny, approval_grant
    from surveillance.services.config import config_current, config_update
    from surveillance.services.kill_switch import kill_switch_activate, kill_switch_deactivate

    config_current()
    config = copy.deepcopy(DEFAULT_CONFIG)
    config["regulatory_limits"]["restricted_markets"] = ["XRP-USD"]
    config["approval_enabled"] = True  # the day has held orders (off in a new install)
    config_update(config=config, acting_user=people["alice"])
    bots = {
        "bot-a": make_bot("bot-a", owner="bob"),
        "bot-b": make_bot("bot-b", owner="bob"),
        "bot-c": make_bot("bot-c", owner="oscar"),
        "bot-d": make_bot("bot-d", owner="bob"),
    }
    ds = Dataset(D, bots)

    def order(
        bot: str, order_id: str, quantity: str, price: str, market: str = "BTC-USD"
    ) -> dict[str, Any]:
        item = bots[bot].signer.item(
            "ORDER_SUBMITTED",
            {
                "order_id": order_id,
                "market": market,
                "side": "buy",
                "quantity": quantity,
                "price": price,
                "order_type": "limit",
                "venue": "XNAS",
            },
        )
        response = bots[bot].client.post("/api/v1/orders/", item, format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        ds.seqs[order_id] = body["seq"]
        return body

    def event(bot: str, event_type: str, payload: dict[str, Any], **kwargs: Any) -> None:
        response = bots[bot].post_events([bots[bot].signer.item(event_type, payload, **kwargs)])
        assert response.status_code == 201, response.content

    def amend(bot: str, order_id: str, quantity: str) -> None:
        item = bots[bot].signer.item("ORDER_AMENDED", {"order_id": order_id, "quantity": quantity})
        response = bots[bot].client.post("/api/v1/orders/", item, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["decision"] == "accepted", response.content

    clock.move_to(at(8, 0))
    event("bot-d", "POSITION_CHANGED", {"market": "SOL-USD", "quantity": "5", "price": "20"})
    clock.move_to(at(9, 0))
    assert order("bot-a", "a1", "1", "100")["decision"] == "accepted"
    clock.move_to(at(9, 1))
    assert order("bot-a", "a2", "2", "101")["decision"] == "accepted"
    clock.move_to(at(9, 2))
    event(
        "bot-a",
        "ORDER_FILLED",
        {"order_id": "a1", "fill_id": "f1", "quantity": "1", "price": "100"},
    )
    clock.move_to(at(9, 3))
    event(
        "bot-a",
        "ORDER_FILLED",
        {"order_id": "a2", "fill_id": "f2", "quantity": "1", "price": "101"},
    )
    clock.move_to(at(9, 4))
    amend("bot-a", "a2", "3")
    clock.move_to(at(9, 5))
    event("bot-a", "ORDER_CANCELED", {"order_id": "a2", "reason": "strategy"})
    clock.move_to(at(9, 6))
    event("bot-a", "POSITION_CHANGED", {"market": "BTC-USD", "quantity": "2", "price": "100"})
    clock.move_to(at(9, 7))
    held = order("bot-a", "a3", "60", "100")
    assert held["decision"] == "held"
    clock.move_to(at(9, 8))
    denied = order("bot-a", "a4", "60", "99")
    assert denied["decision"] == "held"
    clock.move_to(at(9, 9))
    approval_grant(
        request_id=held["approval"]["id"],
        acting_user=people["alice"],
        reason="client order, checked",
    )
    clock.move_to(at(9, 12))
    approval_deny(
        request_id=denied["approval"]["id"], acting_user=people["alice"], reason="too large today"
    )

    for n in range(10):
        clock.move_to(at(10, n))
        assert order("bot-b", f"b{n}", "1", f"100.{n + 1}")["decision"] == "accepted"
    for n in range(10):
        clock.move_to(at(10, 10 + n))
        event("bot-b", "ORDER_CANCELED", {"order_id": f"b{n}", "reason": "requote"})

    clock.move_to(at(11, 0))
    assert order("bot-c", "c1", "1", "1", market="XRP-USD")["decision"] == "rejected"
    clock.move_to(at(11, 1))
    assert order("bot-c", "c2", "1", "50", market="ETH-USD")["decision"] == "accepted"
    clock.move_to(at(11, 2))
    event(
        "bot-c", "ORDER_FILLED", {"order_id": "c2", "fill_id": "f3", "quantity": "1", "price": "50"}
    )
    clock.move_to(at(11, 3))
    event("bot-c", "SYSTEM_ERROR", {"error_type": "feed", "message": "market data stale"})
    clock.move_to(at(11, 4))
    occurred = int(at(11, 4).timestamp() * 1_000_000) - 5_000
    event(
        "bot-c",
        "SYSTEM_ERROR",
        {"error_type": "feed", "message": "reconnect"},
        occurred_at_us=occurred,
    )

    clock.move_to(at(12, 0))
    kill_switch_activate(
        scope="market", target="ETH-USD", reason="venue outage", acting_user=people["rita"]
    )
    clock.move_to(at(12, 30))
    kill_switch_deactivate(
        scope="market", target="ETH-USD", reason="venue back", acting_user=people["rita"]
    )

    clock.move_to(at(13, 0))
    event("bot-d", "POSITION_CHANGED", {"market": "SOL-USD", "quantity": "6", "price": "21"})

    clock.move_to(at(0, 0, 1, days=1))
    event(
        "bot-a",
        "ORDER_FILLED",
        {"order_id": "a3", "fill_id": "f4", "quantity": "1", "price": "100"},
    )
    clock.move_to(at(0, 0, 2, days=1))
    checkpoint_create(force=True)
    return ds


@pytest.fixture
def alerts_on_day(dataset: Dataset, people: dict[str, Any]) -> list[Any]:
    """Two alerts on D if the alerts model exists: one closed as reported, one open."""
    try:
        from surveillance.models import Alert
    except ImportError:
        pytest.skip("surveillance alerts are not built yet")
    base = int(at(10, 30).timestamp() * 1_000_000)
    closed = Alert.objects.create(
        detector="spoofing", severity="high", severity_rank=3, agent_id="bot-b", market="BTC-USD",
        fingerprint="test-spoofing-1", evidence=[1, 2], detail="orders cancelled within seconds",
        occurred_at_us=base, seq=1, config_hash="x", status="closed", disposition="reported",
        note="STOR filed", closed_by=people["alice"], closed_at=at(14, 0),
    )  # fmt: skip
    opened = Alert.objects.create(
        detector="rapid_fire", severity="low", severity_rank=1, agent_id="bot-b", market="BTC-USD",
        fingerprint="test-rapid-1", evidence=[3], detail="burst", occurred_at_us=base + 1, seq=2,
        config_hash="x",
    )  # fmt: skip
    return [closed, opened]


@pytest.fixture
def generate(
    people: dict[str, Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[..., Any]:
    """Ask for a report as alice and run its task (eager Celery, after commit)."""
    from reporting.periods import day
    from reporting.services.reports import report_request

    def run(
        kind: str = "daily_trade", fmt: str = "json", regulator: str = "", period: Any = None
    ) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            report, _ = report_request(
                kind=kind,
                period=period or day(D),
                fmt=fmt,
                regulator=regulator,
                acting_user=people["alice"],
            )
        report.refresh_from_db()
        assert report.status == "done", report.error
        return report

    return run
