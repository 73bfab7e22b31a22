"""Evidence bundles from the real log, checked by the offline verifier; rollback
and forked histories are refused against a checkpoint the auditor kept."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import zipfile

import pytest
from django.core.management import call_command
from django.db import connection

from audit import log_key, store
from audit.models import Checkpoint, Log, LogExport, MerkleNode, Record
from audit.services.checkpoints import checkpoint_create
from audit.services.export import write_bundle
from compliance_client import merkle
from compliance_client.verify import verify_bundle
from tests.conftest import fill_payload

pytestmark = pytest.mark.django_db


def bundle_bytes(**kwargs) -> bytes:
    out = io.BytesIO()
    write_bundle(out, **kwargs)
    return out.getvalue()


def verify(data: bytes, **kwargs):
    return verify_bundle(
        io.BytesIO(data), log_public_key=log_key.public_key_raw(), workers=1, **kwargs
    )


def grow(bot, n: int, start: int = 0) -> None:
    response = bot.post_events(
        [bot.signer.item("ORDER_FILLED", fill_payload(start + k)) for k in range(n)]
    )
    assert response.status_code == 201


def test_full_bundle_verifies_offline(bot, client_for):
    grow(bot, 10)
    checkpoint_create(force=True)
    grow(bot, 5, 10)
    client_for("rita").post(f"/api/v1/agents/bot-1/keys/{bot.signer.key_id}/revoke/")
    result = verify(bundle_bytes())
    assert result.ok, result.failure
    assert result.records == Log.objects.get().size
    assert result.signatures == 15
    assert result.checkpoints == 2


def test_partial_bundle_with_omitted_prefix_verifies(bot):
    grow(bot, 10)
    checkpoint_create(force=True)
    grow(bot, 10, 10)
    checkpoint_create(force=True)
    data = bundle_bytes(from_seq=5, to_seq=Log.objects.get().size - 1)
    result = verify(data)
    assert result.ok, result.failure
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        lines = z.read("records.jsonl").splitlines()
    assert json.loads(lines[4])["omitted"] is True
    assert "source" in json.loads(lines[5])


def test_export_through_api_and_task(
    bot, client_for, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    grow(bot, 3)
    alice = client_for("alice")
    # a bot may not ask for bundles; auditors (viewers) may (see test_auditor_requests_a_bundle)
    assert bot.client.post("/api/v1/log/exports/", {}, format="json").status_code == 403
    with django_capture_on_commit_callbacks(
        execute=True
    ):  # the task is queued after commit (eager here)
        with_task = alice.post("/api/v1/log/exports/", {}, format="json")
    assert with_task.status_code == 202
    export_id = with_task.json()["id"]
    detail = client_for("carol").get(f"/api/v1/log/exports/{export_id}/").json()
    assert detail["status"] == "done"
    download = client_for("carol").get(detail["download_url"])
    data = b"".join(download.streaming_content)
    assert hashlib.sha256(data).hexdigest() == detail["sha256"]
    assert verify(data).ok


@pytest.mark.parametrize("body", [{"to_seq": 10_000}, {"from_seq": 3, "to_seq": 1}])
def test_impossible_export_ranges_are_400_and_nothing_queued(bot, client_for, body):
    response = client_for("alice").post("/api/v1/log/exports/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_export_range"
    assert not LogExport.objects.exists()


def test_export_command_and_offline_cli(bot, tmp_path):
    grow(bot, 4)
    out = tmp_path / "bundle.zip"
    call_command("export_audit", "--out", str(out))
    ok = subprocess.run(
        [sys.executable, "-m", "compliance_client.verify", str(out)], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # a record edited inside the bundle is caught and named
    with zipfile.ZipFile(out) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["records.jsonl"] = members["records.jsonl"].replace(
        b'"quantity":"2"', b'"quantity":"3"', 1
    )
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    failed = subprocess.run(
        [sys.executable, "-m", "compliance_client.verify", str(bad)], capture_output=True, text=True
    )
    assert failed.returncode == 1
    assert (
        "records.jsonl" in failed.stdout + failed.stderr
        or "MANIFEST" in failed.stdout + failed.stderr
    )


# --- the operator rolls the database back, or rewrites the tail -----------------------


def keep_checkpoint() -> str:
    return checkpoint_create(force=True).note


def rollback_to(size: int) -> None:
    """What restoring an older database backup looks like to the log."""
    store.triggers_drop(connection)
    try:
        Record.objects.filter(seq__gte=size).delete()
        MerkleNode.objects.filter(index__gte=0).exclude(
            pk__in=[n.pk for n in MerkleNode.objects.all() if (n.index + 1) << n.level <= size]
        ).delete()
        Checkpoint.objects.filter(tree_size__gt=size).delete()
        leaves = [
            bytes(h) for h in Record.objects.order_by("seq").values_list("leaf_hash", flat=True)
        ]
        frontier: list[bytes] = []
        for i, leaf in enumerate(leaves):
            frontier, _ = merkle.frontier_append(frontier, i, leaf)
        last = Record.objects.order_by("-seq").first()
        Log.objects.update(
            size=size, chain_hash=bytes(last.chain_hash), frontier=[h.hex() for h in frontier]
        )
    finally:
        store.triggers_install(connection)


def test_rollback_then_new_events_fails_against_kept_checkpoint(bot, tmp_path):
    grow(bot, 12)
    kept = keep_checkpoint()
    kept_size = Log.objects.get().size
    rollback_to(kept_size - 5)
    grow(bot, 8, 100)  # the log moves on from the restored state, past the kept size
    data = bundle_bytes()
    assert verify(data).ok  # internally consistent ...
    result = verify(
        data, trusted_checkpoint=kept
    )  # ... but not an extension of what the auditor kept
    assert not result.ok
    assert "append-only" in result.failure or "rewritten" in result.failure
    note = tmp_path / "kept.note"
    note.write_text(kept)
    bundle = tmp_path / "b.zip"
    bundle.write_bytes(data)
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "compliance_client.verify",
            str(bundle),
            "--trusted-checkpoint",
            str(note),
        ],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 1
    assert "trusted checkpoint" in (cli.stdout + cli.stderr)


def test_truncated_log_fails_against_kept_checkpoint(bot):
    grow(bot, 12)
    kept = keep_checkpoint()
    rollback_to(Log.objects.get().size - 5)
    result = verify(bundle_bytes(), trusted_checkpoint=kept)
    assert not result.ok
    assert "truncated" in result.failure or "rolled back" in result.failure


def test_honest_growth_passes_against_kept_checkpoint(bot):
    grow(bot, 7)
    kept = keep_checkpoint()
    grow(bot, 9, 50)
    result = verify(bundle_bytes(), trusted_checkpoint=kept)
    assert result.ok, result.failure


def test_bundle_with_substitute_log_key_fails_against_pinned_key(bot):
    grow(bot, 3)
    data = bundle_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        keys = json.loads(z.read("keys.json"))
    assert base64.b64decode(keys["log"]["public_key"]) == log_key.public_key_raw()


def test_auditor_requests_a_bundle(
    bot, client_for, settings, tmp_path, django_capture_on_commit_callbacks
):
    from audit.models import LogExport

    settings.MEDIA_ROOT = tmp_path
    grow(bot, 2)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("carol").post("/api/v1/log/exports/", {}, format="json")
    assert response.status_code == 202
    export = LogExport.objects.get(pk=response.json()["id"])
    assert export.requested_by.username == "carol"
    assert export.status == "done"
