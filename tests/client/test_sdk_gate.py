"""The gate helper in a strategy loop, against a live server: held orders
come back from ready() once a second person decides, the loop never waits,
cancel instructions reach the callback, errors are recorded."""

from __future__ import annotations

import gc
import time

import pytest

from compliance_client import ComplianceClient, Decision, compliance_gate, record_errors

pytestmark = pytest.mark.django_db(transaction=True)

# Above the default approval threshold (5000 notional): held.
BIG = {"market": "BTC-USD", "side": "buy", "quantity": "60", "price": "100"}
SMALL = {"market": "BTC-USD", "side": "buy", "quantity": "1", "price": "100"}


@pytest.fixture
def server(transactional_db, people):
    from tests.client import live
    from tests.conftest import holding_on

    holding_on(people)  # a new install holds nothing: orders over the threshold wait here
    running = live.start(live.free_port())
    yield running
    live.stop(running)


@pytest.fixture
def bot_client(server, register_bot):
    signer, api_key = register_bot("loop-bot")
    client = ComplianceClient(server.url, api_key, signer, retries=1, backoff=0.01)
    gates = []
    original = client.gate

    def gate(**kwargs):
        gates.append(original(**kwargs))
        return gates[-1]

    client.gate = gate  # every gate's poller stops before the live server does
    yield client
    for g in gates:
        g.close()
    client.close()


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def tasks_to_the_broker(settings, tmp_path):
    """As in production, the gate's after-commit tasks (the approval notice)
    go to the broker instead of running inside the request, as the test
    settings' eager mode would: they are not part of the gate's answer.

    The Redis the settings name when there is one (CI's first pass), else
    kombu's filesystem transport in a folder of this test's own, as `make
    run` uses it. Set explicitly, with Celery's cached connections dropped:
    an earlier test may have left another broker URL in the app's config."""
    from compliance_site import dispatch
    from compliance_site.celery import app

    url, options = str(settings.CELERY_BROKER_URL), {}
    if not url.startswith("redis"):
        url = "filesystem://"
        folders = {name: tmp_path / name for name in ("queue", "processed", "control")}
        for folder in folders.values():
            folder.mkdir()
        options = {
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "processed_folder": str(folders["processed"]),
            "control_folder": str(folders["control"]),
            "store_processed": False,
        }

    def use(broker_url: str, transport_options: dict, eager: bool) -> None:
        app.conf.broker_url, app.conf.task_always_eager = broker_url, eager
        app.conf.broker_transport_options = transport_options
        app._pool = None
        if "amqp" in app.__dict__:
            app.__dict__["amqp"]._producer_pool = None

    saved = (app.conf.broker_url, app.conf.broker_transport_options, app.conf.task_always_eager)
    use(url, options, False)
    yield
    dispatch.wait_idle()  # nothing still on its way to this broker
    use(*saved)


def test_held_orders_come_back_from_ready_once_decided_and_check_never_waits(
    bot_client, people, tasks_to_the_broker
):
    from approvals.services import approval_deny, approval_grant
    from compliance_site import dispatch

    # The poller's reads go to the same in-process server: few, so they
    # rarely coincide with a measured check.
    gate = bot_client.gate(poll_interval=2.0)
    # Connection, caches, the held path's first-time imports and the first
    # approval notice handed to the broker: not what is measured.
    gate.check(order_id="warm-up", **SMALL)
    gate.check(order_id="warm-up-held", **{**BIG, "quantity": "55"})
    assert dispatch.wait_idle()

    # check() must answer a held order in one request (< 50 ms), never wait
    # for the person. The server runs in this process: a collection of the
    # whole session's heap would land inside a request, so the collector is
    # paused while measuring. This 2-core machine is shared with other
    # sessions' test runs, which can hold the CPU for tens of ms: a round of
    # three checks is measured up to five times, and one round must have
    # every check under 50 ms (a check that waited for a decision fails all).
    rounds: list[list[float]] = []
    decisions: dict[str, Decision] = {}
    for attempt in range(5):
        timings = []
        gc.collect()
        gc.disable()
        try:
            for n in range(3):
                order_id, quantity = f"big-{attempt}-{n}", str(60 + 3 * attempt + n)
                start = time.perf_counter()
                decisions[order_id] = gate.check(order_id=order_id, **{**BIG, "quantity": quantity})
                timings.append(time.perf_counter() - start)
        finally:
            gc.enable()
        rounds.append(timings)
        if max(timings) < 0.050:
            break
    shown = [[round(t * 1000, 1) for t in r] for r in rounds]
    assert max(rounds[-1]) < 0.050, f"check() with the order held took (ms): {shown}"
    assert {d.decision for d in decisions.values()} == {"held"}
    first, second = decisions[f"big-{len(rounds) - 1}-0"], decisions[f"big-{len(rounds) - 1}-1"]
    assert len(gate.parked()) == 3 * len(rounds) + 1  # and warm-up-held
    assert gate.ready() == []  # nobody decided yet

    # A second person (alice, compliance officer; bob owns the bot) decides.
    approval_grant(request_id=first.approval["id"], acting_user=people["alice"], reason="ok")
    approval_deny(request_id=second.approval["id"], acting_user=people["alice"], reason="too big")

    ready: list[Decision] = []
    wait_for(lambda: ready.extend(gate.ready()) or len(ready) == 2)  # warm-up-held: still pending
    by_id = {d.order_id: d for d in ready}
    granted, denied = by_id[first.order_id], by_id[second.order_id]
    assert granted.accepted
    assert granted.status == "open"
    assert not denied.accepted
    assert denied.status == "rejected"
    assert denied.reasons[0]["code"] == "approval_denied"
    assert denied.reasons[0]["detail"] == "too big"
    assert first.order_id not in gate.parked()
    assert second.order_id not in gate.parked()
    assert gate.ready() == []
    assert bot_client.order(first.order_id)["status"] == "open"
    gate.close()


def test_cancel_all_from_a_gate_answer_reaches_the_callback(bot_client, people):
    from surveillance.services.kill_switch import kill_switch_activate

    gate = bot_client.gate()
    told: list[list[str] | None] = []
    gate.on_cancel(told.append)
    assert gate.check(order_id="o-1", **SMALL).accepted
    assert told == []

    kill_switch_activate(
        scope="agent", target="loop-bot", reason="runaway", acting_user=people["rita"]
    )
    decision = gate.check(order_id="o-2", **SMALL)
    assert decision.decision == "rejected"
    assert decision.cancel_all
    assert told == [None]
    gate.close()


def test_cancel_orders_in_a_gate_answer_reach_the_callback_with_the_ids():
    """Gate answers gain cancel_orders (CONTRACT section 12): the ids reach
    the callback. Exercised on the answer itself; the server side is built
    elsewhere."""
    from compliance_client.gate import Gate

    class Answering:
        base_url, timeout = "http://127.0.0.1:9", 1.0

        def _new_http(self):
            from compliance_client.http import Http

            return Http(self.base_url, None)

        def submit_order(self, **order):
            return Decision.from_response(
                {
                    "decision": "accepted",
                    "order_id": order["order_id"],
                    "status": "open",
                    "reasons": [],
                    "seq": 7,
                    "config_hash": "ab",
                    "approval": None,
                    "cancel_all": False,
                    "cancel_orders": ["o-3", "o-4"],
                    "new_field": 1,
                }
            )

    gate = Gate(Answering(), poll_interval=60)  # type: ignore[arg-type]
    told: list[list[str] | None] = []
    gate.on_cancel(told.append)
    decision = gate.check(order_id="o-5", **SMALL)
    assert told == [["o-3", "o-4"]]
    assert decision.extra == {"new_field": 1}
    gate.close()


def test_the_pipeline_step_passes_only_orders_allowed_now(bot_client, people):
    from approvals.services import approval_grant

    gate = bot_client.gate(poll_interval=0.05)
    step = compliance_gate(gate)
    proposed = [{"order_id": "p-1", **SMALL}, {"order_id": "p-2", **BIG}]
    assert [o["order_id"] for o in step(proposed)] == ["p-1"]

    held = bot_client.order("p-2")
    approval_grant(request_id=held["approval_id"], acting_user=people["alice"], reason="ok")
    wait_for(lambda: not gate.parked())
    assert [o["order_id"] for o in step([])] == ["p-2"]  # approved since the last step
    gate.close()


def test_an_exception_in_the_strategy_is_recorded_as_system_error_and_reraised(bot_client):
    from audit.models import Record

    @record_errors(bot_client)
    def strategy(tick: int) -> int:
        raise ZeroDivisionError(f"tick {tick}: no liquidity")

    with pytest.raises(ZeroDivisionError, match="no liquidity"):
        strategy(3)
    record = Record.objects.get(event_type="SYSTEM_ERROR").as_dict()
    payload = record["source"]["envelope"]["payload"]
    assert payload["error_type"] == "ZeroDivisionError"
    assert "strategy" in payload["message"]
    assert "tick 3" in payload["message"]


def test_wait_for_approval_blocks_until_decided(bot_client, people):
    import threading

    from django.db import connection

    from approvals.services import approval_grant

    decision = bot_client.submit_order(order_id="w-1", **BIG)

    def grant() -> None:
        try:
            approval_grant(
                request_id=decision.approval["id"], acting_user=people["alice"], reason="ok"
            )
        finally:
            connection.close()  # this thread's own: left open, the test database stays in use

    timer = threading.Timer(0.3, grant)
    timer.start()
    assert bot_client.wait_for_approval("w-1", timeout=20, poll=0.05).accepted
    timer.join()
