"""Writing a collected report as JSON, CSV or PDF, hashing every byte written.

JSON and CSV stream the spooled rows straight to the file, so they hold every
row of every section. The PDF is the human-readable form: the header, the
summary and every section, each table with its first REPORTING_PDF_MAX_ROWS
rows (default 500) and a line saying how many more are in the JSON and CSV
forms of the same report, so its size stays bounded whatever the period.

CSV layout: rows `report,<key>,<label>,<value>` for the header; then per
section a row `section,<key>,<title>,<row count>`, a row of column labels and
the data rows; the summary section's rows are `<metric>,<label>,<value>`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

from django.conf import settings

from ..regulators import SECTION_TITLES, label
from .content import ReportContent

CONTENT_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}


class HashingWriter(io.RawIOBase):
    """Passes bytes to a file and keeps their SHA-256 and count."""

    def __init__(self, target: BinaryIO):
        super().__init__()
        self.target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = bytes(data)
        self.target.write(view)
        self.sha256.update(view)
        self.size += len(view)
        return len(view)


def render(content: ReportContent, fmt: str, out: HashingWriter) -> None:
    buffered = io.BufferedWriter(out, buffer_size=1 << 20)
    if fmt == "json":
        text = io.TextIOWrapper(buffered, encoding="utf-8", newline="")
        _json(content, text)
        text.flush()
        text.detach()
    elif fmt == "csv":
        text = io.TextIOWrapper(buffered, encoding="utf-8", newline="")
        _csv(content, text)
        text.flush()
        text.detach()
    elif fmt == "pdf":
        buffered.write(_pdf(content))
    else:
        raise ValueError(f"unknown format {fmt!r}")
    buffered.flush()


def _regulator(content: ReportContent) -> str:
    return content.header.get("regulator") or ""


def _labels(content: ReportContent) -> dict[str, str]:
    reg = _regulator(content)
    keys: list[str] = ["summary", *content.summary]
    for spool in content.sections:
        keys += [spool.name, *spool.columns]
    return {k: label(k, reg) for k in dict.fromkeys(keys)}


def _json(content: ReportContent, out: io.TextIOWrapper) -> None:
    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    reg = _regulator(content)
    out.write('{"report":' + dumps(content.header))
    out.write(',\n"summary":' + dumps(content.summary))
    out.write(',\n"labels":' + dumps(_labels(content)))
    out.write(',\n"sections":{')
    for n, spool in enumerate(content.sections):
        out.write(("," if n else "") + "\n" + dumps(spool.name) + ":{")
        out.write(
            f'"title":{dumps(label(spool.name, reg))},"columns":{dumps(list(spool.columns))},'
        )
        out.write(f'"count":{spool.count},"rows":[')
        separator = "\n"
        for line in spool.lines():
            out.write(separator)
            out.write(line)
            separator = ",\n"
        out.write("]}")
    out.write("}}\n")


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flatten(f"{prefix}.{key}" if prefix else key, inner)
    elif isinstance(value, list):
        yield prefix, " | ".join(str(v) for v in value)
    else:
        yield prefix, value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _csv(content: ReportContent, out: io.TextIOWrapper) -> None:
    reg = _regulator(content)
    writer = csv.writer(out, lineterminator="\n")
    for key, value in _flatten("", content.header):
        writer.writerow(["report", key, label(key.split(".")[-1], reg), _cell(value)])
    writer.writerow([])
    writer.writerow(["section", "summary", label("summary", reg), len(content.summary)])
    for key, value in content.summary.items():
        writer.writerow([key, label(key, reg), _cell(value)])
    loads = json.loads
    for spool in content.sections:
        writer.writerow([])
        writer.writerow(["section", spool.name, label(spool.name, reg), spool.count])
        writer.writerow([label(c, reg) for c in spool.columns])
        for line in spool.lines():
            writer.writerow([_cell(v) for v in loads(line)])


# -- PDF ---------------------------------------------------------------------------------

PDF_CELL_CHARS = 48


def _latin1(text: Any) -> str:
    # The PDF's built-in fonts are Latin-1; anything else shows as '?'.
    return str(text).encode("latin-1", "replace").decode("latin-1")


def _pdf_value(value: Any) -> str:
    text = str(_cell(value))
    if len(text) > PDF_CELL_CHARS:
        text = text[: PDF_CELL_CHARS - 3] + "..."
    return _latin1(text)


def _pdf(content: ReportContent) -> bytes:
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    reg = _regulator(content)
    german = content.header.get("language") == "de"
    max_rows = int(getattr(settings, "REPORTING_PDF_MAX_ROWS", 500))
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.set_title(_latin1(content.header["title"]))
    pdf.set_creator("compliance back-office")
    # The file's own date is the report's generation time, not the moment it is
    # rendered, so a pinned (provisional) report renders to the same bytes.
    pdf.set_creation_date(
        datetime.strptime(content.header["generated_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=UTC
        )
    )
    pdf.add_page()
    width = pdf.epw
    head = content.header
    title = label(f"kind_{head['kind']}", reg) if german else head["title"]
    pdf.set_font("Helvetica", "B", 15)
    pdf.multi_cell(width, 8, _latin1(title), new_x="LMARGIN", new_y="NEXT")
    if head.get("regulator_title"):
        pdf.set_font("Helvetica", "B", 11)
        pdf.multi_cell(width, 6, _latin1(head["regulator_title"]), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    lines = [
        (label("report_id", reg) if german else "Report", str(head["report_id"])),
        (label("period", reg) if german else "Period (UTC)",
         f"{head['period']['label']}: {head['period']['start']} - {head['period']['end']}"),
        (label("generated_at", reg) if german else "Generated at (UTC)", head["generated_at"]),
    ]  # fmt: skip
    if head.get("authority"):
        lines.append((label("authority", reg) if german else "Authority", head["authority"]))
    for key, value in head["firm"].items():
        lines.append((label(key, reg), value))
    coverage = head["coverage"]
    lines.append(
        ("Seq", f"{coverage['from_seq']} - {coverage['to_seq']} ({coverage['records']} records; "
                f"log size {coverage['log_size_at_generation']})")
    )  # fmt: skip
    if coverage.get("checkpoint"):
        cp = coverage["checkpoint"]
        lines.append((label("checkpoint", reg) if german else "Latest checkpoint",
                      f"tree size {cp['tree_size']}, root {cp['root_hash']}"))  # fmt: skip
    for basis in head.get("legal_basis") or []:
        lines.append((label("legal_basis", reg) if german else "Legal basis", basis))
    for note in head.get("notes") or []:
        lines.append((label("note", reg) if german else "Note", note))
    for key, value in lines:
        pdf.set_font("Helvetica", "B", 8)
        pdf.cell(45, 4.5, _latin1(key))
        pdf.set_font("Helvetica", "", 8)
        pdf.multi_cell(width - 45, 4.5, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    header_style = FontFace(emphasis="BOLD", fill_color=(225, 225, 225))

    def heading(text: str) -> None:
        pdf.set_font("Helvetica", "B", 11)
        pdf.multi_cell(width, 7, _latin1(text), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 6.5)

    heading(label("summary", reg))
    with pdf.table(col_widths=(3, 1), width=width * 0.5, align="LEFT", headings_style=header_style,
                   line_height=3.6, text_align=("LEFT", "RIGHT")) as table:  # fmt: skip
        row = table.row()
        row.cell("Kennzahl" if german else "Metric")
        row.cell("Wert" if german else "Value")
        for key, value in content.summary.items():
            row = table.row()
            row.cell(_latin1(label(key, reg)))
            row.cell(_pdf_value(value))
    for spool in content.sections:
        pdf.ln(3)
        heading(f"{label(spool.name, reg)} ({spool.count})")
        if spool.count == 0:
            pdf.multi_cell(
                width, 4, "keine Einträge" if german else "none", new_x="LMARGIN", new_y="NEXT"
            )
            continue
        with pdf.table(headings_style=header_style, line_height=3.2, text_align="LEFT") as table:
            row = table.row()
            for column in spool.columns:
                row.cell(_latin1(label(column, reg)))
            for values in spool.rows(limit=max_rows):
                row = table.row()
                for value in values:
                    row.cell(_pdf_value(value))
        if spool.count > max_rows:
            more = spool.count - max_rows
            text = (
                f"... {more} weitere Zeilen: vollständig in der JSON- und CSV-Fassung "
                "dieses Berichts."
                if german
                else f"... {more} more rows: complete in the JSON and CSV forms of this report."
            )
            pdf.multi_cell(width, 4, _latin1(text), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


__all__ = ["CONTENT_TYPES", "SECTION_TITLES", "HashingWriter", "render"]
