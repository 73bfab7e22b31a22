"""The log itself: record hashing per CONTRACT section 9, triggers, verification, tampering."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

import pytest
import rfc8785
from django.core.management import call_command
from django.db import DatabaseError, connection, connections, transaction

from audit import store
from audit.models import Log, Record
from audit.services import Actor, AuditError, record_event
from audit.services.verify import verify_log
from tests.conftest import fill_payload

pytestmark = pytest.mark.django_db


def six_keys(record: dict) -> dict:
    return {
        k: record[k] for k in ("seq", "recorded_at_us", "event_type", "actor", "source", "data")
    }


def test_leaf_and_chain_hash_follow_the_contract_with_reference_jcs(bot):
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload(n)) for n in range(3)])
    prev = bytes(32)
    for record in Record.objects.order_by("seq"):
        shown = record.as_dict()
        leaf = hashlib.sha256(b"\x00" + rfc8785.dumps(six_keys(shown))).digest()
        assert shown["leaf_hash"] == leaf.hex()
        prev = hashlib.sha256(prev + leaf).digest()
        assert shown["chain_hash"] == prev.hex()
    assert bytes(Log.objects.get().chain_hash) == prev


@pytest.mark.django_db(transaction=True)
def test_server_event_outside_a_transaction_is_refused():
    with pytest.raises(AuditError):
        record_event("AUDIT_VERIFIED", actor=Actor.system(), data={"ok": True, "checked": 0})


def test_server_event_with_invalid_data_is_refused_and_rolls_back_caller():
    with pytest.raises(AuditError), transaction.atomic():
        record_event("DATA_PURGED", actor=Actor.system(), data={"from_seq": "x"})
    assert Record.objects.count() == 0


def test_record_timestamps_never_go_backwards(bot):
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload(n)) for n in range(3)])
    times = list(Record.objects.order_by("seq").values_list("recorded_at_us", flat=True))
    assert times == sorted(times)


def test_update_through_app_connection_is_refused(bot):
    with pytest.raises(DatabaseError), transaction.atomic():
        Record.objects.filter(seq=0).update(event_type="FORGED")
    assert Record.objects.get(seq=0).event_type == "AGENT_REGISTERED"


def test_delete_through_app_connection_is_refused(bot):
    with pytest.raises(DatabaseError), transaction.atomic():
        Record.objects.filter(seq=0).delete()
    assert Record.objects.filter(seq=0).exists()


def test_purge_may_clear_the_body_but_not_touch_hashes(bot):
    with transaction.atomic():
        Record.objects.filter(seq=0).update(body=None, purged=True)
    with pytest.raises(DatabaseError), transaction.atomic():
        Record.objects.filter(seq=0).update(leaf_hash=bytes(32))
    assert verify_log().ok


@pytest.mark.postgres
def test_truncate_is_refused_on_postgresql(bot):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_record CASCADE")
    assert Record.objects.exists()


def test_verify_audit_command_passes_on_intact_log(bot, capsys):
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload(n)) for n in range(4)])
    call_command("verify_audit")
    assert "5 records and 0 checkpoints verified" in capsys.readouterr().out


# --- tampering: an attacker with database access disables the triggers -------------


def tamper(sql: str, params: list) -> None:
    store.triggers_drop(connection)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    finally:
        store.triggers_install(connection)


@pytest.fixture
def ten_records(bot):
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload(n)) for n in range(9)])
    assert verify_log().ok
    return bot


def expect_first_bad(seq: int, capsys) -> None:
    result = verify_log()
    assert not result.ok
    assert result.first_bad_seq == seq
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit")
    assert exit_info.value.code == 1
    assert f"seq {seq}" in capsys.readouterr().err


def test_flipped_payload_byte_is_caught_at_its_seq(ten_records, capsys):
    body = Record.objects.get(seq=4).body
    tamper(
        "UPDATE audit_record SET body = %s WHERE seq = 4",
        [body.replace('"quantity":"2"', '"quantity":"3"')],
    )
    expect_first_bad(4, capsys)


def test_deleted_middle_row_is_caught_at_its_seq(ten_records, capsys):
    tamper("DELETE FROM audit_record WHERE seq = 5", [])
    expect_first_bad(5, capsys)


def test_swapped_rows_are_caught_at_the_first(ten_records, capsys):
    a, b = Record.objects.get(seq=3), Record.objects.get(seq=6)
    tamper("UPDATE audit_record SET seq = -1 WHERE seq = 3", [])
    tamper("UPDATE audit_record SET seq = 3 WHERE seq = 6", [])
    tamper("UPDATE audit_record SET seq = 6 WHERE seq = -1", [])
    assert Record.objects.get(seq=3).pk == b.pk
    assert Record.objects.get(seq=6).pk == a.pk
    expect_first_bad(3, capsys)


def test_altered_signature_is_caught_at_its_seq(ten_records, capsys):
    record = Record.objects.get(seq=7)
    parsed = json.loads(record.body)
    sig = parsed["source"]["signature"]
    parsed["source"]["signature"] = ("B" if sig[0] != "B" else "C") + sig[1:]
    tamper("UPDATE audit_record SET body = %s WHERE seq = 7", [rfc8785.dumps(parsed).decode()])
    expect_first_bad(7, capsys)


def test_rehashed_row_is_caught_by_the_chain(ten_records, capsys):
    # The attacker recomputes the leaf of the edited row but not the chain after it.
    record = Record.objects.get(seq=2)
    body = record.body.replace('"fill_id":"f-1"', '"fill_id":"f-X"')
    leaf = hashlib.sha256(b"\x00" + body.encode()).digest()
    tamper("UPDATE audit_record SET body = %s, leaf_hash = %s WHERE seq = 2", [body, leaf])
    expect_first_bad(2, capsys)


def test_truncated_tail_is_caught_against_the_head(ten_records, capsys):
    tamper("DELETE FROM audit_record WHERE seq = 9", [])
    result = verify_log()
    assert not result.ok
    assert result.first_bad_seq == 9


# --- concurrency ---------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_produce_a_contiguous_unforked_chain(make_bot):
    from audit.services.ingest import ingest_events

    bots = [make_bot(f"bot-{i}", owner="bob") for i in range(8)]
    base = Log.objects.get().size
    errors: list[BaseException] = []
    start = threading.Barrier(len(bots))

    def writer(handle) -> None:
        try:
            start.wait()
            for n in range(50):
                items = [
                    handle.signer.item("ORDER_FILLED", fill_payload(n * 10 + k)) for k in range(10)
                ]
                ingest_events(handle.agent, items)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(b,)) for b in bots]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    seqs = list(Record.objects.filter(seq__gte=base).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(base, base + 4000))
    assert Log.objects.get().size == base + 4000
    result = verify_log()
    assert result.ok, result.detail
    call_command("verify_audit")


def _verified(event_type: str = "AUDIT_VERIFIED") -> Any:
    from audit.services import pending_server_event

    return pending_server_event(
        event_type, actor=Actor.system("t"), data={"ok": True, "checked": 0}
    )


def _claimed(pending):
    """A unit of work as another app's store runs one: the head claimed in the
    caller's reads, the records appended into the caller's writes."""
    from audit.services import LogClaim
    from compliance_site.db import Batch

    reads, writes = Batch(), Batch()
    claim = LogClaim.queue(reads)
    reads.run()
    return claim, claim.append(pending, writes), writes


def test_a_log_claim_sends_the_records_and_the_callers_writes_together():
    before = Log.objects.get(name="default").size
    with transaction.atomic():
        _, records, writes = _claimed([_verified(), _verified()])
        assert [r.seq for r in records] == [before, before + 1]
        # nothing is stored until the caller sends its writes
        assert not Record.objects.filter(seq__gte=before).exists()
        mine = writes.add(
            "UPDATE audit_log SET name = name WHERE id = %s RETURNING size",
            [Log.objects.get(name="default").pk],
            fetch=True,
        )
        writes.run()
    assert list(Record.objects.filter(seq__gte=before).values_list("seq", flat=True)) == [
        before,
        before + 1,
    ]
    assert tuple(writes.results[mine]) == (before + 2,)  # the caller's statement saw the head moved
    assert verify_log().ok


def test_a_log_claim_refuses_an_append_before_its_writes_are_sent_and_stores_nothing_unsent():
    before = Log.objects.get(name="default").size
    with pytest.raises(ZeroDivisionError), transaction.atomic():  # noqa: PT012 (rollback)
        _claimed([_verified()])
        1 / 0  # noqa: B018
    with pytest.raises(AuditError, match="LogClaim"), transaction.atomic():  # noqa: PT012 (rollback)
        _claimed([_verified()])
        record_event("AUDIT_VERIFIED", actor=Actor.system("t"), data={"ok": True, "checked": 0})
    assert Log.objects.get(name="default").size == before
    assert not Record.objects.filter(seq__gte=before).exists()
    # and the connection is usable for appends again
    with transaction.atomic():
        record_event("AUDIT_VERIFIED", actor=Actor.system("t"), data={"ok": True, "checked": 0})
    assert Log.objects.get(name="default").size == before + 1


def test_a_claimed_head_is_appended_to_once():
    """A second append on the same claim would fork the chain: it is refused
    and nothing of it is stored."""
    before = Log.objects.get(name="default").size
    with transaction.atomic():
        claim, records, writes = _claimed([_verified()])
        assert records[0].seq == before
        writes.run()
    assert Log.objects.get(name="default").size == before + 1
    from compliance_site.db import Batch

    with pytest.raises(AuditError, match="appended to already"), transaction.atomic():
        claim.append([_verified()], Batch())
    assert Log.objects.get(name="default").size == before + 1
    assert verify_log().ok


def test_the_server_hashes_leaves_and_links_with_the_clients_functions():
    # the client's compliance_client.merkle.hash_leaf / chain_next are the one
    # definition; no server module writes the 0x00 prefix or a chain link itself
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    apps = ("accounts", "approvals", "audit", "surveillance", "reporting", "compliance_site")
    hand_written = [
        f"{path.relative_to(root)}:{n}"
        for app in apps
        for path in (root / app).rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if 'sha256(b"\\x00"' in line or "sha256(prev" in line
    ]
    assert hand_written == []
