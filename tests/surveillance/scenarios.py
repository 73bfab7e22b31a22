"""A labelled scenario generator for the detectors: ordinary trading and planted
manipulations, each case labelled with the detector that must fire on it
(None for ordinary behaviour), and the scoring of the detectors on them.

Cases are streams of TradeEvents, what the surveillance cycle makes of the
records (surveillance.services.cycle.events_from_records), so thousands of
them are scored in seconds; the cycle's own path from records to events is
tested through the gate and ingest elsewhere. Each case has its own agents and
markets and is scored with fresh detector state, so cases never interfere.

Ordinary behaviours (what real bots do all day):
  market_maker     quotes at several price levels on both sides, refreshed every
                   few seconds (cancel/replace or amend), filled at its bid and ask
  twap             a parent order sliced into child orders at the touch, some
                   cancelled and replaced when the market moves away
  iceberg          a large order shown a small slice at a time
  momentum         a burst of aggressive orders on one side, unwound minutes later
  hedge            two agents of one owner: one trades, the other hedges part of
                   it (same market) or all of it in another market; positions change

Planted manipulations (three variants or more each):
  wash_trading     one agent or two of one owner trading with themselves
  spoofing         a large order cancelled within seconds while trading the other side
  layering         a one-sided stack, an execution on the other side, the stack cancelled
  rapid_fire       more orders in a minute than the limit
  concentration    a firm position above the concentration limit
  gate_bypass      fills the gate never allowed, as the ingest projection notes them

Used by tests/surveillance/test_detection_rules.py and bench/detection.py.
No Django: importable from the bench without settings."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from surveillance.detectors import DETECTOR_NAMES, DetectorConfig, TradeEvent, detectors_for

SECOND = 1_000_000
START_US = 1_765_000_000 * SECOND
TICK = Decimal("0.01")

DEFAULT_RAW_CONFIG: dict[str, Any] = {
    "surveillance_window_secs": 3600,
    "wash_trade_threshold_secs": 60,
    "spoof_cancel_threshold_secs": 5,
    "layering_depth": 5,
    "regulatory_limits": {
        "max_orders_per_minute": 120,
        "max_concentration_pct": "25",
        "portfolio_capital": "1000000",
    },
}


def detector_config(detection: dict[str, Any] | None = None) -> DetectorConfig:
    """The detectors' config as the compliance config's defaults give it,
    with `detection` rules (None: the default rules)."""
    raw = json.loads(json.dumps(DEFAULT_RAW_CONFIG))
    if detection is not None:
        raw["detection"] = detection
    return DetectorConfig.from_config(raw, "scenarios")


@dataclass
class Case:
    case_id: str
    behaviour: str  # e.g. "market_maker/amend"
    label: str | None  # the detector that must fire; None: ordinary trading
    events: list[TradeEvent] = field(default_factory=list)


def _q(value: Decimal) -> Decimal:
    return value.quantize(TICK)


class Tape:
    """Builds one case's events: seq and server time move forward as it goes."""

    def __init__(self, case: Case, rng: random.Random):
        self.case = case
        self.rng = rng
        self.ts = START_US
        self.orders: dict[str, tuple[str, str, str, int]] = {}  # id -> agent, market, side, seq
        self.n = 0

    @property
    def seq(self) -> int:
        return len(self.case.events)

    def wait(self, seconds: float) -> None:
        self.ts += max(1, int(seconds * SECOND))

    def agent(self, name: str) -> str:
        return f"{self.case.case_id}-{name}"

    def market(self, name: str) -> str:
        return f"{self.case.case_id}-{name}"

    def owner(self, agent: str) -> str:
        # agents named "<owner>.<bot>" share their owner
        return f"user:{agent.split('.')[0]}"

    def _emit(self, kind: str, agent: str, **fields: Any) -> TradeEvent:
        event = TradeEvent(self.seq, self.ts, kind, agent, self.owner(agent), **fields)
        self.case.events.append(event)
        return event

    def submit(
        self,
        agent: str,
        market: str,
        side: str,
        quantity: Decimal | int | str,
        price: Decimal | str,
        *,
        accepted: bool = True,
    ) -> str:
        self.n += 1
        order_id = f"{agent}-o{self.n}"
        kind = "submit" if accepted else "reject"
        seq = self.seq
        self.orders[order_id] = (agent, market, side, seq)
        self._emit(
            kind, agent, market=market, side=side, order_id=order_id,
            quantity=Decimal(quantity), price=Decimal(price), accepted=accepted, order_seq=seq,
        )  # fmt: skip
        return order_id

    def _of(self, order_id: str) -> tuple[str, str, str, int]:
        return self.orders[order_id]

    def fill(self, order_id: str, quantity: Decimal | int | str, price: Decimal | str) -> None:
        agent, market, side, order_seq = self._of(order_id)
        self._emit(
            "fill", agent, market=market, side=side, order_id=order_id,
            quantity=Decimal(quantity), price=Decimal(price), order_seq=order_seq,
        )  # fmt: skip

    def cancel(self, order_id: str) -> None:
        agent, market, side, order_seq = self._of(order_id)
        self._emit(
            "cancel", agent, market=market, side=side, order_id=order_id, order_seq=order_seq
        )

    def venue_reject(self, order_id: str) -> None:
        agent, market, side, order_seq = self._of(order_id)
        self._emit(
            "venue_reject", agent, market=market, side=side, order_id=order_id,
            order_seq=order_seq,
        )  # fmt: skip

    def amend(self, order_id: str, price: Decimal) -> None:
        agent, market, side, order_seq = self._of(order_id)
        self._emit(
            "amend", agent, market=market, side=side, order_id=order_id, price=price,
            order_seq=order_seq,
        )  # fmt: skip

    def position(self, agent: str, market: str, quantity: Decimal, price: Decimal) -> None:
        self._emit("position", agent, market=market, quantity=quantity, price=price)

    def bypass(self, agent: str, market: str, side: str, order_id: str, reasons: list[str]) -> None:
        known = self.orders.get(order_id)
        self._emit(
            "bypass", agent, market=market, side=side, order_id=order_id,
            quantity=Decimal(1), price=Decimal(100), order_seq=known[3] if known else None,
            note={"reasons": reasons, "detail": f"fill for {order_id}: {', '.join(reasons)}",
                  "event_type": "ORDER_FILLED"},
        )  # fmt: skip


# --- ordinary behaviours ---------------------------------------------------------------


def market_maker(t: Tape, mode: str) -> None:
    """Two-sided quotes at several levels, refreshed every few seconds; the
    touch is filled now and then (the bot earns the spread); the bot reports
    its position after fills. Order rate kept under the gate's limit, as the
    gate would refuse the rest."""
    rng = t.rng
    mm, market = t.agent("mm"), t.market("BTC")
    levels = rng.randint(2, 5)
    spread_bps = rng.randint(4, 30)
    refresh = max(rng.uniform(2.0, 8.0), 2 * levels * 60 / 100 if mode == "replace" else 0)
    skew = rng.choice([1, 1, 1, Decimal("1.5"), 2])  # inventory skew: more on one side
    base = rng.randint(1, 5)
    mid = Decimal(rng.randint(9_000, 11_000)) / 100
    quotes: dict[tuple[str, int], str] = {}
    position = Decimal(0)

    def level_price(side: str, k: int) -> Decimal:
        half = mid * spread_bps / 20_000
        step = mid * Decimal(rng.choice([2, 3, 5])) / 10_000
        offset = half + step * k
        return _q(mid - offset if side == "buy" else mid + offset)

    def size(side: str, k: int) -> int:
        heavier = "buy" if position < 0 else "sell"
        factor = skew if side == heavier else 1
        return max(1, int(base * (1 + k // 2) * factor))

    for _ in range(rng.randint(25, 45)):
        for side in ("buy", "sell"):
            for k in range(levels):
                price = level_price(side, k)
                old = quotes.get((side, k))
                if old is None:
                    quotes[(side, k)] = t.submit(mm, market, side, size(side, k), price)
                elif mode == "amend":
                    t.amend(old, price)
                else:
                    t.cancel(old)
                    t.wait(0.002)
                    quotes[(side, k)] = t.submit(mm, market, side, size(side, k), price)
                t.wait(0.001)
        t.wait(rng.uniform(0.2, 1.0))
        # the market trades against the touch: the bid, the ask, or both a few ms apart
        hit = rng.random()
        for side in ("buy", "sell"):
            if (side == "buy" and hit < 0.35) or (side == "sell" and 0.2 < hit < 0.55):
                order_id = quotes.pop((side, 0))
                fill_qty = size(side, 0)
                t.fill(order_id, fill_qty, level_price(side, 0))
                position += fill_qty if side == "buy" else -fill_qty
                t.wait(0.003)
        if hit < 0.55:
            t.position(mm, market, position, mid)
        t.wait(refresh)
        mid = _q(mid * (1 + Decimal(rng.gauss(0, 4)) / 10_000))


def twap(t: Tape, mode: str) -> None:
    """A parent order worked in child orders at the touch; unfilled children
    are cancelled and replaced after a few seconds when the market moves."""
    rng = t.rng
    bot, market = t.agent("algo"), t.market("ETH")
    side = rng.choice(["buy", "sell"])
    parent = rng.randint(40, 400)
    child = max(1, parent // rng.randint(8, 25))
    price = Decimal(rng.randint(1_500, 3_500)) / 10
    done = 0
    while done < parent:
        qty = min(child, parent - done)
        if mode == "iceberg":
            qty = min(max(1, child // 2), parent - done)
        order_id = t.submit(bot, market, side, qty, price)
        t.wait(rng.uniform(0.5, 6))
        if rng.random() < 0.7:
            t.fill(order_id, qty, price)
            done += qty
        else:
            t.cancel(order_id)  # the market moved away: re-price
            price = _q(price * (1 + Decimal(rng.choice([-1, 1]) * rng.randint(1, 8)) / 10_000))
        t.wait(rng.uniform(1, 20) if mode == "twap" else rng.uniform(0.2, 2))


def momentum(t: Tape, mode: str) -> None:
    """A burst of aggressive orders on one side, filled; unwound minutes later
    at wherever the market went."""
    rng = t.rng
    bot, market = t.agent("mom"), t.market("SOL")
    side = rng.choice(["buy", "sell"])
    other = "sell" if side == "buy" else "buy"
    price = Decimal(rng.randint(2_000, 20_000)) / 100
    held = 0
    for _ in range(rng.randint(5, 25)):
        qty = rng.randint(1, 10)
        order_id = t.submit(bot, market, side, qty, price)
        t.wait(rng.uniform(0.05, 0.5))
        t.fill(order_id, qty, price)
        held += qty
        step = Decimal(rng.randint(1, 6)) / 10_000
        price = _q(price * (1 + step if side == "buy" else 1 - step))
        t.wait(rng.uniform(0.2, 2.0))
    t.wait(rng.uniform(120, 600))  # holds the position, then unwinds
    price = _q(price * (1 + Decimal(rng.choice([-1, 1]) * rng.randint(20, 200)) / 10_000))
    while held > 0:
        qty = min(held, rng.randint(5, 30))
        order_id = t.submit(bot, market, other, qty, price)
        t.wait(rng.uniform(0.5, 3))
        if mode == "passive" and rng.random() < 0.3:
            t.cancel(order_id)
            t.wait(rng.uniform(1, 4))
            continue
        t.fill(order_id, qty, price)
        held -= qty
        t.wait(rng.uniform(0.5, 5))


def hedge(t: Tape, mode: str) -> None:
    """Two agents of one owner: a trader and a hedger. `same_market`: the
    hedger offsets part of each trade in the same market a moment later (the
    owner's position changes); `cross_market`: it offsets all of it in another
    market (a future against the spot)."""
    rng = t.rng
    trader, hedger = t.agent("desk.trader"), t.agent("desk.hedger")
    spot, perp = t.market("BTC"), t.market("BTC-PERP")
    price = Decimal(rng.randint(9_000, 11_000)) / 100
    for _ in range(rng.randint(4, 12)):
        side = rng.choice(["buy", "sell"])
        other = "sell" if side == "buy" else "buy"
        qty = rng.randint(5, 40)
        order_id = t.submit(trader, spot, side, qty, price)
        t.wait(rng.uniform(0.1, 2))
        t.fill(order_id, qty, price)
        t.wait(rng.uniform(0.05, 1.5))
        if mode == "same_market":
            part = max(1, int(qty * rng.uniform(0.15, 0.4)))
            hedge_price = _q(
                price * (1 + Decimal(rng.choice([-1, 1]) * rng.randint(3, 15)) / 10_000)
            )
            hedge_id = t.submit(hedger, spot, other, part, hedge_price)
            t.wait(rng.uniform(0.1, 2))
            t.fill(hedge_id, part, hedge_price)
        else:
            hedge_id = t.submit(hedger, perp, other, qty, _q(price * Decimal("1.001")))
            t.wait(rng.uniform(0.1, 2))
            t.fill(hedge_id, qty, _q(price * Decimal("1.001")))
        t.wait(rng.uniform(5, 90))
        price = _q(price * (1 + Decimal(rng.gauss(0, 10)) / 10_000))


# --- planted manipulations ----------------------------------------------------------


def _history(t: Tape, agent: str, market: str, price: Decimal, n: int = 8) -> None:
    """An agent's ordinary small orders before it manipulates (its usual size):
    resting quotes away from the touch, withdrawn after a while."""
    for i in range(n):
        side = "buy" if i % 2 else "sell"
        away = price - TICK * 20 if side == "buy" else price + TICK * 20
        order_id = t.submit(agent, market, side, t.rng.randint(1, 3), away)
        t.wait(t.rng.uniform(6, 30))
        t.cancel(order_id)
        t.wait(t.rng.uniform(1, 10))


def wash(t: Tape, mode: str) -> None:
    rng = t.rng
    price = _q(Decimal(rng.randint(5_000, 15_000)) / 100)
    market = t.market("XRP")
    if mode == "same_agent":  # buys from and sells to itself, at once
        a = b = t.agent("sly")
        qty_a = qty_b = rng.randint(2, 50)
        gap, price_b = rng.uniform(0.001, 1), price
    elif mode == "two_agents":  # two bots of one owner cross each other
        a, b = t.agent("ring.a"), t.agent("ring.b")
        qty_a = qty_b = rng.randint(2, 50)
        gap, price_b = rng.uniform(0.01, 5), price
    else:  # nearly the same price and an overlapping quantity, within the threshold
        a, b = t.agent("ring.a"), t.agent("ring.b")
        qty_a = rng.randint(10, 50)
        qty_b = max(1, int(qty_a * rng.uniform(0.8, 1)))
        gap = rng.uniform(5, 50)
        price_b = price + TICK if price >= 100 else price
    buy = t.submit(a, market, "buy", qty_a, price)
    sell = t.submit(b, market, "sell", qty_b, price_b)
    t.wait(0.01)
    t.fill(buy, qty_a, price)
    t.wait(gap)
    t.fill(sell, qty_b, price_b)


def spoof(t: Tape, mode: str) -> None:
    rng = t.rng
    bot, market = t.agent("spoofer"), t.market("ADA")
    price = _q(Decimal(rng.randint(5_000, 15_000)) / 100)
    _history(t, bot, market, price)
    side = rng.choice(["buy", "sell"])
    other = "sell" if side == "buy" else "buy"
    big = rng.randint(30, 200)
    if mode == "resting_other":  # the real order rests first, the spoof pulls the market to it
        real = t.submit(bot, market, other, rng.randint(1, 3), price)
        t.wait(rng.uniform(0.5, 3))
        spoof_id = t.submit(bot, market, side, big, price)
    else:
        spoof_id = t.submit(bot, market, side, big, price)
        t.wait(rng.uniform(0.1, 1))
        real = t.submit(bot, market, other, rng.randint(1, 3), price)
    placed = t.ts
    t.wait(rng.uniform(0.1, 1.5))
    t.fill(real, 1, price)
    if mode == "slow":  # pulled just inside the 5 s threshold
        t.ts = max(t.ts + 1, placed + int(rng.uniform(3.5, 3.9) * SECOND))
    else:
        t.wait(rng.uniform(0.05, 2))
    t.cancel(spoof_id)


def layer(t: Tape, mode: str) -> None:
    rng = t.rng
    bot, market = t.agent("layerer"), t.market("LTC")
    price = _q(Decimal(rng.randint(5_000, 15_000)) / 100)
    _history(t, bot, market, price, n=4)
    side = rng.choice(["buy", "sell"])
    other = "sell" if side == "buy" else "buy"
    step = -TICK if side == "buy" else TICK
    levels = {"five": 5, "six": 6, "deep": rng.randint(7, 10)}[mode]
    stack = []
    for i in range(levels):
        stack.append(t.submit(bot, market, side, rng.randint(2, 4), price + step * (i + 1)))
        t.wait(rng.uniform(0.2, 3))
    real = t.submit(bot, market, other, rng.randint(1, 2), price)
    t.wait(rng.uniform(0.5, 3))
    t.fill(real, 1, price)
    t.wait(rng.uniform(6, 15))  # cancelled well after the spoofing threshold
    pulled = stack if mode != "six" else stack[: (len(stack) + 1) // 2 + 1]
    for order_id in pulled:
        t.cancel(order_id)
        t.wait(rng.uniform(0.2, 2))


def rapid(t: Tape, mode: str) -> None:
    rng = t.rng
    bot = t.agent("burst")
    markets = [t.market("DOT")] if mode != "two_markets" else [t.market("DOT"), t.market("ATOM")]
    count = rng.randint(125, 180)
    within = rng.uniform(30, 55)
    for i in range(count):
        market = markets[i % len(markets)]
        accepted = mode != "refused" or i < 120
        t.submit(bot, market, "buy", 1, Decimal("100") + TICK * i, accepted=accepted)
        t.wait(within / count)


def concentrate(t: Tape, mode: str) -> None:
    rng = t.rng
    market = t.market("DOGE")
    if mode == "reported":
        t.position(t.agent("whale"), market, Decimal(rng.randint(2_600, 5_000)), Decimal(100))
    elif mode == "fills":
        bot = t.agent("whale")
        held, target = 0, rng.randint(2_600, 4_000)
        while held < target:
            qty = min(rng.randint(200, 600), target - held)
            order_id = t.submit(bot, market, "buy", qty, Decimal(100))
            t.wait(rng.uniform(1, 10))
            t.fill(order_id, qty, Decimal(100))
            held += qty
    else:  # two agents of one firm together
        for name in ("whale.a", "whale.b"):
            t.position(t.agent(name), market, Decimal(rng.randint(1_400, 2_000)), Decimal(100))
            t.wait(rng.uniform(1, 30))


def bypass(t: Tape, mode: str) -> None:
    bot, market = t.agent("rogue"), t.market("TRX")
    price = Decimal(100)
    order_id = t.submit(bot, market, "buy", 2, price)
    t.wait(1)
    t.fill(order_id, 2, price)
    t.wait(1)
    if mode == "unknown_order":
        t.bypass(bot, market, "buy", f"{bot}-ghost", ["unknown_order"])
    elif mode == "overfill":
        t.bypass(bot, market, "buy", order_id, ["overfill"])
    else:
        t.bypass(bot, market, "buy", order_id, ["overfill", "kill_switch"])


ORDINARY: list[tuple[str, Callable[[Tape, str], None], tuple[str, ...]]] = [
    ("market_maker", market_maker, ("replace", "amend")),
    ("twap", twap, ("twap", "iceberg")),
    ("momentum", momentum, ("aggressive", "passive")),
    ("hedge", hedge, ("same_market", "cross_market")),
]
PLANTED: list[tuple[str, Callable[[Tape, str], None], tuple[str, ...]]] = [
    ("wash_trading", wash, ("same_agent", "two_agents", "near_price")),
    ("spoofing", spoof, ("before_fill", "resting_other", "slow")),
    ("layering", layer, ("five", "six", "deep")),
    ("rapid_fire", rapid, ("one_market", "two_markets", "refused")),
    ("concentration", concentrate, ("reported", "fills", "two_agents")),
    ("gate_bypass", bypass, ("unknown_order", "overfill", "kill_switch")),
]


def generate(*, ordinary: int = 520, planted_per_variant: int = 4, seed: int = 19) -> list[Case]:
    """`ordinary` ordinary cases spread over the behaviours and their variants,
    and `planted_per_variant` cases of each variant of each manipulation."""
    rng = random.Random(seed)
    cases: list[Case] = []
    variants = [(name, build, mode) for name, build, modes in ORDINARY for mode in modes]
    for n in range(ordinary):
        name, build, mode = variants[n % len(variants)]
        case = Case(f"c{n}", f"{name}/{mode}", None)
        build(Tape(case, random.Random(rng.random())), mode)
        cases.append(case)
    for label, build, modes in PLANTED:
        for mode in modes:
            for _ in range(planted_per_variant):
                case = Case(f"c{len(cases)}", f"{label}/{mode}", label)
                build(Tape(case, random.Random(rng.random())), mode)
                cases.append(case)
    return cases


# --- scoring ----------------------------------------------------------------------------


def alerts_for(case: Case, config: DetectorConfig) -> dict[str, int]:
    """Run the detectors over one case as the cycle does (per partition, seq
    order, the state through a JSON round trip halfway): findings per detector."""
    found: dict[str, int] = defaultdict(int)
    half = len(case.events) // 2
    for detector in detectors_for(config):
        states: dict[str, Any] = {}
        seen: set[str] = set()
        for index, event in enumerate(case.events):
            if index == half:  # a chunk ends here: the state is stored and reloaded
                states = {
                    key: detector.load_state(json.loads(json.dumps(detector.dump_state(s))))
                    for key, s in states.items()
                }
            if event.kind not in detector.kinds:
                continue
            key = detector.partition(event)
            if key is None:
                continue
            if key not in states:
                states[key] = detector.load_state({})
            for finding in detector.feed(states[key], event):
                if finding.fingerprint not in seen:  # stored once per fingerprint
                    seen.add(finding.fingerprint)
                    found[detector.name] += 1
    return dict(found)


@dataclass
class Score:
    planted: int = 0
    detected: int = 0  # planted cases with an alert of their detector
    flagged: int = 0  # cases with an alert of this detector
    false_positives: int = 0  # of those, cases not planted for it
    alerts: int = 0

    @property
    def recall(self) -> float:
        return self.detected / self.planted if self.planted else 1.0

    @property
    def precision(self) -> float:
        return (self.flagged - self.false_positives) / self.flagged if self.flagged else 1.0


def score(cases: list[Case], config: DetectorConfig) -> tuple[dict[str, Score], dict[str, Any]]:
    """Per-detector precision and recall over the labelled cases, and the
    alerts on ordinary cases by behaviour (where any false positives come from)."""
    scores = {name: Score() for name in DETECTOR_NAMES}
    noise: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for case in cases:
        found = alerts_for(case, config)
        if case.label is not None:
            scores[case.label].planted += 1
            if found.get(case.label):
                scores[case.label].detected += 1
        for name, count in found.items():
            score_ = scores[name]
            score_.flagged += 1
            score_.alerts += count
            if name != case.label:
                score_.false_positives += 1
                noise[case.behaviour][name] += count
    return scores, {b: dict(d) for b, d in noise.items()}


def as_table(scores: dict[str, Score]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "planted": s.planted,
            "detected": s.detected,
            "cases_flagged": s.flagged,
            "false_positive_cases": s.false_positives,
            "alerts": s.alerts,
            "precision": round(s.precision, 4),
            "recall": round(s.recall, 4),
        }
        for name, s in scores.items()
    }
