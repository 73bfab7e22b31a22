"""`python -m compliance_client.verify` as an auditor runs it: exit codes and output."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

from compliance_client.bundle import RECORDS

from .conftest import FakeLog, map_records, rewrite_members

REPO = Path(__file__).resolve().parents[2]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the verifier must not need it
    return subprocess.run(
        [sys.executable, "-m", "compliance_client.verify", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_exits_0_and_prints_a_summary_for_a_good_bundle(
    fake_log: FakeLog, tmp_path: Path
) -> None:
    path = fake_log.write(tmp_path / "good.zip")
    trusted = tmp_path / "cp.txt"
    trusted.write_text(fake_log.notes[0], encoding="utf-8")
    key = base64.b64encode(fake_log.log_key.public_key().public_bytes_raw()).decode()
    proc = run(path, "--trusted-checkpoint", trusted, "--log-public-key", key, "--workers", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("OK")
    for fragment in ["records:      60", "checkpoints:  3", "signatures:   48", "records/s"]:
        assert fragment in proc.stdout
    assert "extends the trusted checkpoint (tree_size 10)" in proc.stdout


def test_cli_exits_1_and_names_the_failure_for_a_bad_bundle(
    fake_log: FakeLog, tmp_path: Path
) -> None:
    path = fake_log.write(tmp_path / "good.zip")

    def edit(records: list[dict]) -> list[dict]:
        records[7]["data"] = {"edited": True}
        return records

    bad = rewrite_members(path, tmp_path / "bad.zip", {RECORDS: map_records(edit)})
    proc = run(bad, "--no-signatures")
    assert proc.returncode == 1
    assert proc.stdout.startswith("FAILED")
    assert "seq 7: leaf_hash does not match" in proc.stdout
    assert "first bad seq: 7" in proc.stdout
    assert "file:          records.jsonl" in proc.stdout


def test_cli_exits_1_for_a_rolled_back_bundle(fake_log: FakeLog, tmp_path: Path) -> None:
    trusted = tmp_path / "cp.txt"
    trusted.write_text(fake_log.notes[-1], encoding="utf-8")
    path = fake_log.write(
        tmp_path / "old.zip", records=fake_log.records[:40], notes=fake_log.notes[:2]
    )
    proc = run(path, "--trusted-checkpoint", trusted)
    assert proc.returncode == 1
    assert "bundle has only 40 records: log truncated/rolled back" in proc.stdout


def test_cli_rejects_a_malformed_pinned_key_as_a_usage_error(
    fake_log: FakeLog, tmp_path: Path
) -> None:
    proc = run(fake_log.write(tmp_path / "b.zip"), "--log-public-key", "not-a-key")
    assert proc.returncode == 2
    assert "log-public-key" in proc.stderr
