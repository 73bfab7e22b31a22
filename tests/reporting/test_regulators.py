"""Per-regulator variants carry their regulator's fields, sections and labels."""

from __future__ import annotations

import pytest

from audit.models import Record
from reporting.regulators import GERMAN_LABELS, REGULATORS

from .test_reports import as_json, csv_blocks, pdf_text, read, rows

pytestmark = pytest.mark.django_db

FIRM = {
    "COMPLIANCE_FIRM_NAME": "Example Trading GmbH",
    "COMPLIANCE_FIRM_LEI": "529900T8BM49AURSDO55",
    "COMPLIANCE_FIRM_SEC_FILE_NUMBER": "8-12345",
    "COMPLIANCE_FIRM_DESIGNATED_OFFICER": "Jane Roe, CCO",
    "COMPLIANCE_FIRM_FCA_FRN": "123456",
    "COMPLIANCE_FIRM_BAFIN_ID": "BAK-98765",
    "COMPLIANCE_FIRM_COMPETENT_AUTHORITY": "BaFin",
    "COMPLIANCE_FIRM_VENUE_MIC": "XNAS",
}
FIELD_VALUES = {
    "firm_name": "Example Trading GmbH",
    "firm_lei": "529900T8BM49AURSDO55",
    "sec_file_number": "8-12345",
    "designated_executive_officer": "Jane Roe, CCO",
    "fca_frn": "123456",
    "bafin_id": "BAK-98765",
    "competent_authority": "BaFin",
    "venue_mic": "XNAS",
}


@pytest.fixture
def firm(settings):
    for name, value in FIRM.items():
        setattr(settings, name, value)


def test_no_variant_is_called_an_rts_25_report_format():
    for regulator in REGULATORS.values():
        text = " ".join([regulator.title, *regulator.legal_basis, *regulator.notes]).lower()
        assert "rts 25 report" not in text
        assert "rts 25 format" not in text


@pytest.mark.parametrize("code", sorted(REGULATORS))
def test_each_variant_carries_its_required_fields_and_sections(dataset, generate, firm, code):
    regulator = REGULATORS[code]
    report = generate("daily_trade", "json", regulator=code)
    doc = as_json(report)

    header = doc["report"]
    assert header["regulator"] == code
    assert header["regulator_title"] == regulator.title
    assert header["authority"] == regulator.authority
    assert header["legal_basis"] == list(regulator.legal_basis)
    for name in regulator.firm_fields:
        assert header["firm"][name] == FIELD_VALUES[name]
    assert set(regulator.sections) <= set(doc["sections"])
    assert "rts 25 report" not in read(report).decode().lower()
    assert doc["summary"]["orders_submitted"] == 16  # same figures in every variant


def test_unconfigured_firm_fields_say_which_setting_to_set(dataset, generate):
    doc = as_json(generate("daily_trade", "json", regulator="sec_17a4"))

    assert (
        doc["report"]["firm"]["sec_file_number"]
        == "not configured (set COMPLIANCE_FIRM_SEC_FILE_NUMBER)"
    )


def test_sec_17a4_export_lists_every_record_with_hashes(dataset, generate, firm):
    doc = as_json(generate("daily_trade", "json", regulator="sec_17a4"))

    trail = rows(doc, "audit_trail")
    assert len(trail) == 50
    stored = {s: bytes(h).hex() for s, h in Record.objects.values_list("seq", "leaf_hash")}
    assert all(t["leaf_hash"] == stored[t["seq"]] for t in trail)
    assert any("17a-4(f)" in basis for basis in doc["report"]["legal_basis"])


def test_mifid_rts6_records_carry_rts25_clock_evidence_and_controls(dataset, generate, firm):
    doc = as_json(generate("daily_trade", "json", regulator="mifid2_rts6"))

    assert "RTS 6" in doc["report"]["regulator_title"]
    assert "RTS 25 clock-synchronisation evidence" in doc["report"]["regulator_title"]
    clock = {c["agent_id"]: c for c in rows(doc, "clock_evidence")}
    assert clock["bot-c"]["beyond_tolerance"] == 1
    assert clock["bot-c"]["tolerance_us"] == 1000
    assert doc["report"]["thresholds"]["rts25_clock_tolerance_us"] == 1000
    assert [c["version"] for c in rows(doc, "pre_trade_controls")] == [1, 2]  # both set on D


def test_fca_variant_shows_alert_dispositions_for_stor(dataset, alerts_on_day, generate, firm):
    doc = as_json(generate("daily_trade", "json", regulator="fca"))

    assert doc["report"]["firm"]["fca_frn"] == "123456"
    assert ("spoofing", "reported") in {
        (a["detector"], a["disposition"]) for a in rows(doc, "alerts")
    }


def test_bafin_variant_is_labelled_in_german_in_csv_and_pdf(dataset, generate, firm):
    _, blocks = csv_blocks(read(generate("daily_trade", "csv", regulator="bafin")))
    text = pdf_text(read(generate("daily_trade", "pdf", regulator="bafin")))

    assert blocks["activity"][0][0] == "Kennung des Algorithmus"
    assert blocks["order_events"][0][:4] == [
        "Sequenznummer",
        "Zeitpunkt (UTC)",
        "Kennung des Algorithmus",
        "Ereignisart",
    ]
    summary = {row[0]: row[1] for row in blocks["summary"]}
    assert summary["orders_submitted"] == "Eingereichte Aufträge"
    for expected in (
        "Täglicher Handelsbericht",
        "Zusammenfassung",
        "Eingereichte Aufträge",
        GERMAN_LABELS["anomalies"],
        GERMAN_LABELS["clock_evidence"],
        "Institut",
        "BAK-98765",
    ):
        assert expected in text, expected


def test_esma_export_uses_rts24_field_names(dataset, generate, firm):
    _, blocks = csv_blocks(read(generate("daily_trade", "csv", regulator="esma")))

    header = blocks["order_events"][0]
    for name in (
        "Order identification code",
        "Buy-sell indicator",
        "Trading venue (MIC)",
        "Date and time (UTC)",
    ):
        assert name in header
