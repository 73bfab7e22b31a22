"""A witness run by an auditor, over real HTTP, against the live server
(issue 16): it cosigns successive checkpoints, refuses a forked history and
says why; the offline verifier checks its cosignatures in an evidence bundle."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from audit import log_key
from audit.models import Checkpoint, Cosignature
from audit.services.checkpoints import checkpoint_create
from audit.services.export import write_bundle
from audit.services.witnesses import witness_register
from compliance_client import verify as offline
from compliance_client import witness
from compliance_client.bundle import CHECKPOINTS, MANIFEST, format_manifest
from compliance_client.note import cosign_checkpoint, witness_vkey
from tests.audit.test_transparency import rewrite_from
from tests.conftest import fill_payload

pytestmark = pytest.mark.django_db(transaction=True)

NAME = "auditor.example/w1"


def rewrite_checkpoints(src: bytes, fn) -> bytes:  # type: ignore[no-untyped-def]
    """Copy a bundle with its checkpoint notes transformed and the manifest
    recomputed, as someone stripping or forging cosignatures would."""
    with zipfile.ZipFile(io.BytesIO(src)) as zin:
        members = {i.filename: zin.read(i.filename) for i in zin.infolist()}
    notes = [fn(n) for n in json.loads(members[CHECKPOINTS])]
    members[CHECKPOINTS] = (json.dumps(notes, indent=1) + "\n").encode()
    members[MANIFEST] = format_manifest(
        {n: hashlib.sha256(d).hexdigest() for n, d in members.items() if n != MANIFEST}
    ).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zout:
        for name, data in members.items():
            zout.writestr(name, data)
    return out.getvalue()


def without_witness_lines(note: str) -> str:
    return "".join(line + "\n" for line in note.removesuffix("\n").split("\n") if NAME not in line)


def run_witness(live_server, tmp_path: Path, capsys, *extra: str) -> tuple[int, str]:
    code = witness.main(
        [
            "run",
            "--url",
            live_server.url,
            "--state",
            str(tmp_path / "state.json"),
            "--name",
            NAME,
            "--key",
            str(tmp_path / "witness.pem"),
            *extra,
        ]
    )
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_witness_cosigns_refuses_a_fork_and_the_verifier_checks_it(
    live_server, bot, people, tmp_path, capsys
):
    # Given an auditor's witness key, registered by the firm's admin
    assert witness.main(["keygen", "--name", NAME, "--out", str(tmp_path / "witness.pem")]) == 0
    out = capsys.readouterr().out
    public_b64 = out.split("public key (register it): ")[1].split("\n")[0]
    vkey = out.split("verifier key (give it to auditors): ")[1].split("\n")[0]
    witness_register(name=NAME, public_key=public_b64, acting_user=people["adam"])
    log_public = base64.b64encode(log_key.public_key_raw()).decode()

    # When the witness, from a clean state, sees a first checkpoint
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload(n)) for n in range(3)])
    first = checkpoint_create(force=True)
    code, said = run_witness(live_server, tmp_path, capsys, "--log-public-key", log_public)
    assert code == 0, said
    assert f"cosigned: tree_size {first.tree_size}" in said
    # Then and a second, larger one (checked with a consistency proof)
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload(n)) for n in range(3, 9)])
    second = checkpoint_create(force=True)
    code, said = run_witness(live_server, tmp_path, capsys)
    assert code == 0, said
    assert f"cosigned: tree_size {second.tree_size}" in said
    assert sorted(Cosignature.objects.values_list("checkpoint_id", flat=True)) == [
        first.pk,
        second.pk,
    ]
    # the public latest checkpoint carries the cosignature line
    latest = live_server_get(live_server, "/api/v1/log/checkpoints/latest/")
    assert latest["note"].endswith(Cosignature.objects.get(checkpoint=second).line)

    # The offline verifier passes the bundle with the witness's key...
    buf = io.BytesIO()
    write_bundle(buf)
    bundle = buf.getvalue()
    good = offline.verify_bundle(
        io.BytesIO(bundle), witness_keys=dict([_parse(vkey)]), min_witnesses=1
    )
    assert good.ok, good.failure
    assert good.witnessed_tree_size == second.tree_size
    assert good.cosignatures == 2
    bundle_path = tmp_path / "bundle.zip"
    bundle_path.write_bytes(bundle)
    assert offline.main([str(bundle_path), "--witness-key", vkey, "--min-witnesses", "1"]) == 0
    capsys.readouterr()

    # ...and fails it when the cosignatures are removed
    stripped = tmp_path / "stripped.zip"
    stripped.write_bytes(rewrite_checkpoints(bundle, without_witness_lines))
    assert offline.main([str(stripped), "--witness-key", vkey, "--min-witnesses", "1"]) == 1
    assert "no checkpoint is cosigned by 1" in capsys.readouterr().out

    # ...or when they were made by a key the auditor does not trust
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    impostor = Ed25519PrivateKey.generate()

    def forge(note: str) -> str:
        body = note.split("\n\n")[0] + "\n"
        _, line = cosign_checkpoint(body, NAME, impostor, 1_800_000_000)
        return without_witness_lines(note) + line

    forged = tmp_path / "forged.zip"
    forged.write_bytes(rewrite_checkpoints(bundle, forge))
    assert offline.main([str(forged), "--witness-key", vkey, "--min-witnesses", "1"]) == 1
    assert "no checkpoint is cosigned" in capsys.readouterr().out
    other_vkey = witness_vkey(NAME, impostor.public_key().public_bytes_raw())
    assert offline.main([str(bundle_path), "--witness-key", other_vkey]) == 1
    capsys.readouterr()

    # When a superuser rewrites history and the log key signs the forged tree
    rewrite_from(4)
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload(99))])
    forked = checkpoint_create(force=True)
    assert forked.tree_size == second.tree_size + 1  # nothing else looks wrong
    code, said = run_witness(live_server, tmp_path, capsys)

    # Then the witness refuses, says why, keeps the evidence, and cosigns nothing
    assert code == 2
    assert "REFUSED" in said
    assert "no valid consistency proof" in said
    assert f"last cosigned tree_size {second.tree_size}" in said
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["tree_size"] == second.tree_size
    [refusal] = state["refusals"]
    assert refusal["offered_note"].startswith(forked.note.split("\n\n")[0])
    assert refusal["held"]["note"] == second.note
    assert not Cosignature.objects.filter(checkpoint=forked).exists()
    # and keeps refusing on the next run
    code, _ = run_witness(live_server, tmp_path, capsys)
    assert code == 2
    assert witness.main(["status", "--state", str(tmp_path / "state.json")]) == 2
    assert Checkpoint.objects.count() == 4  # first, second, the bundle's, the forked one


def _parse(vkey: str) -> tuple[str, bytes]:
    from compliance_client.note import parse_witness_vkey

    return parse_witness_vkey(vkey)


def live_server_get(live_server, path: str) -> dict:  # type: ignore[no-untyped-def]
    import urllib.request

    with urllib.request.urlopen(live_server.url + path) as response:
        return json.loads(response.read())
