"""POST /api/v1/log/verify/ is a job (issue 18, item 6; CONTRACT section 12), and
the verifier finds a deleted checkpoint and names the lowest bad seq (item 7)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from audit import store
from audit.models import Checkpoint, Log, LogVerification, Record
from audit.services.checkpoints import checkpoint_create
from audit.services.verify import verify_log
from audit.tasks import audit_jobs_sweep_task
from tests.conftest import fill_payload

pytestmark = pytest.mark.django_db


def test_verify_answers_202_and_the_worker_records_the_result(
    client_for, bot, django_capture_on_commit_callbacks
):
    alice = client_for("alice")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = alice.post("/api/v1/log/verify/")
    assert response.status_code == 202
    job_id = response.json()["id"]
    # queued: nothing verified or recorded yet, the request did not do the work
    queued = alice.get(f"/api/v1/log/verifications/{job_id}/").json()
    assert queued["status"] == "queued"
    assert queued["ok"] is None
    assert not Record.objects.filter(event_type="AUDIT_VERIFIED").exists()
    # the worker runs it (eager Celery: the after-commit wake-up runs the task)
    for callback in callbacks:
        callback()
    done = alice.get(f"/api/v1/log/verifications/{job_id}/").json()
    assert done["status"] == "done"
    assert done["ok"] is True
    assert done["first_bad_seq"] is None
    assert done["checked"] == Log.objects.get().size - 1  # everything before its own record
    record = Record.objects.get(event_type="AUDIT_VERIFIED")
    assert record.seq == done["seq"]
    assert record.actor_id == "alice"


def test_a_lost_wake_up_is_run_by_the_sweep(client_for, people):
    """The broker was down when the job was queued: the sweep runs it later."""
    job = LogVerification.objects.create(requested_by=people["alice"])
    LogVerification.objects.filter(pk=job.pk).update(
        created_at=job.created_at.replace(year=job.created_at.year - 1)
    )
    assert audit_jobs_sweep_task() == 1
    job.refresh_from_db()
    assert job.status == "done"
    assert job.ok is True


def test_running_a_verification_twice_has_one_effect(people):
    from audit.services.verify import verification_run

    job = LogVerification.objects.create(requested_by=people["alice"])
    verification_run(verification_id=str(job.pk))
    verification_run(verification_id=str(job.pk))
    assert Record.objects.filter(event_type="AUDIT_VERIFIED").count() == 1


def test_unknown_verification_is_404(client_for):
    response = client_for("alice").get(
        "/api/v1/log/verifications/00000000-0000-0000-0000-000000000000/"
    )
    assert response.status_code == 404


# --- checkpoints form a chain -------------------------------------------------------


def tamper(sql: str, params: list) -> None:
    store.triggers_drop(connection)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    finally:
        store.triggers_install(connection)


@pytest.fixture
def three_checkpoints(bot):
    """Records 0..11 with checkpoints at three sizes."""
    sizes = []
    for n in range(3):
        items = [bot.signer.item("ORDER_FILLED", fill_payload(4 * n + k)) for k in range(3)]
        assert bot.post_events(items).status_code == 201
        sizes.append(checkpoint_create(force=True).tree_size)
    assert verify_log().ok
    return sizes


def test_a_deleted_middle_checkpoint_is_found(three_checkpoints, capsys):
    first, middle, _last = three_checkpoints
    tamper("DELETE FROM audit_checkpoint WHERE tree_size = %s", [middle])
    result = verify_log()
    assert not result.ok
    assert result.first_bad_seq == first
    assert f"follows one at tree size {middle}" in result.detail
    with pytest.raises(SystemExit) as exit_code:
        call_command("verify_audit")
    assert exit_code.value.code == 1
    assert f"FAILED at seq {first}:" in capsys.readouterr().err


def test_a_deleted_newest_checkpoint_is_found_against_the_head(three_checkpoints):
    _first, middle, last = three_checkpoints
    tamper("DELETE FROM audit_checkpoint WHERE tree_size = %s", [last])
    result = verify_log()
    assert not result.ok
    assert result.first_bad_seq == middle
    assert "counts 3 checkpoints but 2 are stored" in result.detail


def test_the_first_bad_seq_is_the_lowest_any_check_finds(three_checkpoints):
    """A record deleted and the rest renumbered, with the head shrunk to match,
    while a later checkpoint still covers the old size: the answer is the seq
    of the deleted record, not the size the checkpoint check names."""
    _first, _middle, last = three_checkpoints
    tamper("DELETE FROM audit_record WHERE seq = 2", [])
    head_size = Log.objects.get().size
    for seq in range(3, head_size):
        tamper("UPDATE audit_record SET seq = seq - 1 WHERE seq = %s", [seq])
    tamper("UPDATE audit_log SET size = size - 1", [])
    result = verify_log()
    assert not result.ok
    assert result.first_bad_seq == 2, result.detail
    assert Checkpoint.objects.filter(tree_size=last).exists()
