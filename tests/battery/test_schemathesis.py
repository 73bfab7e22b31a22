"""Schemathesis against /api/schema/ on the production-like stack, as two roles
(a viewer and a compliance officer), bounded in time: 0 server errors and 0
responses that contradict the schema (slow; CI runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .conftest import report
from .stack import battery_server, shared_pg

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROLES = {"carol": "viewer", "alice": "compliance_officer"}
SECONDS_PER_ROLE = int(os.environ.get("BATTERY_SCHEMATHESIS_SECONDS", "60"))
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"


def st_binary() -> str:
    return str(Path(sys.executable).parent / "st")


def test_schemathesis_finds_no_server_error_and_no_schema_mismatch():
    pg_url, db_name = shared_pg()
    with battery_server(pg_url, db_name) as server:
        server.manage("ensure_log_key")
        outcomes = {}
        tokens = {}
        # Both tokens first: the fuzzing guesses passwords at the token endpoint,
        # and the login lockout (per address) would refuse the second login.
        for name, role in ROLES.items():
            server.manage(
                "create_user", name, "--role", role, "--noinput",
                env={"DJANGO_USER_PASSWORD": server.password},
            )  # fmt: skip
            status, body = server.request_json(
                "POST", "/api/v1/auth/token/", {"username": name, "password": server.password}
            )
            assert status == 201, body
            tokens[name] = body["token"]
        for name, role in ROLES.items():
            with tempfile.TemporaryDirectory() as tmp:
                report_path = Path(tmp) / "run.json"
                run = subprocess.run(
                    [
                        st_binary(), "run", f"{server.base_url}/api/schema/?format=json",
                        "--header", f"Authorization: Bearer {tokens[name]}",
                        "--checks", CHECKS,
                        "--max-examples", "10",
                        "--max-time", str(SECONDS_PER_ROLE),
                        "--seed", "18",
                        "--no-shrink",
                        "--workers", "1",
                        "--request-timeout", "30",
                        "--warnings", "off",
                        "--report", "json", "--report-json-path", str(report_path),
                    ],
                    capture_output=True, text=True, timeout=SECONDS_PER_ROLE + 240,
                    cwd=tmp,  # its cache of findings stays out of the repository
                )  # fmt: skip
                summary = run.stdout[-4000:]
                outcomes[name] = (run.returncode, _cases(report_path, summary))
            assert run.returncode == 0, f"schemathesis as {name} ({role}):\n{summary}"
        cases = ", ".join(f"{name} {n} cases" for name, (_, n) in outcomes.items())
        report(
            f"battery schemathesis: {cases} ({SECONDS_PER_ROLE}s each), "
            "0 server errors, 0 schema mismatches"
        )


def _cases(report_path: Path, summary: str) -> int:
    """How many test cases schemathesis generated (its JSON report, else its summary)."""
    try:
        data = json.loads(report_path.read_text())
        for key in ("total_cases", "cases", "generated"):
            if isinstance(data.get(key), int):
                return int(data[key])
    except (OSError, ValueError, AttributeError):
        pass
    for line in summary.splitlines():
        words = line.split()
        if "generated," in words:
            return int(words[0])
    return 0
