"""The outage test: the server is down, a bot records 1,000 fills and is
SIGKILLed mid-way; a new process on the same outbox, with the server back,
delivers every recorded event exactly once and in order, and a refused event
lands in the dead letters with its code.

The bots are real processes running only compliance_client (no Django); the
server is the live test server, stopped and started again on the same port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compliance_client import ComplianceClient, Signer
from compliance_client.outbox import connect, inspect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FILLS = 1000
KILL_AFTER = 400

BOT = textwrap.dedent(
    """
    import json, sys
    from compliance_client import ComplianceClient, Signer

    url, api_key, key_file, outbox, mode = sys.argv[1:6]
    client = ComplianceClient(
        url, api_key, Signer.from_private_key_file("outage-bot", key_file), outbox_path=outbox
    )
    if mode == "record":
        for n in range(FILLS):
            client.fill(order_id="o-1", fill_id=f"f-{n:04d}", quantity="1", price="1")
            print(n, flush=True)  # n is durable in the outbox now
    else:
        # A restarted bot: one event the server will refuse, then deliver everything.
        client.record("SYSTEM_ERROR", {"error_type": "restart"})  # no message: schema_violation
        left = client.flush(120)
        print(json.dumps({"left": left, "dead": client.dead_letters()}), flush=True)
    client.close()
    """
).replace("FILLS", str(FILLS))


def run_bot(args: list[str], **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", BOT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd="/",  # compliance_client as installed, not the repository's directory
        env={k: v for k, v in os.environ.items() if not k.startswith("DJANGO")},
        **kwargs,
    )


def test_outage_then_sigkill_then_restart_delivers_each_event_once_in_order(people, tmp_path: Path):
    from audit.models import Record
    from audit.services.agents import agent_register
    from tests.client import live

    signer = Signer.generate("outage-bot")
    key_file = tmp_path / "bot.key"
    signer.save_private_key(key_file)
    _, _, api_key = agent_register(
        agent_id="outage-bot",
        name="Outage",
        public_key=signer.public_key_b64,
        owner=people["bob"],
        acting_user=people["rita"],
    )
    port = live.free_port()
    url = f"http://127.0.0.1:{port}"
    outbox = tmp_path / "bot.outbox"

    server = live.start(port)
    gate = ComplianceClient(url, api_key, signer)
    assert gate.submit_order(
        order_id="o-1", market="BTC-USD", side="buy", quantity="1000", price="1"
    ).accepted
    gate.close()
    live.stop(server)  # the outage

    bot = run_bot([url, api_key, str(key_file), str(outbox), "record"])
    acked = -1
    assert bot.stdout is not None
    for line in bot.stdout:
        acked = int(line)
        if acked + 1 >= KILL_AFTER:
            bot.send_signal(signal.SIGKILL)
            break
    bot.wait(30)
    assert bot.returncode == -signal.SIGKILL
    acked += 1

    written = _pending_fill_ids(outbox)
    assert acked <= len(written) < FILLS  # killed mid-way; every acknowledged fill is on disk...
    assert written == [f"f-{n:04d}" for n in range(len(written))]  # ...in order, none lost
    assert Record.objects.filter(event_type="ORDER_FILLED").count() == 0

    server = live.start(port)  # the server is back; a new process opens the same outbox
    try:
        restarted = run_bot([url, api_key, str(key_file), str(outbox), "deliver"])
        out, err = restarted.communicate(timeout=180)
        assert restarted.returncode == 0, err
        report = json.loads(out)
    finally:
        live.stop(server)

    assert report["left"] == 0
    assert [(d["event_type"], d["code"]) for d in report["dead"]] == [
        ("SYSTEM_ERROR", "schema_violation")
    ]
    fills = [
        (r.seq, r.as_dict()["source"]["envelope"]["payload"]["fill_id"])
        for r in Record.objects.filter(agent_id="outage-bot", event_type="ORDER_FILLED").order_by(
            "seq"
        )
    ]
    assert [f for _, f in fills] == written  # each once, in the order the bot wrote them
    assert len({seq for seq, _ in fills}) == len(written)
    info = inspect(outbox)
    assert (info["pending"], info["delivered"], info["dead_letters"]) == (0, len(written), 1)


def _pending_fill_ids(path: Path) -> list[str]:
    conn = connect(path, readonly=True)
    try:
        rows = conn.execute("SELECT item FROM pending ORDER BY id").fetchall()
    finally:
        conn.close()
    return [json.loads(item)["payload"]["fill_id"] for (item,) in rows]
