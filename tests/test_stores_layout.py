"""Where SQL lives (HOUSE_STYLE "Stores"): hand-written statements and
database-vendor branches only in an app's store.py and the transport
(compliance_site/db.py); services reach the transport only through their
app's store. Migrations are exempt (their DDL is theirs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("accounts", "approvals", "audit", "surveillance", "reporting", "compliance_site")
ALLOWED = {"compliance_site/db.py"}

# Upper-case SQL keywords in statement shapes (prose says "select" or
# "updates"), a vendor test, a raw cursor, and the transport imported.
_NAME = r"[\w{}.\"]+"  # a table: a name, an f-string field, or quoted
RULES = {
    "SQL text": re.compile(
        r"\bSELECT\b.*\bFROM\b|\bSELECT 1\b|\bINSERT INTO\b|\bDELETE FROM\b|\bFOR UPDATE\b"
        rf"|\bUPDATE {_NAME} SET\b|\bCOPY {_NAME} \(|\bEXPLAIN \(|\bON CONFLICT\b"
    ),
    "vendor branch": re.compile(r"\.vendor\b|\bhas_select_for_update\b"),
    "raw cursor": re.compile(r"\.cursor\(\)|\.execute\(\s*[\"f]"),
    "transport outside a store": re.compile(
        r"^\s*(from compliance_site\.db import|from compliance_site import db\b"
        r"|import compliance_site\.db)"
    ),
}


def _modules() -> list[Path]:
    found = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if "/migrations/" in rel or path.name == "store.py" or rel in ALLOWED:
                continue
            found.append(path)
    return found


def offences(paths: list[Path]) -> list[str]:
    out = []
    for path in paths:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for rule, pattern in RULES.items():
                if pattern.search(line):
                    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                    out.append(f"{where}:{number}: {rule}: {line.strip()}")
    return out


def test_no_module_outside_the_stores_holds_sql_or_a_vendor_branch():
    found = offences(_modules())
    assert not found, "move these into the app's store.py:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "line",
    [
        'cursor.execute("SELECT id FROM audit_log WHERE name = %s", [name])',
        'sql = f"UPDATE {table} SET x = %s"',
        "if connection.vendor == 'postgresql':",
        "from compliance_site.db import fetch_prepared",
    ],
)
def test_the_check_names_the_file_and_line_of_an_offence(tmp_path, line):
    module = tmp_path / "services.py"
    module.write_text(f'"""Prose may say select, update and insert."""\n\n{line}\n')
    found = offences([module])
    assert found
    assert all(f.startswith(f"{module}:3: ") for f in found)
