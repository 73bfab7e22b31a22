"""The witness's own rules, against a scripted log (no server, no Django)."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compliance_client import merkle
from compliance_client.note import Checkpoint, sign_checkpoint, witness_cosignatures
from compliance_client.witness import Refused, WitnessError, run_once

ORIGIN = "compliance.example/log"
LOG_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"log").digest())
LOG_PUB = LOG_KEY.public_key().public_bytes_raw()
WITNESS = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"w").digest())
WITNESS_PUB = WITNESS.public_key().public_bytes_raw()


def leaves(n: int, salt: str = "") -> list[bytes]:
    return [hashlib.sha256(f"{salt}{i}".encode()).digest() for i in range(n)]


class ScriptedLog:
    def __init__(self) -> None:
        self.leaves: list[bytes] = []
        self.note = ""
        self.ts = 1_763_700_000_000_000
        self.posted: list[dict] = []
        self.accept = True

    def publish(self, hashes: list[bytes]) -> str:
        self.leaves = hashes
        self.ts += 1
        cp = Checkpoint(ORIGIN, len(hashes), merkle.root_from_leaf_hashes(hashes), self.ts)
        self.note = sign_checkpoint(cp, ORIGIN, LOG_KEY)
        return self.note

    def __call__(self, method: str, path: str, body):  # type: ignore[no-untyped-def]
        if method == "POST":
            if not self.accept:
                return 503, {"detail": "down"}
            self.posted.append(body)
            return 201, {}
        if path.startswith("/api/v1/log/checkpoints/latest/"):
            return 200, {"note": self.note}
        query = dict(p.split("=") for p in path.split("?")[1].split("&"))
        first, second = int(query["first"]), int(query["second"])

        def fetch(nodes):  # type: ignore[no-untyped-def]
            return {  # (level, index): the perfect subtree's root
                (level, index): merkle.root_from_leaf_hashes(
                    self.leaves[index << level : (index + 1) << level]
                )
                for level, index in nodes
            }

        proof = merkle.consistency_proof(first, second, fetch)
        return 200, {"hashes": [h.hex() for h in proof]}


@pytest.fixture
def log() -> ScriptedLog:
    return ScriptedLog()


def witness_round(log: ScriptedLog, tmp_path, **kw):  # type: ignore[no-untyped-def]
    return run_once(
        transport=log,
        state_path=tmp_path / "state.json",
        name="auditor.example/w1",
        private_key=WITNESS,
        log_public_key=LOG_PUB,
        **kw,
    )


def test_cosigns_an_extension_and_hands_the_cosignature_to_the_log(log, tmp_path):
    log.publish(leaves(5))
    assert witness_round(log, tmp_path).action == "cosigned"
    log.publish(leaves(9))
    result = witness_round(log, tmp_path)
    assert result.action == "cosigned"
    assert result.tree_size == 9
    found = witness_cosignatures(log.note + result.line, {"auditor.example/w1": WITNESS_PUB})
    assert set(found) == {"auditor.example/w1"}
    assert [p["witness"] for p in log.posted] == ["auditor.example/w1"] * 2
    assert witness_round(log, tmp_path).action == "unchanged"


@pytest.mark.parametrize(
    ("history", "why"),
    [
        (lambda: leaves(3), "rolled back"),
        (lambda: leaves(5, salt="x"), "same tree_size with a different root"),
        (lambda: leaves(5, salt="x") + leaves(2), "no valid consistency proof"),
    ],
)
def test_refuses_what_does_not_extend_and_keeps_the_evidence(log, tmp_path, history, why):
    log.publish(leaves(5))
    witness_round(log, tmp_path)
    held = json.loads((tmp_path / "state.json").read_text())
    offered = log.publish(history())
    with pytest.raises(Refused, match=why):
        witness_round(log, tmp_path)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["tree_size"] == held["tree_size"]
    assert state["note"] == held["note"]
    assert state["refusals"][0]["offered_note"] == offered
    assert len(log.posted) == 1


def test_a_checkpoint_signed_by_another_key_is_not_cosigned(log, tmp_path):
    log.publish(leaves(2))
    impostor = Ed25519PrivateKey.generate()
    log.note = sign_checkpoint(
        Checkpoint(ORIGIN, 2, merkle.root_from_leaf_hashes(leaves(2)), log.ts + 1), ORIGIN, impostor
    )
    with pytest.raises(WitnessError, match="does not verify"):
        witness_round(log, tmp_path)
    assert log.posted == []


def test_state_is_kept_before_sending_and_a_failed_send_is_retried(log, tmp_path):
    log.publish(leaves(4))
    log.accept = False
    with pytest.raises(WitnessError, match="sent again on the next run"):
        witness_round(log, tmp_path)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["tree_size"] == 4
    assert state["posted"] is False
    log.accept = True
    result = witness_round(log, tmp_path)
    assert result.action == "unchanged"
    assert [p["cosignature"] for p in log.posted] == [state["line"]]


def test_the_pinned_log_key_cannot_be_swapped(log, tmp_path):
    log.publish(leaves(1))
    witness_round(log, tmp_path)
    with pytest.raises(WitnessError, match="pinned"):
        run_once(
            transport=log,
            state_path=tmp_path / "state.json",
            name="auditor.example/w1",
            private_key=WITNESS,
            log_public_key=bytes(32),
        )
