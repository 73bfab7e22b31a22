"""python -m compliance_client: keygen, register, rotate-key, outbox."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest

from compliance_client import ComplianceClient, Signer
from compliance_client.cli import main


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compliance_client", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )


def test_keygen_writes_a_private_key_only_its_owner_can_read(tmp_path):
    path = tmp_path / "bot.key"
    done = cli("keygen", "--out", str(path))
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    signer = Signer.from_private_key_file("bot-1", path)
    assert printed["public_key"] == signer.public_key_b64
    assert printed["key_id"] == signer.key_id

    again = cli("keygen", "--out", str(path))  # never overwrites a key
    assert again.returncode == 1
    assert "exists" in again.stderr
    assert Signer.from_private_key_file("bot-1", path).key_id == signer.key_id


def test_outbox_command_prints_pending_and_dead_letter_counts(tmp_path, capsys):
    path = tmp_path / "bot.outbox"
    client = ComplianceClient("http://127.0.0.1:9", "k", Signer.generate("bot-1"), outbox_path=path)
    client.sender.stop()  # nothing listens on port 9; keep the events pending
    client.fill(order_id="o-1", fill_id="f-1", quantity="1", price="2")
    client.cancel(order_id="o-1", reason="done")
    client.close()

    assert main(["outbox", str(path)]) == 0
    out = capsys.readouterr().out
    assert "agent:        bot-1" in out
    assert "pending:      2" in out
    assert "dead letters: 0" in out
    assert main(["outbox", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pending"] == 2
    assert main(["outbox", str(tmp_path / "missing")]) == 1


@pytest.mark.django_db(transaction=True)
def test_register_and_rotate_key_with_a_persons_token(live_server, people, tmp_path, capsys):
    from accounts.models import AgentKey
    from accounts.services import token_issue

    token, _ = token_issue(user=people["rita"])
    first, second = tmp_path / "k1", tmp_path / "k2"
    assert main(["keygen", "--out", str(first)]) == 0
    assert main(["keygen", "--out", str(second)]) == 0
    capsys.readouterr()

    args = ["--url", live_server.url, "--token", token, "--agent-id", "cli-bot"]
    assert main(["register", *args, "--key", str(first), "--name", "CLI", "--owner", "bob"]) == 0
    registered = json.loads(capsys.readouterr().out)
    signer = Signer.from_private_key_file("cli-bot", first)
    assert registered["key_id"] == signer.key_id
    assert registered["api_key"]

    bot = ComplianceClient(live_server.url, registered["api_key"], signer)
    assert bot.submit_order(
        order_id="o-1", market="BTC-USD", side="buy", quantity="1", price="1"
    ).accepted

    assert main(["rotate-key", *args, "--key", str(second), "--revoke", signer.key_id]) == 0
    rotated = json.loads(capsys.readouterr().out)
    new = Signer.from_private_key_file("cli-bot", second)
    assert rotated == {"agent_id": "cli-bot", "key_id": new.key_id, "revoked": signer.key_id}
    assert AgentKey.objects.get(key_id=signer.key_id).revoked_at_us is not None

    rebot = ComplianceClient(live_server.url, registered["api_key"], new)
    assert rebot.fill(order_id="o-1", fill_id="f-1", quantity="1", price="1")["status"] == "created"

    # A trader may not register bots: refused, with the server's answer, nothing stored.
    trader, _ = token_issue(user=people["bob"])
    third = tmp_path / "k3"
    main(["keygen", "--out", str(third)])
    code = main(
        ["register", "--url", live_server.url, "--token", trader, "--agent-id", "x-bot",
         "--key", str(third)]
    )  # fmt: skip
    assert code == 1
    assert "HTTP 403" in capsys.readouterr().err
    assert not AgentKey.objects.filter(agent__agent_id="x-bot").exists()
