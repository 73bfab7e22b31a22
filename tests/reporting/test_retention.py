"""Retention with frozen time: records of known ages and types, legal holds,
the purge, and verification (verify_log and the offline verifier) afterwards.

The firm's retention_days is lowered to 365, so the legal minimums decide:
order records 5 years, blotters 6, communications 3, everything else 1."""

from __future__ import annotations

import copy
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction

from audit.models import Record
from audit.services import Actor, record_event
from audit.services.checkpoints import checkpoint_create
from audit.services.export import write_bundle
from audit.services.verify import verify_log
from compliance_client.verify import verify_bundle
from compliance_site.exceptions import Conflict, Forbidden
from reporting.models import LegalHold
from reporting.services.retention import (
    legal_hold_place,
    legal_hold_release,
    retention_manifest,
    retention_purge,
)
from surveillance.config import DEFAULT_CONFIG

pytestmark = pytest.mark.django_db

NOW = datetime(2032, 6, 15, 12, 0, tzinfo=UTC)


def years_ago(years: float) -> datetime:
    return NOW - timedelta(days=round(365.25 * years))


@dataclass
class Aged:
    """Every seq created, with whether the purge at NOW must clear it."""

    purge: set[int] = field(default_factory=set)
    keep: set[int] = field(default_factory=set)
    held: set[int] = field(default_factory=set)
    by_name: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, seq: int, expected: str) -> None:
        self.by_name[name] = seq
        {"purge": self.purge, "keep": self.keep, "held": self.held}[expected].add(seq)


@pytest.fixture
def aged(people, make_bot) -> Any:
    from surveillance.services.config import config_current, config_update

    out = Aged()
    with time_machine.travel(years_ago(8) - timedelta(days=1), tick=False) as clock:
        config_current()
        config = copy.deepcopy(DEFAULT_CONFIG)
        config["retention_days"] = 365
        config_update(config=config, acting_user=people["alice"])
        bots = {"bot-r": make_bot("bot-r", owner="bob"), "bot-h": make_bot("bot-h", owner="bob")}
        for seq, body in Record.objects.values_list("seq", "body"):
            # config and agent records: 'other', 1 year; bot-h's registration names it,
            # so the hold on bot-h covers it too
            if '"agent_id":"bot-h"' in body:
                out.add("held-agent-registration", seq, "held")
            else:
                out.add(f"setup-{seq}", seq, "purge")
        n = 0

        def event(bot: str, event_type: str, payload: dict[str, Any]) -> int:
            response = bots[bot].post_events([bots[bot].signer.item(event_type, payload)])
            assert response.status_code == 201, response.content
            return response.json()["results"][0]["seq"]

        def order(bot: str) -> int:
            nonlocal n
            n += 1
            payload = {"order_id": f"o{n}", "market": "BTC-USD", "side": "buy", "quantity": "1",
                       "price": f"100.{n}", "order_type": "limit"}  # fmt: skip
            response = bots[bot].client.post(
                "/api/v1/orders/", bots[bot].signer.item("ORDER_SUBMITTED", payload), format="json"
            )
            assert response.status_code == 201
            assert response.json()["decision"] == "accepted"
            return response.json()["seq"]

        def other() -> int:
            with transaction.atomic():
                return record_event(
                    "REPORT_GENERATED", actor=Actor.system("test"), data={"sha256": "0" * 64}
                ).seq

        # age: (order 5y, fill 6y, error 3y, other 1y)
        plan = {
            8: ("purge", "purge", "purge", "purge"),
            5.5: ("purge", "keep", "purge", "purge"),
            4: ("keep", "keep", "purge", "purge"),
            2: ("keep", "keep", "keep", "purge"),
            0.01: ("keep", "keep", "keep", "keep"),
        }
        for age, (o, f, e, x) in plan.items():
            clock.move_to(years_ago(age))
            out.add(f"order-{age}", order("bot-r"), o)
            fill = {"order_id": f"o{n}", "fill_id": f"f{n}", "quantity": "1", "price": "100"}
            out.add(f"fill-{age}", event("bot-r", "ORDER_FILLED", fill), f)
            error = {"error_type": "feed", "message": "stale"}
            out.add(f"error-{age}", event("bot-r", "SYSTEM_ERROR", error), e)
            out.add(f"other-{age}", other(), x)
            if age == 8:
                # old enough to go, but each is under one of the holds placed below
                out.add(
                    "held-agent-fill",
                    event("bot-h", "ORDER_FILLED", {**fill, "fill_id": "h1"}),
                    "held",
                )
                out.add("held-agent-error", event("bot-h", "SYSTEM_ERROR", error), "held")
                out.add("held-range-1", event("bot-r", "SYSTEM_ERROR", error), "held")
                out.add("held-range-2", event("bot-r", "SYSTEM_ERROR", error), "held")
                position = {"market": "BTC-USD", "quantity": "1", "price": "100"}
                out.add("held-type", event("bot-r", "POSITION_CHANGED", position), "held")
        clock.move_to(NOW - timedelta(hours=1))
        checkpoint_create(force=True)
    return out


@pytest.fixture
def holds(aged: Aged, people: dict[str, Any]) -> list[LegalHold]:
    with time_machine.travel(NOW - timedelta(minutes=30), tick=False):
        return [
            legal_hold_place(
                reason="SEC inquiry into bot-h", agent_id="bot-h", acting_user=people["adam"]
            ),
            legal_hold_place(
                reason="litigation: two error reports",
                from_seq=aged.by_name["held-range-1"],
                to_seq=aged.by_name["held-range-2"],
                acting_user=people["adam"],
            ),
            legal_hold_place(
                reason="position records frozen",
                event_types=["POSITION_CHANGED"],
                acting_user=people["adam"],
            ),
        ]


def purged_seqs() -> set[int]:
    return set(Record.objects.filter(purged=True).values_list("seq", flat=True))


def purge_now() -> Any:
    with time_machine.travel(NOW, tick=False):
        return retention_purge()


def bundle_verifies(tmp_path: Path) -> Any:
    path = tmp_path / "bundle.zip"
    with time_machine.travel(NOW + timedelta(minutes=5), tick=True), open(path, "wb") as fh:
        write_bundle(fh)
    return verify_bundle(path)


def test_purge_clears_exactly_what_is_past_retention_and_outside_every_hold(aged, holds, tmp_path):
    leaves_before = dict(Record.objects.values_list("seq", "leaf_hash"))

    summary = purge_now()

    purged = purged_seqs()
    assert purged == aged.purge
    assert len(purged & aged.keep) == 0, "nothing inside retention is purged"
    assert len(purged & aged.held) == 0, "nothing under a legal hold is purged"
    assert summary.count == len(aged.purge)
    # hashes stay, bodies go
    for seq, leaf in Record.objects.filter(seq__in=purged).values_list("seq", "leaf_hash"):
        assert bytes(leaf) == bytes(leaves_before[seq])
    assert not Record.objects.filter(seq__in=purged, body__isnull=False).exists()
    record = Record.objects.get(seq=summary.record_seqs[0]).as_dict()
    assert record["event_type"] == "DATA_PURGED"
    assert record["data"]["count"] == len(aged.purge)
    assert (record["data"]["from_seq"], record["data"]["to_seq"]) == (
        min(aged.purge),
        max(aged.purge),
    )
    assert record["data"]["active_holds"] == [h.pk for h in holds]
    assert Record.objects.get(seq=min(aged.purge)).as_dict() == {
        "seq": min(aged.purge),
        "event_type": Record.objects.get(seq=min(aged.purge)).event_type,
        "recorded_at_us": Record.objects.get(seq=min(aged.purge)).recorded_at_us,
        "purged": True,
        "leaf_hash": bytes(leaves_before[min(aged.purge)]).hex(),
        "chain_hash": bytes(Record.objects.get(seq=min(aged.purge)).chain_hash).hex(),
    }


def test_chain_checkpoints_and_offline_bundle_still_verify_after_a_purge(aged, holds, tmp_path):
    purge_now()

    result = verify_log()
    assert result.ok, result.detail
    call_command("verify_audit", stdout=io.StringIO())  # exits 1 (SystemExit) on a bad log
    offline = bundle_verifies(tmp_path)
    assert offline.ok, offline.failure
    assert offline.purged == len(aged.purge)


def test_a_purge_run_twice_has_one_effect(aged, holds):
    first = purge_now()
    records_after_first = Record.objects.count()
    purged_after_first = purged_seqs()

    second = purge_now()

    assert first.count == len(aged.purge)
    assert second.count == 0
    assert second.record_seqs == []
    assert Record.objects.count() == records_after_first  # no second DATA_PURGED
    assert purged_seqs() == purged_after_first


def test_without_anything_past_retention_nothing_is_purged(aged, holds):
    with time_machine.travel(years_ago(8) - timedelta(days=2), tick=False):
        summary = retention_purge()

    assert summary.count == 0
    assert purged_seqs() == set()


def test_released_hold_lets_its_records_go_on_the_next_purge(aged, holds, people):
    purge_now()
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        legal_hold_release(hold_id=holds[0].pk, reason="inquiry closed", acting_user=people["adam"])
    with time_machine.travel(NOW + timedelta(minutes=2), tick=False):
        summary = retention_purge()

    freed = {aged.by_name[f"held-agent-{what}"] for what in ("registration", "fill", "error")}
    assert summary.count == 3
    assert purged_seqs() == aged.purge | freed
    assert verify_log().ok


def test_holds_are_recorded_and_only_admins_place_or_release_them(aged, holds, people):
    placed = Record.objects.get(seq=holds[0].placed_seq).as_dict()
    assert placed["event_type"] == "LEGAL_HOLD_PLACED"
    assert placed["actor"]["id"] == "adam"
    assert placed["data"]["hold_id"] == holds[0].pk
    assert placed["data"]["reason"] == "SEC inquiry into bot-h"
    assert placed["data"]["scope"]["agent_id"] == "bot-h"
    before = Record.objects.count()

    with pytest.raises(Forbidden) as denied:
        legal_hold_place(reason="x", agent_id="bot-r", acting_user=people["alice"])
    with pytest.raises(Forbidden):
        legal_hold_release(hold_id=holds[0].pk, reason="x", acting_user=people["alice"])

    assert denied.value.code == "forbidden"
    assert Record.objects.count() == before
    assert LegalHold.objects.count() == 3
    assert LegalHold.objects.get(pk=holds[0].pk).is_active
    released = legal_hold_release(hold_id=holds[0].pk, reason="closed", acting_user=people["adam"])
    assert Record.objects.get(seq=released.released_seq).event_type == "LEGAL_HOLD_RELEASED"
    with pytest.raises(Conflict) as again:
        legal_hold_release(hold_id=holds[0].pk, reason="closed", acting_user=people["adam"])
    assert again.value.code == "already_released"


def test_a_hold_without_criteria_covers_the_whole_log(aged, people):
    with time_machine.travel(NOW - timedelta(minutes=30), tick=False):
        legal_hold_place(reason="regulator froze everything", acting_user=people["adam"])

    assert purge_now().count == 0
    assert purged_seqs() == set()


def test_commands_print_the_manifest_and_purge(aged, holds):
    out = io.StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("retention_manifest", "--json", stdout=out)
        due = sum(p["due_now"] for p in json.loads(out.getvalue())["policies"])
        purge_out = io.StringIO()
        call_command("retention_purge", stdout=purge_out)

    assert due == len(aged.purge) == json.loads(purge_out.getvalue())["count"]
    assert purged_seqs() == aged.purge


def test_manifest_lists_what_is_due_when_per_policy(aged, holds):
    with time_machine.travel(NOW, tick=False):
        manifest = retention_manifest()

    policies = {p["policy"]: p for p in manifest["policies"]}
    assert manifest["retention_days"] == 365
    assert policies["order_records"]["legal_minimum_years"] == 5
    assert policies["blotters"]["legal_minimum_years"] == 6
    assert policies["communications"]["legal_minimum_years"] == 3
    assert policies["order_records"]["due_now"] == 2  # 8 and 5.5 years old
    assert policies["blotters"]["due_now"] == 1  # the 8-year fill; bot-h's is held
    assert policies["blotters"]["held"] == 2  # bot-h's fill and the POSITION_CHANGED
    assert policies["communications"]["due_now"] == 3
    assert policies["communications"]["held"] == 3
    total_due = sum(p["due_now"] for p in manifest["policies"])
    assert total_due == len(aged.purge)
    # the 5.5-year-old fill falls due at 6 years: within 365 days
    assert policies["blotters"]["upcoming"]["within_365_days"] == 1
    fill_at = years_ago(5.5)
    assert policies["blotters"]["next_due_at"] == fill_at.replace(year=fill_at.year + 6).isoformat()
    assert {h["id"] for h in manifest["legal_holds"]} == {h.pk for h in holds}
    assert (
        next(h for h in manifest["legal_holds"] if h["scope"]["agent_id"] == "bot-h")[
            "covers_unpurged"
        ]
        >= 2
    )


def test_reports_after_a_purge_count_purged_records_and_still_cover_them(aged, holds, people):
    from reporting.periods import span
    from reporting.services.reports import report_generate, report_request
    from tests.reporting.test_reports import as_json, rows

    purge_now()
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        report, _ = report_request(
            kind="full_compliance",
            period=span(years_ago(9), NOW + timedelta(minutes=30)),  # the purge is at NOW
            fmt="json",
            regulator="sec_17a4",
            acting_user=people["alice"],
        )
        report = report_generate(report_id=report.pk)

    doc = as_json(report)
    assert doc["summary"]["purged_records"] == len(aged.purge)
    trail = {t["seq"]: t for t in rows(doc, "audit_trail")}
    assert all(trail[seq]["purged"] is True for seq in aged.purge)
    assert not any(trail[seq]["purged"] for seq in aged.keep | aged.held)
    purges = rows(doc, "purges")
    assert [p["count"] for p in purges] == [len(aged.purge)]


def test_inclusion_proofs_of_purged_records_still_verify_against_the_old_checkpoint(aged, holds):
    from audit.models import Checkpoint
    from audit.services.tree import inclusion_proof
    from compliance_client.merkle import verify_inclusion

    before = Checkpoint.objects.order_by("-timestamp_us").first()
    purge_now()

    for seq in sorted(aged.purge):
        leaf, path = inclusion_proof(seq=seq, tree_size=before.tree_size)
        assert verify_inclusion(leaf, seq, before.tree_size, path, bytes(before.root_hash)), seq
