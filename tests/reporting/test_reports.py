"""Report figures against the known day (tests/reporting/conftest.py), in all
three formats, and the REPORT_GENERATED record proving each file."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from typing import Any

import pytest
from django.core.files.storage import default_storage
from pypdf import PdfReader

from audit.models import Record
from reporting.periods import day, quarter, span

from .conftest import D, at

pytestmark = pytest.mark.django_db

EXPECTED_SUMMARY = {
    "records": 50,
    "from_seq": 0,
    "to_seq": 49,
    "orders_submitted": 16,
    "orders_accepted": 13,
    "orders_held": 2,
    "orders_rejected": 2,
    "orders_amended": 1,
    "amendments_rejected": 0,
    "fills": 3,
    "orders_cancelled": 11,
    "venue_rejections": 0,  # the known day has no venue refusal and no gate bypass
    "gate_bypasses": 0,
    "limit_breaches": 1,
    "kill_switch_activations": 1,
    "kill_switch_releases": 1,
    "approvals_requested": 2,
    "approvals_granted": 1,
    "approvals_denied": 1,
    "approvals_expired": 0,
    "approval_mean_decision_seconds": "180.000",
    "approval_max_decision_seconds": "240.000",
    "alerts": 2,
    "alerts_open": 1,
    "system_errors": 2,
    "anomalies": 5,
    "purged_records": 0,
}
# agent, owner, events, submitted, accepted, held, rejected, amended, fills, cancels, errors,
# cancel ratio, error rate
EXPECTED_ACTIVITY = [
    ["bot-a", "bob", 9, 4, 2, 2, 1, 1, 2, 1, 0, "0.2500", "0.0000"],
    ["bot-b", "bob", 20, 10, 10, 0, 0, 0, 0, 10, 0, "1.0000", "0.0000"],
    ["bot-c", "oscar", 5, 2, 1, 0, 1, 0, 1, 0, 2, "0.0000", "0.4000"],
    ["bot-d", "bob", 2, 0, 0, 0, 0, 0, 0, 0, 0, None, "0.0000"],
]
EXPECTED_ANOMALIES = {
    ("gap_in_trading_hours", "bot-d", "18000.000"),
    ("cancel_ratio", "bot-b", "1.0000"),
    ("orders_without_fills", "bot-b", "10"),
    ("error_rate", "bot-c", "0.4000"),
    ("clock_drift", "bot-c", "5000"),
}


def read(report: Any) -> bytes:
    with default_storage.open(report.file, "rb") as fh:
        return fh.read()


def as_json(report: Any) -> dict[str, Any]:
    return json.loads(read(report))


def rows(doc: dict[str, Any], section: str) -> list[dict[str, Any]]:
    sec = doc["sections"][section]
    return [dict(zip(sec["columns"], row, strict=True)) for row in sec["rows"]]


def csv_blocks(data: bytes) -> tuple[dict[str, str], dict[str, list[list[str]]]]:
    """The CSV layout of reporting.services.render: header rows, then blocks."""
    header: dict[str, str] = {}
    blocks: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for row in csv.reader(io.StringIO(data.decode("utf-8"))):
        if not row:
            current = None
        elif row[0] == "report" and current is None:
            header[row[1]] = row[3]
        elif row[0] == "section":
            current = blocks[row[1]] = []
        else:
            assert current is not None
            current.append(row)
    return header, blocks


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 1
    return "\n".join(page.extract_text() for page in reader.pages)


def test_daily_trade_report_figures_match_the_known_day(dataset, alerts_on_day, generate):
    doc = as_json(generate("daily_trade", "json"))

    assert doc["summary"] == EXPECTED_SUMMARY
    assert doc["report"]["period"]["label"] == "2025-03-10"
    assert doc["report"]["coverage"]["from_seq"] == 0
    assert doc["report"]["coverage"]["to_seq"] == 49
    assert doc["sections"]["activity"]["rows"] == EXPECTED_ACTIVITY
    assert {
        (a["anomaly"], a["agent_id"], a["value"]) for a in rows(doc, "anomalies")
    } == EXPECTED_ANOMALIES
    approvals = rows(doc, "approvals")
    assert [(a["status"], a["decided_by"], a["decision_seconds"]) for a in approvals] == [
        ("granted", "alice", "120.000"),
        ("denied", "alice", "240.000"),
    ]
    assert [
        (k["action"], k["scope"], k["target"], k["actor"]) for k in rows(doc, "kill_switches")
    ] == [
        ("activated", "market", "ETH-USD", "rita"),
        ("released", "market", "ETH-USD", "rita"),
    ]
    breach = rows(doc, "limit_breaches")
    assert [(b["agent_id"], b["order_id"], b["code"]) for b in breach] == [
        ("bot-c", "c1", "restricted_market")
    ]
    alerts = rows(doc, "alerts")
    assert [(a["detector"], a["status"], a["disposition"]) for a in alerts] == [
        ("spoofing", "closed", "reported"),
        ("rapid_fire", "open", None),
    ]
    events = rows(doc, "order_events")
    assert len(events) == 32
    by_type: dict[str, int] = {}
    for e in events:
        by_type[e["event_type"]] = by_type.get(e["event_type"], 0) + 1
    assert by_type == {
        "ORDER_SUBMITTED": 15,
        "ORDER_REJECTED": 2,
        "ORDER_AMENDED": 1,
        "ORDER_FILLED": 3,
        "ORDER_CANCELED": 11,
    }
    # the fill reported after midnight belongs to the next day's report
    assert "f4" not in {e["detail"].removeprefix("fill ") for e in events}
    clock = {c["agent_id"]: c for c in rows(doc, "clock_evidence")}
    assert clock["bot-c"]["max_abs_drift_us"] == 5000
    assert clock["bot-c"]["beyond_tolerance"] == 1


def test_positions_report_shows_fills_reported_and_current_positions(dataset, generate):
    doc = as_json(generate("positions", "json"))

    positions = {(p["agent_id"], p["market"]): p for p in rows(doc, "positions")}
    assert set(positions) == {("bot-a", "BTC-USD"), ("bot-c", "ETH-USD"), ("bot-d", "SOL-USD")}
    a = positions[("bot-a", "BTC-USD")]
    assert (a["fills"], a["bought"], a["sold"], a["net_filled"], a["filled_notional"]) == (
        2,
        "2",
        "0",
        "2",
        "201",
    )
    assert a["last_reported_position"] == "2"
    assert a["last_reported_at"] == "2025-03-10T09:06:00.000000Z"
    assert a["position_at_generation"] == "3"  # the 1 filled on D+1 is in the live position only
    assert positions[("bot-d", "SOL-USD")]["last_reported_position"] == "6"
    assert "order_events" not in doc["sections"]


def test_full_compliance_report_over_a_span_has_every_section(
    dataset, alerts_on_day, generate, clock
):
    clock.move_to(at(0, 0, 5, days=2))
    doc = as_json(generate("full_compliance", "json", period=span(at(0, 0), at(0, 0, days=2))))

    assert set(doc["sections"]) >= {
        "activity", "order_events", "limit_breaches", "kill_switches", "approvals", "alerts",
        "positions", "anomalies", "clock_evidence", "pre_trade_controls", "purges",
    }  # fmt: skip
    assert doc["summary"]["fills"] == 4  # the D+1 fill is inside this span
    controls = rows(doc, "pre_trade_controls")
    assert [c["version"] for c in controls] == [1, 2]


def test_quarterly_report_exports_every_record_with_its_hashes(dataset, generate, clock):
    clock.move_to(at(0, 0, days=30))  # after the end of 2025-Q1
    doc = as_json(generate("quarterly", "json", period=quarter(2025, 1)))

    trail = rows(doc, "audit_trail")
    covered = Record.objects.filter(seq__lte=doc["summary"]["to_seq"])
    stored = list(covered.order_by("seq").values_list("seq", "leaf_hash", "chain_hash"))
    # everything before the report itself, which is recorded right after
    assert (
        Record.objects.filter(seq__gt=doc["summary"]["to_seq"]).get().event_type
        == "REPORT_GENERATED"
    )
    assert len(trail) == doc["summary"]["records"] == len(stored)
    assert [(t["seq"], t["leaf_hash"], t["chain_hash"]) for t in trail] == [
        (seq, bytes(leaf).hex(), bytes(chain).hex()) for seq, leaf, chain in stored
    ]


def test_a_day_without_records_gives_an_empty_report(dataset, generate):
    doc = as_json(generate("daily_trade", "json", period=day(D.replace(day=1))))

    assert doc["summary"]["records"] == 0
    assert doc["summary"]["from_seq"] is None
    assert doc["sections"]["order_events"]["rows"] == []


def test_csv_form_carries_the_same_figures(dataset, alerts_on_day, generate):
    header, blocks = csv_blocks(read(generate("daily_trade", "csv")))

    assert header["kind"] == "daily_trade"
    assert header["period.label"] == "2025-03-10"
    summary = {row[0]: row[2] for row in blocks["summary"]}
    assert summary == {k: "" if v is None else str(v) for k, v in EXPECTED_SUMMARY.items()}
    activity = blocks["activity"]
    assert activity[0][0] == "Agent id"
    assert activity[1:] == [["" if v is None else str(v) for v in row] for row in EXPECTED_ACTIVITY]
    assert len(blocks["order_events"]) == 1 + 32
    assert {(r[0], r[1], r[2]) for r in blocks["anomalies"][1:]} == EXPECTED_ANOMALIES


def test_pdf_form_renders_and_reads_back(dataset, alerts_on_day, generate):
    text = pdf_text(read(generate("daily_trade", "pdf")))

    for expected in (
        "Daily trade report",
        "2025-03-10",
        "Orders submitted",
        "Kill-switch activations and releases",
        "Approvals and decision times",
        "Surveillance alerts and dispositions",
        "Anomalies",
        "Clock evidence (RTS 25 clock synchronisation)",
        "restricted_market",
        "cancel_ratio",
        "gap_in_trading_hours",
        "venue outage",
        "reported",
    ):
        assert expected in text, expected


def test_pdf_caps_long_sections_and_points_to_the_full_forms(dataset, generate, settings):
    settings.REPORTING_PDF_MAX_ROWS = 5
    text = pdf_text(read(generate("daily_trade", "pdf")))

    assert "27 more rows: complete in the JSON and CSV forms of this report" in text


@pytest.mark.parametrize("fmt", ["json", "csv", "pdf"])
def test_report_generated_record_holds_the_sha256_of_the_file(dataset, generate, fmt):
    report = generate("daily_trade", fmt)

    digest = hashlib.sha256(read(report)).hexdigest()
    record = Record.objects.get(seq=report.seq).as_dict()
    assert record["event_type"] == "REPORT_GENERATED"
    assert record["data"]["sha256"] == digest == report.sha256
    assert record["data"]["from_seq"] == 0
    assert record["data"]["to_seq"] == 49
    assert record["data"]["records"] == 50
    assert record["data"]["bytes"] == report.size
    assert record["actor"] == {"type": "user", "id": "alice"}
