"""What each report contains, and the per-regulator variants.

A variant is named for what it is: the SEC Rule 17a-4 audit-trail export, the
MiFID II RTS 6 algorithmic trading records (which carry RTS 25 clock evidence:
RTS 25 is about clock synchronisation, not a report format), the FCA and
BaFin (German labels) records, and the ESMA order-record export with MiFIR
RTS 24 field names. A variant adds the firm identifiers its regulator needs,
its legal basis, sections, and labels; the figures are the same in all.

Column and section keys are stable machine names; labels are what people read
(CSV headers, PDF). Values are strings, integers or null, never floats."""

from __future__ import annotations

from dataclasses import dataclass, field

SECTION_COLUMNS: dict[str, tuple[str, ...]] = {
    "activity": (
        "agent_id",
        "owner",
        "events",
        "orders_submitted",
        "accepted",
        "held",
        "rejected",
        "amended",
        "fills",
        "cancels",
        "system_errors",
        "cancel_ratio",
        "error_rate",
    ),
    "order_events": (
        "seq",
        "recorded_at",
        "agent_id",
        "event_type",
        "order_id",
        "market",
        "side",
        "quantity",
        "price",
        "venue",
        "decision",
        "reasons",
        "detail",
    ),
    "limit_breaches": (
        "seq",
        "recorded_at",
        "agent_id",
        "order_id",
        "market",
        "code",
        "limit",
        "value",
        "detail",
    ),
    "kill_switches": ("seq", "recorded_at", "action", "scope", "target", "actor", "reason"),
    "approvals": (
        "approval_id",
        "kind",
        "subject_id",
        "requested_by",
        "requested_at",
        "status",
        "decided_by",
        "decided_at",
        "decision_seconds",
        "reason",
    ),
    "alerts": (
        "alert_id",
        "detector",
        "severity",
        "agent_id",
        "market",
        "occurred_at",
        "status",
        "disposition",
        "closed_by",
        "closed_at",
        "note",
    ),
    "gate_bypasses": (
        "seq",
        "recorded_at",
        "agent_id",
        "order_id",
        "event_type",
        "market",
        "side",
        "quantity",
        "price",
        "reasons",
        "order_seq",
        "detail",
    ),
    "positions": (
        "agent_id",
        "market",
        "fills",
        "bought",
        "sold",
        "net_filled",
        "filled_notional",
        "last_reported_position",
        "last_reported_at",
        "position_at_generation",
    ),
    "anomalies": ("anomaly", "agent_id", "value", "threshold", "from", "to", "detail"),
    "clock_evidence": (
        "agent_id",
        "records",
        "max_abs_drift_us",
        "mean_abs_drift_us",
        "beyond_tolerance",
        "tolerance_us",
    ),
    "pre_trade_controls": ("version", "hash", "seq", "created_at"),
    "purges": ("seq", "recorded_at", "from_seq", "to_seq", "count", "actor"),
    "audit_trail": (
        "seq",
        "recorded_at",
        "recorded_at_us",
        "event_type",
        "actor_type",
        "actor_id",
        "agent_id",
        "order_id",
        "purged",
        "leaf_hash",
        "chain_hash",
    ),
}

SECTION_TITLES: dict[str, str] = {
    "summary": "Summary",
    "activity": "Activity per algorithm (agent)",
    "order_events": "Order lifecycle events",
    "limit_breaches": "Limit breaches",
    "kill_switches": "Kill-switch activations and releases",
    "approvals": "Approvals and decision times",
    "alerts": "Surveillance alerts and dispositions",
    "gate_bypasses": "Executions the gate did not allow (gate bypass)",
    "positions": "Positions",
    "anomalies": "Anomalies",
    "clock_evidence": "Clock evidence (RTS 25 clock synchronisation)",
    "pre_trade_controls": "Pre-trade control configurations in force",
    "purges": "Retention purges (modifications of the log)",
    "audit_trail": "Audit trail (every record, with its hashes)",
}

SUMMARY_METRICS: tuple[str, ...] = (
    "records",
    "from_seq",
    "to_seq",
    "orders_submitted",
    "orders_accepted",
    "orders_held",
    "orders_rejected",
    "orders_amended",
    "amendments_rejected",
    "fills",
    "orders_cancelled",
    "venue_rejections",
    "gate_bypasses",
    "limit_breaches",
    "kill_switch_activations",
    "kill_switch_releases",
    "approvals_requested",
    "approvals_granted",
    "approvals_denied",
    "approvals_expired",
    "approval_mean_decision_seconds",
    "approval_max_decision_seconds",
    "alerts",
    "alerts_open",
    "system_errors",
    "anomalies",
    "purged_records",
)

# What each kind of report holds, before a variant adds its own sections.
KIND_SECTIONS: dict[str, tuple[str, ...]] = {
    "daily_trade": (
        "activity",
        "order_events",
        "limit_breaches",
        "kill_switches",
        "approvals",
        "alerts",
        "gate_bypasses",
        "positions",
        "anomalies",
        "clock_evidence",
    ),
    "positions": ("positions", "activity"),
    "full_compliance": (
        "activity",
        "order_events",
        "limit_breaches",
        "kill_switches",
        "approvals",
        "alerts",
        "gate_bypasses",
        "positions",
        "anomalies",
        "clock_evidence",
        "pre_trade_controls",
        "purges",
    ),
    "quarterly": (
        "activity",
        "order_events",
        "limit_breaches",
        "kill_switches",
        "approvals",
        "alerts",
        "gate_bypasses",
        "positions",
        "anomalies",
        "clock_evidence",
        "pre_trade_controls",
        "purges",
        "audit_trail",
    ),
}
SECTION_ORDER: tuple[str, ...] = tuple(SECTION_COLUMNS)

KIND_TITLES: dict[str, str] = {
    "daily_trade": "Daily trade report",
    "positions": "Position report",
    "full_compliance": "Full compliance report",
    "quarterly": "Quarterly compliance report and record export",
}

# Firm identifiers: report header field -> Django setting that holds it.
FIRM_SETTINGS: dict[str, str] = {
    "firm_name": "COMPLIANCE_FIRM_NAME",
    "firm_lei": "COMPLIANCE_FIRM_LEI",
    "sec_file_number": "COMPLIANCE_FIRM_SEC_FILE_NUMBER",
    "designated_executive_officer": "COMPLIANCE_FIRM_DESIGNATED_OFFICER",
    "fca_frn": "COMPLIANCE_FIRM_FCA_FRN",
    "bafin_id": "COMPLIANCE_FIRM_BAFIN_ID",
    "competent_authority": "COMPLIANCE_FIRM_COMPETENT_AUTHORITY",
    "venue_mic": "COMPLIANCE_FIRM_VENUE_MIC",
}


@dataclass(frozen=True)
class Regulator:
    code: str
    title: str
    authority: str
    legal_basis: tuple[str, ...]
    firm_fields: tuple[str, ...]
    sections: tuple[str, ...]
    language: str = "en"
    labels: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


GERMAN_LABELS: dict[str, str] = {
    # sections
    "summary": "Zusammenfassung",
    "activity": "Aktivität je Algorithmus (Agent)",
    "order_events": "Auftragsereignisse (Lebenszyklus)",
    "limit_breaches": "Limitverletzungen",
    "kill_switches": "Not-Aus-Aktivierungen und -Freigaben (Kill-Switch)",
    "approvals": "Freigaben und Entscheidungsdauer",
    "alerts": "Überwachungsmeldungen und Erledigung",
    "positions": "Positionen",
    "anomalies": "Auffälligkeiten",
    "clock_evidence": "Nachweis der Uhrensynchronisation (RTS 25)",
    "pre_trade_controls": "Geltende Vorhandelskontrollen (Konfigurationen)",
    "purges": "Löschungen nach Ablauf der Aufbewahrungsfrist",
    "audit_trail": "Prüfpfad (jeder Eintrag mit Hashwerten)",
    # header
    "report": "Bericht",
    "kind": "Berichtsart",
    "regulator": "Aufsicht",
    "authority": "Behörde",
    "legal_basis": "Rechtsgrundlage",
    "period": "Berichtszeitraum",
    "period_start": "Beginn (UTC)",
    "period_end": "Ende (UTC, ausschließlich)",
    "generated_at": "Erstellt am (UTC)",
    "report_id": "Berichtsnummer",
    "firm_name": "Institut",
    "firm_lei": "LEI des Instituts",
    "bafin_id": "BaFin-ID",
    "log_size": "Einträge im Protokoll bei Erstellung",
    "checkpoint": "Letzter signierter Prüfpunkt",
    "note": "Hinweis",
    # summary metrics
    "records": "Einträge im Zeitraum",
    "from_seq": "Erste Sequenznummer",
    "to_seq": "Letzte Sequenznummer",
    "orders_submitted": "Eingereichte Aufträge",
    "orders_accepted": "Angenommene Aufträge",
    "orders_held": "Zur Freigabe angehaltene Aufträge",
    "orders_rejected": "Abgelehnte Aufträge",
    "orders_amended": "Geänderte Aufträge",
    "amendments_rejected": "Abgelehnte Änderungen",
    "fills": "Ausführungen",
    "orders_cancelled": "Stornierte Aufträge",
    "kill_switch_activations": "Not-Aus-Aktivierungen",
    "kill_switch_releases": "Not-Aus-Freigaben",
    "approvals_requested": "Angeforderte Freigaben",
    "approvals_granted": "Erteilte Freigaben",
    "approvals_denied": "Verweigerte Freigaben",
    "approvals_expired": "Abgelaufene Freigaben",
    "approval_mean_decision_seconds": "Mittlere Entscheidungsdauer (s)",
    "approval_max_decision_seconds": "Längste Entscheidungsdauer (s)",
    "alerts_open": "Offene Überwachungsmeldungen",
    "system_errors": "Systemfehler",
    "purged_records": "Gelöschte Einträge",
    # columns
    "agent_id": "Kennung des Algorithmus",
    "owner": "Verantwortliche Person",
    "events": "Ereignisse",
    "accepted": "Angenommen",
    "held": "Angehalten",
    "rejected": "Abgelehnt",
    "amended": "Geändert",
    "cancels": "Stornierungen",
    "cancel_ratio": "Stornoquote",
    "error_rate": "Fehlerquote",
    "seq": "Sequenznummer",
    "recorded_at": "Zeitpunkt (UTC)",
    "recorded_at_us": "Zeitpunkt (µs seit 1970, UTC)",
    "event_type": "Ereignisart",
    "order_id": "Auftragskennung",
    "market": "Markt",
    "side": "Kauf/Verkauf",
    "quantity": "Menge",
    "price": "Preis",
    "venue": "Handelsplatz",
    "decision": "Entscheidung",
    "reasons": "Gründe",
    "detail": "Einzelheiten",
    "code": "Kontrolle",
    "limit": "Grenzwert",
    "value": "Wert",
    "action": "Vorgang",
    "scope": "Umfang",
    "target": "Ziel",
    "actor": "Handelnde Person",
    "reason": "Begründung",
    "approval_id": "Freigabe-Nr.",
    "subject_id": "Gegenstand",
    "requested_by": "Angefordert von",
    "requested_at": "Angefordert am",
    "status": "Status",
    "decided_by": "Entschieden von",
    "decided_at": "Entschieden am",
    "decision_seconds": "Entscheidungsdauer (s)",
    "alert_id": "Meldungs-Nr.",
    "detector": "Erkennungsregel",
    "severity": "Schweregrad",
    "occurred_at": "Aufgetreten am",
    "disposition": "Erledigung",
    "closed_by": "Geschlossen von",
    "closed_at": "Geschlossen am",
    "bought": "Gekauft",
    "sold": "Verkauft",
    "net_filled": "Netto ausgeführt",
    "filled_notional": "Ausgeführter Gegenwert",
    "last_reported_position": "Zuletzt gemeldete Position",
    "last_reported_at": "Zuletzt gemeldet am",
    "position_at_generation": "Position bei Erstellung",
    "anomaly": "Auffälligkeit",
    "threshold": "Schwelle",
    "from": "Von",
    "to": "Bis",
    "max_abs_drift_us": "Größte Abweichung (µs)",
    "mean_abs_drift_us": "Mittlere Abweichung (µs)",
    "beyond_tolerance": "Über der Toleranz",
    "tolerance_us": "Toleranz (µs)",
    "version": "Version",
    "hash": "Hashwert",
    "created_at": "Erstellt am",
    "count": "Anzahl",
    "actor_type": "Art des Handelnden",
    "actor_id": "Handelnder",
    "purged": "Gelöscht",
    "leaf_hash": "Blatt-Hash",
    "chain_hash": "Ketten-Hash",
    "kind_daily_trade": "Täglicher Handelsbericht",
    "kind_positions": "Positionsbericht",
    "kind_full_compliance": "Vollständiger Compliance-Bericht",
    "kind_quarterly": "Quartalsbericht und Datenexport",
}

# ESMA export: the order columns under their MiFIR RTS 24 field names.
ESMA_LABELS: dict[str, str] = {
    "agent_id": "Execution within firm (algorithm)",
    "recorded_at": "Date and time (UTC)",
    "order_id": "Order identification code",
    "market": "Instrument identification",
    "side": "Buy-sell indicator",
    "quantity": "Initial quantity",
    "price": "Limit price",
    "venue": "Trading venue (MIC)",
    "event_type": "Order event",
    "decision": "Pre-trade control outcome",
}

REGULATORS: dict[str, Regulator] = {
    "sec_17a4": Regulator(
        code="sec_17a4",
        title="SEC Rule 17a-4 audit-trail export",
        authority="U.S. Securities and Exchange Commission",
        legal_basis=(
            "17 CFR 240.17a-4(f)(2)(i)(A): electronic records kept with a complete time-stamped "
            "audit trail of every modification and deletion",
            "17 CFR 240.17a-3(a)(1) and 240.17a-4(a): blotters, kept for 6 years",
            "17 CFR 240.17a-4(b)(4): communications, kept for 3 years",
        ),
        firm_fields=("firm_name", "sec_file_number", "designated_executive_officer"),
        sections=("audit_trail", "purges"),
        notes=(
            "Every record is listed with its leaf and chain hash; a purge is the only change "
            "the log allows and is itself a record (DATA_PURGED). The evidence bundle of the "
            "same seq range "
            "proves the trail offline: python -m compliance_client.verify BUNDLE.zip",
        ),
    ),
    "mifid2_rts6": Regulator(
        code="mifid2_rts6",
        title=(
            "MiFID II RTS 6 algorithmic trading records, with RTS 25 clock-synchronisation evidence"
        ),
        authority="National competent authority under MiFID II",
        legal_basis=(
            "Directive 2014/65/EU (MiFID II) Art. 17: algorithmic trading",
            "Commission Delegated Regulation (EU) 2017/589 (RTS 6): kill functionality, pre-trade "
            "controls, real-time monitoring and records of algorithmic trading",
            "Commission Delegated Regulation (EU) 2017/574 (RTS 25): clock synchronisation to UTC "
            "(maximum divergence and timestamp granularity)",
            "MiFID II Art. 16(6) and Regulation (EU) No 600/2014 (MiFIR) Art. 25: records kept for "
            "at least 5 years",
        ),
        firm_fields=("firm_name", "firm_lei", "competent_authority"),
        sections=("clock_evidence", "pre_trade_controls", "kill_switches", "limit_breaches"),
        notes=(
            "Clock evidence: for every bot-signed record the server measures receipt time minus "
            "the bot's own timestamp (occurred_at_us); the figure bounds the bot clock's "
            "divergence plus "
            "transport latency. Server timestamps have microsecond granularity.",
        ),
    ),
    "fca": Regulator(
        code="fca",
        title="FCA algorithmic trading records (UK MiFID, FCA Handbook MAR 7A)",
        authority="Financial Conduct Authority (United Kingdom)",
        legal_basis=(
            "FCA Handbook MAR 7A: algorithmic trading",
            "UK RTS 6 (Delegated Regulation (EU) 2017/589 as it applies in the UK)",
            "UK MAR Art. 16: suspicious transaction and order reports (STOR)",
            "FCA Handbook SYSC 9: record-keeping",
        ),
        firm_fields=("firm_name", "fca_frn"),
        sections=("alerts", "kill_switches", "limit_breaches", "clock_evidence"),
        notes=("Alerts closed with the disposition 'reported' are those filed as STORs.",),
    ),
    "bafin": Regulator(
        code="bafin",
        title="BaFin: Aufzeichnungen zum algorithmischen Handel (§ 80 WpHG)",
        authority="Bundesanstalt für Finanzdienstleistungsaufsicht (BaFin)",
        legal_basis=(
            "§ 80 Abs. 2 bis 5 WpHG: algorithmischer Handel",
            "§ 83 WpHG: Aufzeichnungs- und Aufbewahrungspflichten",
            "Delegierte Verordnung (EU) 2017/589 (RTS 6)",
            "Delegierte Verordnung (EU) 2017/574 (RTS 25): Uhrensynchronisation",
        ),
        firm_fields=("firm_name", "firm_lei", "bafin_id"),
        sections=("clock_evidence", "pre_trade_controls", "kill_switches", "limit_breaches"),
        language="de",
        labels=GERMAN_LABELS,
        notes=(
            "Uhrensynchronisation: für jeden vom Algorithmus signierten Eintrag misst der "
            "Server den "
            "Empfangszeitpunkt abzüglich des Zeitstempels des Algorithmus; der Wert begrenzt die "
            "Abweichung der Uhr zuzüglich der Übertragungsdauer.",
        ),
    ),
    "esma": Regulator(
        code="esma",
        title="ESMA order-record export (MiFIR RTS 24 field names)",
        authority="European Securities and Markets Authority",
        legal_basis=(
            "Regulation (EU) No 600/2014 (MiFIR) Art. 25: records of orders",
            "Commission Delegated Regulation (EU) 2017/580 (RTS 24): order data field names",
            "Timestamps ISO 8601 UTC with microseconds; firm identified by ISO 17442 LEI; venue by "
            "ISO 10383 MIC",
        ),
        firm_fields=("firm_name", "firm_lei", "venue_mic"),
        sections=("order_events", "clock_evidence"),
        labels=ESMA_LABELS,
    ),
}


def sections_for(kind: str, regulator: str) -> tuple[str, ...]:
    wanted = set(KIND_SECTIONS[kind])
    if regulator:
        wanted |= set(REGULATORS[regulator].sections)
    return tuple(s for s in SECTION_ORDER if s in wanted)


def label(key: str, regulator: str) -> str:
    """What a person reads for a key: the variant's label, else the English one."""
    if regulator and key in REGULATORS[regulator].labels:
        return REGULATORS[regulator].labels[key]
    if key in SECTION_TITLES:
        return SECTION_TITLES[key]
    return key.replace("_", " ").capitalize()
