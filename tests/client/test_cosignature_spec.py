"""Cosignatures checked by an implementation written from the C2SP
tlog-cosignature text alone (https://c2sp.org/tlog-cosignature, the Ed25519
"cosignature/v1" type), not from compliance_client's code. The spec says:

* a cosignature is a signed-note signature line ``— <key name> base64(key ID || signature)``;
* key ID = SHA-256(<name> || "\\n" || 0x04 || 32-byte Ed25519 public key)[:4];
* the signature is a ``timestamped_signature``: u64 timestamp (POSIX seconds,
  big-endian, at most 2^63 - 1) followed by the 64-byte Ed25519 signature;
* the signed message is ``cosignature/v1\\n``, ``time <timestamp>\\n`` (ASCII
  decimal, no leading zeroes), then the whole checkpoint body including its
  final newline and any extension lines, but no signature lines.

Only ``hashlib``, ``base64``, ``struct`` and the Ed25519 primitive are used
here; our code is exercised only to produce or consume cosignatures.
"""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from compliance_client.note import (
    NoteError,
    cosign_checkpoint,
    cosigned_message,
    verify_cosignature_line,
    witness_cosignatures,
    witness_vkey,
)

EM_DASH = "\u2014"
BODY = (
    "compliance.example/log\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "timestamp 1763700000123456\n"
)


def spec_key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + b"\x04" + public_key).digest()[:4]


def spec_message(body: str, timestamp: int) -> bytes:
    return b"cosignature/v1\n" + b"time " + str(timestamp).encode() + b"\n" + body.encode()


def spec_verify(line: str, body: str, name: str, public_key: bytes) -> int:
    """Return the cosignature's timestamp, or raise ValueError."""
    prefix = EM_DASH + " "
    if not line.startswith(prefix) or not line.endswith("\n"):
        raise ValueError("not a signature line")
    line_name, blob_b64 = line[len(prefix) : -1].split(" ")
    if line_name != name:
        raise ValueError("other name")
    blob = base64.b64decode(blob_b64, validate=True)
    if len(blob) != 4 + 8 + 64 or blob[:4] != spec_key_id(name, public_key):
        raise ValueError("key ID or size")
    (timestamp,) = struct.unpack(">Q", blob[4:12])
    if timestamp > 2**63 - 1:
        raise ValueError("timestamp")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            blob[12:], spec_message(body, timestamp)
        )
    except InvalidSignature as exc:
        raise ValueError("bad signature") from exc
    return int(timestamp)


def spec_sign(body: str, name: str, key: Ed25519PrivateKey, timestamp: int) -> str:
    public = key.public_key().public_bytes_raw()
    sig = key.sign(spec_message(body, timestamp))
    blob = spec_key_id(name, public) + struct.pack(">Q", timestamp) + sig
    return f"{EM_DASH} {name} {base64.b64encode(blob).decode()}\n"


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"witness").digest())


def test_our_cosignature_verifies_with_the_spec_implementation(key):
    public = key.public_key().public_bytes_raw()
    _, line = cosign_checkpoint(BODY, "witness.example/w1", key, 1679315147)
    assert spec_verify(line, BODY, "witness.example/w1", public) == 1679315147


def test_signed_message_is_byte_for_byte_the_spec_layout():
    assert cosigned_message(BODY, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n"
        b"compliance.example/log\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        b"timestamp 1763700000123456\n"
    )


def test_spec_made_cosignature_verifies_with_ours(key):
    public = key.public_key().public_bytes_raw()
    line = spec_sign(BODY, "witness.example/w1", key, 1_700_000_000)
    cosig = verify_cosignature_line(BODY, line, "witness.example/w1", public)
    assert cosig.timestamp == 1_700_000_000
    note = BODY + "\n" + f"{EM_DASH} compliance.example/log AAAAAA==\n" + line
    assert set(witness_cosignatures(note, {"witness.example/w1": public})) == {"witness.example/w1"}


def test_key_id_uses_the_cosignature_type_byte_not_the_note_one(key):
    public = key.public_key().public_bytes_raw()
    vkey = witness_vkey("witness.example/w1", public)
    name, key_id, material = vkey.split("+", 2)
    assert bytes.fromhex(key_id) == spec_key_id(name, public)
    assert base64.b64decode(material) == b"\x04" + public
    assert (
        spec_key_id(name, public)
        != (hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4])
    )


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, line: (body.replace("20852163", "20852164"), line),  # another tree
        lambda body, line: (body.replace("timestamp 1", "timestamp 2"), line),  # extension line
        lambda body, line: (body, line.replace("w1 ", "w2 ")),  # another cosigner name
    ],
)
def test_both_implementations_refuse_the_same_tampering(key, tamper):
    public = key.public_key().public_bytes_raw()
    _, line = cosign_checkpoint(BODY, "witness.example/w1", key, 1679315147)
    body, bad = tamper(BODY, line)
    # the spec's reference code refuses with a bare ValueError whose text varies
    with pytest.raises(ValueError):  # noqa: PT011
        spec_verify(bad, body, "witness.example/w1", public)
    with pytest.raises(NoteError):
        verify_cosignature_line(body, bad, "witness.example/w1", public)


def test_a_claimed_cosignature_that_does_not_verify_makes_the_note_malformed(key):
    public = key.public_key().public_bytes_raw()
    line = spec_sign(BODY, "witness.example/w1", key, 1679315147)
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[-1] ^= 1
    forged = f"{EM_DASH} witness.example/w1 {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(NoteError):
        witness_cosignatures(BODY + "\n" + forged, {"witness.example/w1": public})
    # a line by a key we were not given is ignored, as the spec requires
    other = Ed25519PrivateKey.generate()
    stranger = spec_sign(BODY, "witness.example/w1", other, 1679315147)
    assert witness_cosignatures(BODY + "\n" + stranger, {"witness.example/w1": public}) == {}
