"""The detectors and the surveillance cycle, against a synthetic trading day
driven through the real gate (surveillance.services.gate.order_submit) and
the real ingest path (audit.services.ingest.ingest_events), with the server
clock simulated so the day's hours pass in seconds."""

from __future__ import annotations

import heapq
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.management import call_command

from audit.models import Record
from audit.services.ingest import ingest_events
from surveillance.detectors import DETECTOR_NAMES
from surveillance.detectors.base import DetectorConfig, TradeEvent
from surveillance.detectors.layering import LayeringDetector
from surveillance.models import Alert, DetectorState, SurveillanceCursor
from surveillance.services import cycle as cycle_module
from surveillance.services.cycle import surveillance_cycle
from surveillance.services.gate import order_submit

pytestmark = pytest.mark.django_db

SECOND = 1_000_000

# These tests document the seed's plain rules, which stay selectable in the
# config's `detection` object; the default (vendor) rules have their own tests
# and labelled scenarios (test_detection_rules.py).
SEED_RULES = {
    "wash_trading_rule": "opposite_fills",
    "layering_rule": "stack_depth",
    "spoofing_rule": "quick_cancel",
}


@pytest.fixture(autouse=True)
def seed_rules(monkeypatch: pytest.MonkeyPatch, set_config: Any) -> None:
    from surveillance.config import DEFAULT_CONFIG

    # the config in force takes the seed rules, and every config a test sets
    # from here on keeps them (set_config changes the config in force); a
    # version 1 made from the defaults later has them too
    monkeypatch.setitem(DEFAULT_CONFIG, "detection", SEED_RULES)
    set_config(detection=SEED_RULES)


class Clock:
    """The server's clock during the simulated day (microseconds)."""

    def __init__(self, start_us: int):
        self.now = start_us

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    # After every record already written, so appends keep the simulated time.
    sim = Clock(time.time_ns() // 1000 + 3600 * SECOND)
    for target in (
        "audit.services.log.now_us",
        "audit.services.ingest.now_us",
        "surveillance.services.gate.now_us",
    ):
        monkeypatch.setattr(target, sim)
    return sim


@dataclass(order=True)
class _Action:
    at: int
    n: int
    run: Callable[[], None] = field(compare=False)


class Day:
    """A scheduler of bot actions at simulated times; every order goes through
    the gate and every lifecycle event through ingest, as from the API."""

    def __init__(self, clock: Clock, make_bot: Callable[..., Any], seed: int = 7):
        self.clock = clock
        self.start = clock.now
        self.make_bot = make_bot
        self.rng = random.Random(seed)
        self.bots: dict[str, Any] = {}
        self.queue: list[_Action] = []
        self.n = 0
        self.order_n = 0
        self.resting: Counter[tuple[str, str]] = Counter()
        self.planted: list[tuple[str, str, str]] = []  # (detector, agent_id, market)
        self.sides: dict[tuple[str, str], str] = {}
        self.positions: Counter[tuple[str, str]] = Counter()
        self.outbox: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)

    # --- the bots' actions --------------------------------------------------------

    def bot(self, agent_id: str, owner: str | None) -> Any:
        self.bots[agent_id] = self.make_bot(agent_id, owner)
        return self.bots[agent_id]

    def at(self, secs: float, run: Callable[[], None]) -> None:
        self.n += 1
        heapq.heappush(self.queue, _Action(self.start + int(secs * SECOND), self.n, run))

    def run(self) -> None:
        while self.queue:
            action = heapq.heappop(self.queue)
            self.clock.now = max(self.clock.now, action.at)
            action.run()

    def t(self) -> float:
        return (self.clock.now - self.start) / SECOND

    def submit(
        self, agent_id: str, market: str, side: str, qty: str, price: str
    ) -> tuple[str, str]:
        self.order_n += 1
        order_id = f"{agent_id}-{self.order_n}"
        handle = self.bots[agent_id]
        item = handle.signer.item(
            "ORDER_SUBMITTED",
            {
                "order_id": order_id,
                "market": market,
                "side": side,
                "quantity": qty,
                "price": price,
                "order_type": "limit",
            },
            occurred_at_us=self.clock.now,
        )
        result = order_submit(agent=handle.agent, item=item)
        return order_id, result.decision

    def amend(self, agent_id: str, order_id: str, price: str) -> str:
        handle = self.bots[agent_id]
        item = handle.signer.item(
            "ORDER_AMENDED", {"order_id": order_id, "price": price}, occurred_at_us=self.clock.now
        )
        return order_submit(agent=handle.agent, item=item).decision

    def report(
        self, agent_id: str, *events: tuple[str, dict[str, str]], buffered: bool = False
    ) -> None:
        """Events signed now; sent at once, or (`buffered`) with whatever else
        the bot reports within the next 10 s, in one batch as the SDK does."""
        handle = self.bots[agent_id]
        items = [
            handle.signer.item(t, payload, occurred_at_us=self.clock.now) for t, payload in events
        ]
        if not buffered:
            ingest_events(handle.agent, items)
            return
        if not self.outbox[agent_id]:
            self.at(self.t() + 10, lambda: self.flush(agent_id))
        self.outbox[agent_id].extend(items)

    def flush(self, agent_id: str) -> None:
        items, self.outbox[agent_id] = self.outbox[agent_id], []
        ingest_events(self.bots[agent_id].agent, items)

    def fill(
        self, agent_id: str, order_id: str, qty: str, price: str, n: int = 1, market: str = ""
    ) -> None:
        """A fill; for ordinary bots (`market` given) with the bot's new position
        in the same batch, as a bot that reports positions would send them."""
        fill = (
            "ORDER_FILLED",
            {"order_id": order_id, "fill_id": f"{order_id}-f{n}", "quantity": qty, "price": price},
        )
        if not market:
            self.report(agent_id, fill)
            return
        side = self.sides[(agent_id, market)]
        self.positions[(agent_id, market)] += int(qty) if side == "buy" else -int(qty)
        position = {
            "market": market,
            "quantity": str(self.positions[(agent_id, market)]),
            "price": price,
        }
        self.report(agent_id, fill, ("POSITION_CHANGED", position), buffered=True)

    def cancel(self, agent_id: str, order_id: str, buffered: bool = False) -> None:
        self.report(
            agent_id,
            ("ORDER_CANCELED", {"order_id": order_id, "reason": "strategy"}),
            buffered=buffered,
        )

    def position(self, agent_id: str, market: str, qty: str, price: str) -> None:
        self.report(
            agent_id, ("POSITION_CHANGED", {"market": market, "quantity": qty, "price": price})
        )

    # --- ordinary trading ----------------------------------------------------------

    def ordinary_book(
        self, agent_id: str, market: str, side: str, orders: int, gap: tuple[int, int]
    ) -> None:
        """One side of one market, worked all day: at most 3 resting orders, each
        filled (sometimes in two parts), amended then filled, or cancelled after
        more than the spoofing threshold; orders tens of seconds apart."""
        left = {"n": orders}
        self.sides[(agent_id, market)] = side

        def price() -> str:
            return f"{self.rng.uniform(98, 102):.4f}"

        def resolve(order_id: str, qty: int) -> None:
            roll = self.rng.random()
            if roll < 0.2:
                self.cancel(agent_id, order_id, buffered=True)
                self.resting[(agent_id, market)] -= 1
            elif roll < 0.5 and qty > 1:
                self.fill(agent_id, order_id, "1", price(), 1, market)
                self.at(
                    self.t() + self.rng.uniform(1, 4), lambda: finish(order_id, str(qty - 1), 2)
                )
            else:
                finish(order_id, str(qty), 1)

        def finish(order_id: str, qty: str, n: int) -> None:
            self.fill(agent_id, order_id, qty, price(), n, market)
            self.resting[(agent_id, market)] -= 1

        def tick() -> None:
            if left["n"] <= 0:
                return
            if self.resting[(agent_id, market)] < 3:
                left["n"] -= 1
                qty = self.rng.randint(1, 5)
                order_id, decision = self.submit(agent_id, market, side, str(qty), price())
                assert decision == "accepted", (agent_id, market, decision)
                self.resting[(agent_id, market)] += 1
                later = self.t() + self.rng.uniform(6, 120)
                if self.rng.random() < 0.1:
                    self.at(
                        self.t() + self.rng.uniform(6, 30),
                        lambda: self.amend(agent_id, order_id, price()),
                    )
                    later += 30
                self.at(later, lambda: resolve(order_id, qty))
            self.at(self.t() + self.rng.uniform(*gap), tick)

        self.at(self.rng.uniform(0, gap[1]), tick)

    # --- planted cases ---------------------------------------------------------------

    def plant(self, detector: str, agent_id: str, market: str) -> None:
        self.planted.append((detector, agent_id, market))

    def wash(self, at: float, buyer: str, seller: str, market: str) -> None:
        self.plant("wash_trading", seller, market)

        def buy() -> None:
            order_id, _ = self.submit(buyer, market, "buy", "2", "100.5")
            self.at(self.t() + 1, lambda: self.fill(buyer, order_id, "2", "100.5"))

        def sell() -> None:
            order_id, _ = self.submit(seller, market, "sell", "2", "100.6")
            self.at(self.t() + 1, lambda: self.fill(seller, order_id, "2", "100.6"))

        self.at(at, buy)
        self.at(at + 12, sell)

    def spoof(self, at: float, agent_id: str, market: str, side: str) -> None:
        self.plant("spoofing", agent_id, market)

        def place() -> None:
            order_id, _ = self.submit(agent_id, market, side, "40", "99.5")
            self.at(self.t() + 1.5, lambda: self.cancel(agent_id, order_id))

        self.at(at, place)

    def layer(self, at: float, agent_id: str, market: str, side: str, levels: int) -> None:
        self.plant("layering", agent_id, market)
        step = 1 if side == "sell" else -1

        def place(i: int) -> None:
            order_id, _ = self.submit(agent_id, market, side, "3", str(100 + step * (i + 1)))
            # Filled or cancelled well after the spoofing threshold.
            if i % 2:
                self.at(self.t() + 40, lambda: self.fill(agent_id, order_id, "3", "100"))
            else:
                self.at(self.t() + 45, lambda: self.cancel(agent_id, order_id))

        for i in range(levels):
            self.at(at + 3 * i, lambda i=i: place(i))

    def rapid_fire(self, at: float, agent_id: str, market: str, orders: int, within: float) -> None:
        self.plant("rapid_fire", agent_id, market)

        def place(i: int) -> None:
            order_id, decision = self.submit(agent_id, market, "buy", "1", f"100.{i:04d}")
            if decision == "accepted":
                self.at(self.t() + 0.1, lambda: self.fill(agent_id, order_id, "1", "100"))

        for i in range(orders):
            self.at(at + within * i / orders, lambda i=i: place(i))

    def bypass(self, at: float, agent_id: str, market: str) -> None:
        """A fill for an order the gate never saw (the bot went straight to the venue)."""
        self.plant("gate_bypass", agent_id, market)
        self.order_n += 1
        fill = {"order_id": f"{agent_id}-x{self.order_n}", "fill_id": f"x{self.order_n}",
                "quantity": "1", "price": "100", "market": market, "side": "buy"}  # fmt: skip
        self.at(at, lambda: self.report(agent_id, ("ORDER_FILLED", fill)))

    def concentrate(
        self, at: float, agent_id: str, market: str, qty: str, release_after: float
    ) -> None:
        self.plant("concentration", agent_id, market)
        self.at(at, lambda: self.position(agent_id, market, qty, "100"))
        self.at(at + release_after, lambda: self.position(agent_id, market, "0", "100"))


def trading_day(day: Day, *, orders_per_book: int, gap: tuple[int, int]) -> None:
    for agent_id, owner in (
        ("alpha", "bob"),
        ("beta", "oscar"),
        ("gamma", "rita"),
        ("delta", None),
    ):
        day.bot(agent_id, owner)
    for agent_id, owner in (("sly", "carol"), ("sly-2", "carol"), ("whale", None)):
        day.bot(agent_id, owner)
    books = [
        ("alpha", "BTC-USD", "buy"),
        ("alpha", "ETH-USD", "sell"),
        ("beta", "BTC-USD", "sell"),
        ("beta", "ETH-USD", "buy"),
        ("gamma", "SOL-USD", "buy"),
        ("gamma", "BNB-USD", "sell"),
        ("delta", "SOL-USD", "sell"),
        ("delta", "BNB-USD", "buy"),
    ]
    for agent_id, market, side in books:
        day.ordinary_book(agent_id, market, side, orders_per_book, gap)
    span = orders_per_book * (gap[0] + gap[1]) / 2
    # Ten planted cases, spread over the day, in markets the ordinary bots do not trade.
    day.wash(span * 0.08, "sly", "sly", "XRP-USD")  # one agent on both sides
    day.wash(span * 0.30, "sly", "sly-2", "AVAX-USD")  # two agents of one owner
    day.spoof(span * 0.15, "sly", "ADA-USD", "buy")
    day.spoof(span * 0.62, "sly-2", "LINK-USD", "sell")
    day.layer(span * 0.23, "sly", "LTC-USD", "sell", 5)
    day.layer(span * 0.46, "sly-2", "LTC-USD", "buy", 6)
    day.rapid_fire(span * 0.70, "sly-2", "DOT-USD", 130, 45)
    day.rapid_fire(span * 0.85, "sly", "DOT-USD", 125, 50)
    day.concentrate(span * 0.54, "whale", "DOGE-USD", "3000", 300)
    day.concentrate(span * 0.93, "whale", "DOGE-USD", "2700", 300)
    day.bypass(span * 0.40, "sly", "TRX-USD")
    day.run()


def alert_rows() -> list[tuple[Any, ...]]:
    return sorted(
        Alert.objects.values_list(
            "fingerprint", "detector", "severity", "agent_id", "market", "evidence", "detail"
        )
    )


def alert_cases() -> Counter[tuple[str, str, str]]:
    return Counter(Alert.objects.values_list("detector", "agent_id", "market"))


def trading_records() -> Counter[str]:
    return Counter(
        Record.objects.filter(event_type__in=cycle_module.TRADING_TYPES).values_list(
            "event_type", flat=True
        )
    )


# The synthetic day's cases are planted for these windows and thresholds (an
# hour's window, 60 s wash trades, 5 s spoofs, 5 levels of layering), wider
# than the defaults a new install starts from.
SYNTHETIC_DAY_CONFIG = {
    "surveillance_window_secs": 3600,
    "wash_trade_threshold_secs": 60,
    "spoof_cancel_threshold_secs": 5,
    "layering_depth": 5,
}


@pytest.fixture
def day(clock: Clock, make_bot: Callable[..., Any], set_config: Any) -> Iterator[Day]:
    set_config(**SYNTHETIC_DAY_CONFIG)
    return Day(clock, make_bot)


def test_synthetic_day_every_planted_case_gives_exactly_one_alert(day: Day) -> None:
    # given a day of ordinary trading by four bots of different owners, with
    # eleven planted cases of the six patterns
    started = time.monotonic()
    trading_day(day, orders_per_book=175, gap=(20, 80))
    generated = time.monotonic() - started
    events = trading_records()
    assert sum(events.values()) >= 5000

    # when the cycle runs (the beat task's entry point)
    started = time.monotonic()
    result = surveillance_cycle()
    elapsed = time.monotonic() - started

    # then each planted case has exactly one alert of its detector, and the
    # ordinary trading none
    assert alert_cases() == Counter(day.planted), [a.detail for a in Alert.objects.all()]
    assert len(set(day.planted)) == len(day.planted) - 1  # two concentration cases, one market
    assert not Alert.objects.filter(agent_id__in=["alpha", "beta", "gamma", "delta"]).exists()
    assert Alert.objects.get(detector="wash_trading", market="XRP-USD").severity == "critical"
    # every alert is recorded, names its evidence and says what happened
    for alert in Alert.objects.all():
        record = Record.objects.get(seq=alert.seq)
        assert record.event_type == "SURVEILLANCE_ALERT"
        body = record.as_dict()["data"]
        assert body["detector"] == alert.detector
        assert body["alert_id"] == alert.pk
        assert alert.evidence
        assert set(alert.evidence) <= set(Record.objects.values_list("seq", flat=True))
        assert alert.detail
    # the cursor has read the whole log; only the alerts' own records follow it
    cursor = SurveillanceCursor.objects.get()
    after = set(Record.objects.filter(seq__gt=cursor.last_seq).values_list("event_type", flat=True))
    assert after <= {"SURVEILLANCE_ALERT"}
    by_detector = Counter(Alert.objects.values_list("detector", flat=True))
    print(
        f"\nsynthetic day: {sum(events.values())} trading events ({dict(events)}) "
        f"from {len(day.bots)} agents, generated in {generated:.1f}s; "
        f"one cycle over {result.processed} records in {elapsed:.2f}s "
        f"({result.processed / elapsed:.0f} records/s); alerts {dict(by_detector)} for "
        f"{len(day.planted)} planted cases"
    )
    assert set(by_detector) == set(DETECTOR_NAMES)

    # and running the cycle again finds nothing new
    before = alert_rows()
    assert surveillance_cycle().alerts == []
    assert alert_rows() == before

    # and a replay from scratch (cursor and state gone) finds the same alerts,
    # which their fingerprints refuse to store twice
    SurveillanceCursor.objects.all().delete()
    DetectorState.objects.all().delete()
    replayed: list[Any] = []
    original = cycle_module.alerts_create

    def capture(*, findings: list[Any], config_hash: str) -> list[Alert]:
        replayed.extend(findings)
        return original(findings=findings, config_hash=config_hash)

    cycle_module.alerts_create = capture  # type: ignore[assignment]
    try:
        assert surveillance_cycle(chunk_records=700).alerts == []
    finally:
        cycle_module.alerts_create = original  # type: ignore[assignment]
    assert (
        sorted(
            (f.fingerprint, f.detector, f.severity, f.agent_id, f.market, f.evidence, f.detail)
            for f in replayed
        )
        == before
    )
    assert alert_rows() == before


class Crash(Exception):
    pass


def test_cycle_killed_halfway_then_rerun_gives_the_same_alerts(
    day: Day, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a shorter day with the same planted cases
    trading_day(day, orders_per_book=25, gap=(20, 80))
    total = Record.objects.count()

    # when the cycle dies in the middle of a chunk, after earlier chunks stored alerts
    original = cycle_module.alerts_create
    stored = {"n": 0}

    def dies_on_the_fourth_alert(*, findings: list[Any], config_hash: str) -> list[Alert]:
        created = original(findings=findings, config_hash=config_hash)
        stored["n"] += len(created)
        if stored["n"] >= 4:
            raise Crash("worker killed")
        return created

    monkeypatch.setattr(cycle_module, "alerts_create", dies_on_the_fourth_alert)
    with pytest.raises(Crash):
        surveillance_cycle(chunk_records=40)
    # then what committed is whole chunks: alerts, their records and the cursor agree
    partial = Alert.objects.count()
    assert 0 < partial < len(day.planted)
    assert Record.objects.filter(event_type="SURVEILLANCE_ALERT").count() == partial
    cursor = SurveillanceCursor.objects.get()
    assert -1 < cursor.last_seq < total - 1

    # when it is rerun (twice)
    monkeypatch.setattr(cycle_module, "alerts_create", original)
    surveillance_cycle(chunk_records=40)
    surveillance_cycle(chunk_records=40)
    after_crash = alert_rows()

    # then the alerts are exactly those of one clean run over the same records
    Alert.objects.all().delete()
    SurveillanceCursor.objects.all().delete()
    DetectorState.objects.all().delete()
    surveillance_cycle(chunk_records=1000)
    assert [row[1:] for row in alert_rows()] == [row[1:] for row in after_crash]
    assert alert_cases() == Counter(day.planted)


def test_records_arriving_between_many_cycles_give_the_alerts_of_one_cycle(day: Day) -> None:
    # given cycles that run every 13 simulated seconds while the day's trading
    # arrives, so fills, cancels and amendments mostly meet their orders (and
    # each partition its state) in an earlier cycle
    processed: list[int] = []

    def cycle() -> None:
        processed.append(surveillance_cycle().processed)

    span = 25 * (20 + 80) // 2
    for n in range(span * 6 // 5 // 13):
        day.at(n * 13, cycle)
    trading_day(day, orders_per_book=25, gap=(20, 80))
    cycle()
    live = alert_rows()
    assert len([p for p in processed if p]) > 50  # the records came to many cycles
    # then each planted case has its one alert
    assert alert_cases() == Counter(day.planted)
    # and one cycle over the whole log, from no state, finds exactly the same
    Alert.objects.all().delete()
    SurveillanceCursor.objects.all().delete()
    DetectorState.objects.all().delete()
    surveillance_cycle(chunk_records=1_000_000)
    assert alert_rows() == live


def test_order_lookup_matches_each_agent_with_its_own_order_ids(people: Any) -> None:
    from accounts.models import Agent
    from surveillance.models import Order

    # given two agents that both used the order ids o-1 and o-2, in different markets
    agents = [
        Agent.objects.create(
            agent_id=f"twin-{n}", name="twin", api_key_hash=f"t{n:062d}", api_key_prefix="cbk_"
        )
        for n in (1, 2)
    ]
    seq = 0
    for agent in agents:
        for order_id in ("o-1", "o-2"):
            seq += 1
            Order.objects.create(
                agent=agent,
                order_id=order_id,
                market=f"{agent.agent_id}/{order_id}",
                side="buy",
                order_type="limit",
                quantity=1,
                price=1,
                status="open",
                decision="accepted",
                config_hash="c",
                seq=seq,
                created_at_us=seq,
                updated_at_us=seq,
            )
    # when the cycle looks up o-1 of the first and o-2 of the second
    found = cycle_module._orders({(agents[0].pk, "o-1"), (agents[1].pk, "o-2")})
    # then it gets exactly those two orders, each from its own agent
    assert found == {
        (agents[0].pk, "o-1"): ("twin-1/o-1", "buy", 1),
        (agents[1].pk, "o-2"): ("twin-2/o-2", "buy", 4),
    }


def test_run_surveillance_command_and_disabled_config(
    day: Day, set_config: Any, capsys: Any
) -> None:
    day.bot("sly", "carol")
    day.spoof(10, "sly", "ADA-USD", "buy")
    day.run()
    set_config(surveillance_enabled=False)
    call_command("run_surveillance")
    assert "skipped" in capsys.readouterr().out
    assert not Alert.objects.exists()

    set_config(surveillance_enabled=True)
    call_command("run_surveillance", "--all")
    assert "1 new alerts" in capsys.readouterr().out
    assert Alert.objects.get().detector == "spoofing"


def test_thresholds_come_from_the_compliance_config(day: Day, set_config: Any) -> None:
    # a cancel after 1.5 s is a spoof at the default 5 s threshold, not at 1 s
    set_config(spoof_cancel_threshold_secs=1)
    day.bot("sly", "carol")
    day.spoof(10, "sly", "ADA-USD", "buy")
    day.run()
    surveillance_cycle()
    assert not Alert.objects.exists()


def test_rapid_fire_and_concentration_switch_off_with_a_null_limit(
    day: Day, set_config: Any
) -> None:
    set_config(regulatory_limits={"max_orders_per_minute": None, "max_concentration_pct": None})
    day.bot("whale", None)
    day.concentrate(10, "whale", "DOGE-USD", "5000", 60)
    day.run()
    surveillance_cycle()
    assert not Alert.objects.exists()


def _event(seq: int, kind: str, side: str, price: str, order_id: str, ts: int) -> TradeEvent:
    from decimal import Decimal

    return TradeEvent(
        seq=seq,
        ts=ts,
        kind=kind,
        agent_id="a",
        owner="agent:a",
        market="M",
        side=side,
        order_id=order_id,
        quantity=Decimal(1),
        price=Decimal(price),
        accepted=True,
    )


def test_layering_counts_distinct_price_levels_within_the_window() -> None:
    config = DetectorConfig.from_config(
        {
            "surveillance_window_secs": 60,
            "wash_trade_threshold_secs": 60,
            "spoof_cancel_threshold_secs": 5,
            "layering_depth": 3,
            "regulatory_limits": {"max_orders_per_minute": 120, "max_concentration_pct": "25"},
            "detection": SEED_RULES,
        },
        "h",
    )
    detector = LayeringDetector(config)
    state = detector.load_state({})
    # three orders at one price are size, not layers
    for i in range(3):
        assert detector.feed(state, _event(i, "submit", "sell", "101", f"o{i}", i * SECOND)) == []
    # a second and third level make a stack of three levels: one alert
    assert detector.feed(state, _event(3, "submit", "sell", "102", "o3", 3 * SECOND)) == []
    [finding] = detector.feed(state, _event(4, "submit", "sell", "103", "o4", 4 * SECOND))
    assert finding.evidence == [0, 1, 2, 3, 4]
    # state survives the JSON round trip the cycle puts it through
    state = detector.load_state(detector.dump_state(state))
    assert detector.feed(state, _event(5, "submit", "sell", "104", "o5", 5 * SECOND)) == []
    # past the window the old orders no longer count; a new stack alerts again
    late = 200 * SECOND
    assert detector.feed(state, _event(6, "submit", "sell", "101", "p1", late)) == []
    assert detector.feed(state, _event(7, "submit", "sell", "102", "p2", late)) == []
    [again] = detector.feed(state, _event(8, "submit", "sell", "103", "p3", late))
    assert again.evidence == [6, 7, 8]
    assert again.fingerprint != finding.fingerprint


def test_beat_task_runs_one_cycle(day: Day) -> None:
    from surveillance.tasks import surveillance_cycle_task

    day.bot("sly", "carol")
    day.spoof(10, "sly", "ADA-USD", "buy")
    day.run()
    result = surveillance_cycle_task.delay().get()
    assert result["alerts"] == list(Alert.objects.values_list("pk", flat=True))
    assert result["alerts"]
    assert surveillance_cycle_task.delay().get()["alerts"] == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_cycles_store_each_alert_once(
    clock: Clock, make_bot: Callable[..., Any], set_config: Any
) -> None:
    import threading

    from django.db import connection

    # given a committed day with the ten planted cases
    set_config(**SYNTHETIC_DAY_CONFIG)
    day = Day(clock, make_bot)
    trading_day(day, orders_per_book=25, gap=(20, 80))
    # when four workers run the cycle at once, in small chunks
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            surveillance_cycle(chunk_records=30)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then the cursor lock serialized their chunks: every case once, one record each
    assert errors == []
    assert alert_cases() == Counter(day.planted)
    assert Record.objects.filter(event_type="SURVEILLANCE_ALERT").count() == len(day.planted)


def test_records_are_read_exactly_as_a_full_parse_would(day: Day) -> None:
    import json

    from surveillance.services.cycle import _read

    day.bot("sly", "carol")
    handle = day.bots["sly"]
    order_id, _ = day.submit("sly", "ADA-USD", "buy", "2", "100.10")
    day.amend("sly", order_id, "100.20")
    day.submit("sly", "ADA-USD", "buy", "999999", "100")  # held for approval
    # an event id holding quotes and the very keys the reader looks for
    tricky = handle.signer.item(
        "ORDER_CANCELED",
        {"order_id": order_id, "reason": '","payload":{"x":1},"event_type":"FAKE'},
        event_id='q","event_type":"ORDER_SUBMITTED',
        occurred_at_us=day.clock.now,
    )
    ingest_events(handle.agent, [tricky])
    rows = list(
        Record.objects.filter(event_type__in=cycle_module.TRADING_TYPES).values_list(
            "seq", "event_type", "recorded_at_us", "body"
        )
    )
    assert len(rows) == 4
    for seq, event_type, ts, body in rows:
        record = json.loads(body)
        envelope = record["source"]["envelope"]
        read = _read(body, seq, event_type, ts)
        assert read is not None
        kind, payload, detail = read
        assert kind == envelope["event_type"]
        assert payload == envelope["payload"]
        if event_type == "ORDER_SUBMITTED":
            assert detail is (record["data"]["decision"] == "accepted")
        elif event_type == "ORDER_AMENDED":
            assert detail == record["data"]["amendment"]
            assert detail
        else:
            assert detail is None
        # and a record whose text is not in the canonical shape reads the same
        assert _read(json.dumps(record, indent=1), seq, event_type, ts) == read
