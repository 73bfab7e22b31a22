"""Regression: with spawned (not forked) worker processes, the chunk size is
the parent's. A spawned worker re-imports the module; before the fix it judged
chunks against the module default and misplaced checkpoint roots, so a good
bundle failed whenever the caller had a thread running (CI did)."""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance_client import verify as verify_module
from compliance_client.verify import verify_bundle

from .conftest import standard_log


def test_spawned_workers_use_the_parents_chunk_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_module, "CHUNK", 8)
    monkeypatch.setattr(verify_module, "_start_method", lambda: "spawn")
    log = standard_log(100, checkpoints=(1, 7, 8, 9, 16, 21, 64, 65, 100))
    result = verify_bundle(
        log.write(tmp_path / "b.zip"), workers=2, trusted_checkpoint=log.notes[3]
    )
    assert result.ok, result.failure
    assert result.records == 100
