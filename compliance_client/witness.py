"""A transparency-log witness for the compliance log (C2SP tlog-witness rules,
C2SP tlog-cosignature/v1 signatures), run by an auditor or a regulator.

    python -m compliance_client.witness keygen --name NAME --out KEYFILE
    python -m compliance_client.witness run --url URL --state STATE --name NAME \\
        --key KEYFILE --log-public-key BASE64 [--token TOKEN] [--every SECONDS]
    python -m compliance_client.witness status --state STATE

Why it exists: a checkpoint proves nothing if only the operator keeps it. A
witness keeps the last checkpoint it cosigned in its own state file, outside
the operator's reach, and cosigns a new one only after checking that it
extends the last: the log signature verifies with the pinned log key, the
origin is the same, and an RFC 9162 consistency proof links the old tree to
the new. A checkpoint that fails (a rollback, a fork, a rewritten history) is
refused with the reason, never cosigned, and kept in the state file as
evidence. Like a C2SP witness, the state is persisted before the cosignature
leaves, and the check-and-update runs under a file lock, so two runs cannot
roll each other back.

Standard library, ``cryptography`` and ``rfc8785`` only; no Django.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from compliance_client import merkle
from compliance_client.note import (
    Checkpoint,
    NoteError,
    checkpoint_body,
    cosign_checkpoint,
    key_hash,
    parse_cosignature_line,
    signature_lines,
    verify_checkpoint,
    witness_vkey,
)
from compliance_client.verify import parse_key_arg

__all__ = [
    "Refused",
    "Transport",
    "WitnessError",
    "WitnessResult",
    "load_witness_key",
    "main",
    "run_once",
]

STATE_VERSION = 1
MAX_PROOF_HASHES = 63  # C2SP tlog-witness bound
LATEST_PATH = "/api/v1/log/checkpoints/latest/?include_unpublished=1"
CONSISTENCY_PATH = "/api/v1/log/proofs/consistency/?first={first}&second={second}"
COSIGN_PATH = "/api/v1/log/checkpoints/{size}/cosignatures/"

#: (method, path, JSON body or None) -> (HTTP status, parsed JSON or None)
Transport = Callable[[str, str, Any], tuple[int, Any]]


class WitnessError(RuntimeError):
    """The round could not run (network, server answer, state file); nothing cosigned."""


class Refused(WitnessError):
    """The log's checkpoint does not extend the one this witness cosigned last."""


@dataclass(frozen=True)
class WitnessResult:
    action: str  # "cosigned" | "unchanged"
    tree_size: int
    line: str | None = None
    posted: bool = False


def http_transport(base_url: str, token: str | None = None, timeout: float = 30.0) -> Transport:
    """Plain urllib JSON transport against the compliance server."""
    base = base_url.rstrip("/")

    def call(method: str, path: str, body: Any) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(base + path, data=data, method=method)  # noqa: S310
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        except (urllib.error.URLError, OSError) as exc:
            raise WitnessError(f"cannot reach {base}: {exc}") from exc
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None

    return call


# --------------------------------------------------------------------------
# keys and state


def generate_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key


def load_witness_key(path: Path) -> Ed25519PrivateKey:
    loaded = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise WitnessError(f"{path} is not an Ed25519 private key")
    return loaded


@contextlib.contextmanager
def _locked(state_path: Path) -> Iterator[None]:
    """Exclusive lock beside the state file: check-then-update is atomic."""
    lock_path = state_path.with_name(state_path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read_state(path: Path) -> dict[str, Any] | None:
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WitnessError(f"state file {path} is unreadable: {exc}") from exc
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise WitnessError(f"state file {path} is not a version {STATE_VERSION} witness state")
    return state


def _write_state(path: Path, state: dict[str, Any]) -> None:
    """Write-to-temp, fsync, rename: the state is never half written."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=1, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _log_key_name(note: str, public_key: bytes) -> str:
    """The key name of the signature line made by ``public_key``: the signed-note
    key hash binds the name to the key, so the name cannot be substituted."""
    for line in signature_lines(note):
        name, blob = parse_cosignature_line(line)
        if blob[:4] == key_hash(name, public_key)[:4]:
            return name
    raise NoteError("the checkpoint carries no signature by the pinned log key")


# --------------------------------------------------------------------------
# one witnessing round


def _get(transport: Transport, path: str, what: str) -> Any:
    status, body = transport("GET", path, None)
    if status != 200 or not isinstance(body, dict):
        detail = body.get("detail") if isinstance(body, dict) else body
        raise WitnessError(f"fetching {what} failed: HTTP {status} {detail or ''}".rstrip())
    return body


def _refuse(
    state_path: Path, state: dict[str, Any], reason: str, note: str, proof: list[str] | None
) -> Refused:
    """Keep the evidence (the refused note, the proof offered, what we held) and say why."""
    state.setdefault("refusals", []).append(
        {
            "at": int(time.time()),
            "reason": reason,
            "held": {
                "tree_size": state["tree_size"],
                "root_hash": state["root_hash"],
                "note": state["note"],
            },
            "offered_note": note,
            "offered_proof": proof,
        }
    )
    _write_state(state_path, state)
    return Refused(
        f"REFUSED checkpoint of tree_size {_size_of(note)}: {reason}. "
        f"This witness last cosigned tree_size {state['tree_size']}; "
        f"the evidence is kept in {state_path}."
    )


def _size_of(note: str) -> str:
    try:
        return checkpoint_body(note).split("\n")[1]
    except (NoteError, IndexError):
        return "?"


def run_once(
    *,
    transport: Transport,
    state_path: Path,
    name: str,
    private_key: Ed25519PrivateKey,
    log_public_key: bytes | None = None,
    now: Callable[[], float] = time.time,
) -> WitnessResult:
    """Fetch the latest checkpoint, check it extends the last one cosigned,
    cosign it, persist, then hand the cosignature to the server.

    ``log_public_key`` is needed on the first run (it is then pinned in the
    state); later runs may omit it and must not contradict it.
    """
    witness_vkey(name, private_key.public_key().public_bytes_raw())  # validates the name
    with _locked(state_path):
        state = _read_state(state_path)
        if state is None:
            if log_public_key is None:
                raise WitnessError("a new witness needs --log-public-key to pin the log's key")
            state = {
                "version": STATE_VERSION,
                "witness": name,
                "log_public_key": _b64(log_public_key),
                "origin": None,
                "tree_size": 0,
                "root_hash": _b64(merkle.EMPTY_ROOT),
                "note": None,
                "line": None,
                "posted": True,
                "refusals": [],
            }
        if state["witness"] != name:
            raise WitnessError(f"state file belongs to witness {state['witness']!r}, not {name!r}")
        pinned = base64.b64decode(state["log_public_key"])
        if log_public_key is not None and log_public_key != pinned:
            raise WitnessError("--log-public-key differs from the log key pinned in the state file")

        latest = _get(transport, LATEST_PATH, "the latest checkpoint")
        note = latest.get("note")
        if not isinstance(note, str):
            raise WitnessError("the server's latest checkpoint has no note")
        try:
            key_name = _log_key_name(note, pinned)
            new = verify_checkpoint(note, key_name, pinned)
        except NoteError as exc:
            raise WitnessError(f"the latest checkpoint does not verify: {exc}") from exc
        body = checkpoint_body(note)
        if state["origin"] is not None and new.origin != state["origin"]:
            raise _refuse(
                state_path, state, f"origin {new.origin!r} is not {state['origin']!r}", note, None
            )
        old_size = int(state["tree_size"])
        old_root = base64.b64decode(state["root_hash"])

        if state["note"] is not None and checkpoint_body(state["note"]) == body:
            return _post(transport, state_path, state, new)  # already cosigned; resend if needed

        proof_hex: list[str] | None = None
        if new.tree_size < old_size:
            raise _refuse(
                state_path,
                state,
                f"the log rolled back from {old_size} to {new.tree_size} records",
                note,
                None,
            )
        if new.tree_size == old_size:
            if new.root_hash != old_root:
                raise _refuse(
                    state_path,
                    state,
                    "same tree_size with a different root hash: the history was rewritten",
                    note,
                    None,
                )
        elif old_size > 0:
            doc = _get(
                transport,
                CONSISTENCY_PATH.format(first=old_size, second=new.tree_size),
                "the consistency proof",
            )
            proof_hex = doc.get("hashes")
            try:
                if not isinstance(proof_hex, list) or len(proof_hex) > MAX_PROOF_HASHES:
                    raise ValueError("not a list of at most 63 hashes")
                proof = [bytes.fromhex(h) for h in proof_hex]
                consistent = merkle.verify_consistency(
                    old_size, new.tree_size, old_root, new.root_hash, proof
                )
            except (TypeError, ValueError) as exc:
                raise WitnessError(f"malformed consistency proof: {exc}") from exc
            if not consistent:
                raise _refuse(
                    state_path,
                    state,
                    f"no valid consistency proof from tree_size {old_size} to {new.tree_size}: "
                    "the log forked or its history was rewritten",
                    note,
                    proof_hex,
                )

        timestamp = max(int(now()), int(state.get("cosigned_at") or 0))
        _, line = cosign_checkpoint(body, name, private_key, timestamp)
        state.update(
            origin=new.origin,
            tree_size=new.tree_size,
            root_hash=_b64(new.root_hash),
            note=note,
            line=line,
            posted=False,
            cosigned_at=timestamp,
        )
        _write_state(state_path, state)  # persisted before the cosignature leaves
        result = _post(transport, state_path, state, new)
        return WitnessResult("cosigned", result.tree_size, result.line, result.posted)


def _post(
    transport: Transport, state_path: Path, state: dict[str, Any], cp: Checkpoint
) -> WitnessResult:
    if state.get("posted"):
        return WitnessResult("unchanged", cp.tree_size, state.get("line"), True)
    status, body = transport(
        "POST",
        COSIGN_PATH.format(size=cp.tree_size),
        {"witness": state["witness"], "cosignature": state["line"]},
    )
    if status not in (200, 201):
        detail = body.get("detail") if isinstance(body, dict) else body
        raise WitnessError(
            f"the server did not accept the cosignature (HTTP {status}: {detail}); "
            "it is kept in the state file and sent again on the next run"
        )
    state["posted"] = True
    _write_state(state_path, state)
    return WitnessResult("unchanged", cp.tree_size, state["line"], True)


# --------------------------------------------------------------------------
# command line


def _status(state_path: Path) -> int:
    state = _read_state(state_path)
    if state is None:
        print(f"{state_path}: no checkpoint cosigned yet")
        return 0
    print(f"witness:     {state['witness']}")
    print(f"log origin:  {state['origin']}")
    print(f"cosigned:    tree_size {state['tree_size']} at {state.get('cosigned_at')}")
    print(f"sent:        {'yes' if state.get('posted') else 'not yet'}")
    for refusal in state.get("refusals", []):
        print(f"REFUSED at {refusal['at']}: {refusal['reason']}")
    return 2 if state.get("refusals") else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m compliance_client.witness",
        description="Witness the compliance log: cosign checkpoints that extend the last one.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="create a witness key")
    keygen.add_argument("--name", required=True, help="witness name, e.g. auditor.example/w1")
    keygen.add_argument("--out", required=True, type=Path)
    run = sub.add_parser("run", help="cosign the latest checkpoint if it extends the last")
    run.add_argument("--url", required=True, help="the compliance server, e.g. https://host")
    run.add_argument("--state", required=True, type=Path)
    run.add_argument("--name", required=True)
    run.add_argument("--key", required=True, type=Path, help="the witness private key (PEM)")
    run.add_argument("--log-public-key", type=parse_key_arg, help="base64; pinned on first run")
    run.add_argument("--token", default=os.environ.get("COMPLIANCE_WITNESS_TOKEN"))
    run.add_argument("--every", type=float, default=0, help="repeat every N seconds")
    status = sub.add_parser("status", help="show the state and any refusals")
    status.add_argument("--state", required=True, type=Path)
    args = parser.parse_args(argv)

    if args.command == "keygen":
        try:
            key = generate_key(args.out)
        except FileExistsError:
            print(f"{args.out} exists; not overwritten", file=sys.stderr)
            return 1
        public = key.public_key().public_bytes_raw()
        print(f"public key (register it): {_b64(public)}")
        print(f"verifier key (give it to auditors): {witness_vkey(args.name, public)}")
        return 0
    if args.command == "status":
        return _status(args.state)

    private_key = load_witness_key(args.key)
    transport = http_transport(args.url, args.token)
    while True:
        try:
            result = run_once(
                transport=transport,
                state_path=args.state,
                name=args.name,
                private_key=private_key,
                log_public_key=args.log_public_key,
            )
        except Refused as exc:
            print(str(exc), file=sys.stderr)
            return 2
        except (WitnessError, NoteError) as exc:
            print(f"ERROR {exc}", file=sys.stderr)
            if not args.every:
                return 1
        else:
            print(f"{result.action}: tree_size {result.tree_size}")
        if not args.every:
            return 0
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
