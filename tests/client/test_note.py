"""Signed checkpoints: the exact C2SP format, interop with the Go reference
vectors, and strict refusal of every malformed, forged or tampered note."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compliance_client.note import (
    Checkpoint,
    NoteError,
    format_checkpoint_body,
    key_hash,
    parse_checkpoint_body,
    sign_checkpoint,
    verifier_key,
    verify_checkpoint,
)

# golang.org/x/mod/sumdb/note's documented example key and note.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)

NAME = "compliance.example/log"
ROOT = hashlib.sha256(b"root").digest()
CP = Checkpoint("compliance.example/log/default", 1234, ROOT, 1763700000123456)


def go_key() -> Ed25519PrivateKey:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert seed[0] == 1
    return Ed25519PrivateKey.from_private_bytes(seed[1:])


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"log key").digest())


def pub(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def sign_text(body: str, name: str, key: Ed25519PrivateKey) -> str:
    """A signed note over arbitrary text: lets tests feed the parser bodies the
    signer would refuse to produce, with a valid signature."""
    blob = key_hash(name, pub(key))[:4] + key.sign(body.encode())
    return f"{body}\n\u2014 {name} {base64.b64encode(blob).decode()}\n"


def test_key_hash_and_signature_match_the_go_reference_vectors() -> None:
    k = go_key()
    assert verifier_key("PeterNeumann", pub(k)) == GO_VKEY
    assert key_hash("PeterNeumann", pub(k))[:4].hex() == "c74f20a3"
    assert sign_text(GO_TEXT, "PeterNeumann", k) == f"{GO_TEXT}\n\u2014 PeterNeumann {GO_SIG}\n"


def test_checkpoint_note_has_exactly_the_contract_layout() -> None:
    k = go_key()
    note = sign_checkpoint(CP, "PeterNeumann", k)
    body = (
        "compliance.example/log/default\n1234\n"
        f"{base64.b64encode(ROOT).decode()}\ntimestamp 1763700000123456\n"
    )
    assert format_checkpoint_body(CP) == body
    assert note == sign_text(body, "PeterNeumann", k)
    assert note.count("\n") == 6
    assert note.endswith("\n")
    assert "\n\n\u2014 PeterNeumann " in note


def test_signed_checkpoint_round_trips(key: Ed25519PrivateKey) -> None:
    note = sign_checkpoint(CP, NAME, key)
    assert verify_checkpoint(note, NAME, pub(key)) == CP
    assert verify_checkpoint(note, NAME, pub(key), origin=CP.origin) == CP
    empty = Checkpoint("o", 0, hashlib.sha256(b"").digest(), 0)
    assert verify_checkpoint(sign_checkpoint(empty, NAME, key), NAME, pub(key)) == empty


def test_cosignatures_from_other_keys_are_tolerated(key: Ed25519PrivateKey) -> None:
    witness = Ed25519PrivateKey.generate()
    note = sign_checkpoint(CP, NAME, key)
    cosigned = (
        note + sign_text(format_checkpoint_body(CP), "witness.example", witness).split("\n\n", 1)[1]
    )
    assert verify_checkpoint(cosigned, NAME, pub(key)) == CP


def test_wrong_origin_is_refused(key: Ed25519PrivateKey) -> None:
    with pytest.raises(NoteError, match="origin"):
        verify_checkpoint(sign_checkpoint(CP, NAME, key), NAME, pub(key), origin="other")


def test_checkpoint_signed_by_another_key_is_refused(key: Ed25519PrivateKey) -> None:
    attacker = Ed25519PrivateKey.generate()
    forged = sign_checkpoint(CP, NAME, attacker)
    with pytest.raises(NoteError, match="key hash"):
        verify_checkpoint(forged, NAME, pub(key))
    # Attacker copies the log's key hash prefix but can't produce its signature.
    body = format_checkpoint_body(CP)
    blob = key_hash(NAME, pub(key))[:4] + attacker.sign(body.encode())
    spoofed = f"{body}\n\u2014 {NAME} {base64.b64encode(blob).decode()}\n"
    with pytest.raises(NoteError, match="does not verify"):
        verify_checkpoint(spoofed, NAME, pub(key))


def test_wrong_key_name_is_refused(key: Ed25519PrivateKey) -> None:
    note = sign_checkpoint(CP, NAME, key)
    with pytest.raises(NoteError, match="not signed by"):
        verify_checkpoint(note, NAME + "x", pub(key))
    renamed = sign_checkpoint(CP, "other-name", key)
    with pytest.raises(NoteError, match="not signed by"):
        verify_checkpoint(renamed, NAME, pub(key))


def mutations(note: str):
    """Every single-character edit plus whole-line edits of a note."""
    for i, c in enumerate(note):
        for repl in ("A", "0", " ", "\n", "=", "+", "\u2014"):
            if repl != c:
                yield f"replace {i}", note[:i] + repl + note[i + 1 :]
        yield f"delete {i}", note[:i] + note[i + 1 :]
        yield f"insert {i}", note[:i] + "x" + note[i:]
    lines = note.split("\n")
    for i in range(len(lines)):
        yield f"drop line {i}", "\n".join(lines[:i] + lines[i + 1 :])
        yield f"dup line {i}", "\n".join(lines[: i + 1] + lines[i:])
        yield f"pad line {i}", "\n".join([*lines[:i], lines[i] + " ", *lines[i + 1 :]])
        yield f"crlf line {i}", "\n".join([*lines[:i], lines[i] + "\r", *lines[i + 1 :]])
    yield "trailing garbage", note + "x"
    yield "trailing newline", note + "\n"
    yield "trailing line", note + "extra\n"
    yield "no final newline", note[:-1]
    yield "bom", "\ufeff" + note


def test_every_tampered_note_is_refused(key: Ed25519PrivateKey) -> None:
    note = sign_checkpoint(CP, NAME, key)
    count = 0
    for what, bad in mutations(note):
        if bad == note:
            continue
        try:
            verify_checkpoint(bad, NAME, pub(key))
        except NoteError:
            count += 1
        else:
            pytest.fail(f"accepted after {what}")
    assert count >= 1000


def test_duplicate_signature_by_the_log_key_is_refused(key: Ed25519PrivateKey) -> None:
    note = sign_checkpoint(CP, NAME, key)
    sig_line = note.split("\n\n", 1)[1]
    with pytest.raises(NoteError, match="more than one"):
        verify_checkpoint(note + sig_line, NAME, pub(key))


@pytest.mark.parametrize(
    "body",
    [
        "o\n+5\n{root}\ntimestamp 1\n",
        "o\n05\n{root}\ntimestamp 1\n",
        "o\n-1\n{root}\ntimestamp 1\n",
        "o\n 5\n{root}\ntimestamp 1\n",
        "o\n5 \n{root}\ntimestamp 1\n",
        "o\n0x5\n{root}\ntimestamp 1\n",
        "o\n\uff15\n{root}\ntimestamp 1\n",
        "o\n1_000\n{root}\ntimestamp 1\n",
        "o\n99999999999999999999\n{root}\ntimestamp 1\n",
        "o\n5\n{root_nopad}\ntimestamp 1\n",
        "o\n5\n{root_urlsafe}\ntimestamp 1\n",
        "o\n5\n{short_root}\ntimestamp 1\n",
        "o\n5\n{root} \ntimestamp 1\n",
        "o\n5\n{root}\ntimestamp  1\n",
        "o\n5\n{root}\nTimestamp 1\n",
        "o\n5\n{root}\ntimestamp 01\n",
        "o\n5\n{root}\ntimestamp -1\n",
        "o\n5\n{root}\n",
        "o\n5\n{root}\ntimestamp 1\nextension\n",
        "\n5\n{root}\ntimestamp 1\n",
        " o\n5\n{root}\ntimestamp 1\n",
    ],
)
def test_non_canonical_checkpoint_bodies_are_refused_even_when_signed(
    key: Ed25519PrivateKey, body: str
) -> None:
    root = base64.b64encode(ROOT).decode()
    root_nopad = root.rstrip("=")
    # a root whose standard form contains '+' or '/', spelled url-safe
    alt = hashlib.sha256(b"x").digest()
    n = 0
    while "+" not in base64.b64encode(alt).decode() and "/" not in base64.b64encode(alt).decode():
        n += 1
        alt = hashlib.sha256(b"x%d" % n).digest()
    text = body.format(
        root=root,
        root_nopad=root_nopad,
        root_urlsafe=base64.urlsafe_b64encode(alt).decode(),
        short_root=base64.b64encode(ROOT[:31]).decode(),
    )
    with pytest.raises(NoteError):
        verify_checkpoint(sign_text(text, NAME, key), NAME, pub(key))


def test_non_canonical_signature_base64_is_refused(key: Ed25519PrivateKey) -> None:
    note = sign_checkpoint(CP, NAME, key)
    assert note.endswith("=\n")
    with pytest.raises(NoteError, match="base64"):
        verify_checkpoint(note[:-2] + "\n", NAME, pub(key))


def test_garbage_arguments_raise_note_error_only(key: Ed25519PrivateKey) -> None:
    note = sign_checkpoint(CP, NAME, key)
    for args in [
        (None, NAME, pub(key)),
        (note, "", pub(key)),
        (note, "has space", pub(key)),
        (note, NAME, pub(key)[:31]),
        (note, NAME, "not bytes"),
        ("\ud800" + note, NAME, pub(key)),
        ("x" * 100_000, NAME, pub(key)),
    ]:
        with pytest.raises(NoteError):
            verify_checkpoint(*args)  # type: ignore[arg-type]


def test_signer_refuses_what_the_verifier_would_refuse(key: Ed25519PrivateKey) -> None:
    for cp in [
        Checkpoint("", 1, ROOT, 1),
        Checkpoint("a\nb", 1, ROOT, 1),
        Checkpoint("o", -1, ROOT, 1),
        Checkpoint("o", 1, ROOT[:31], 1),
        Checkpoint("o", 1, ROOT, -5),
        Checkpoint("o", True, ROOT, 1),
    ]:
        with pytest.raises(NoteError):
            sign_checkpoint(cp, NAME, key)
    with pytest.raises(NoteError):
        sign_checkpoint(CP, "bad name", key)


def test_parse_checkpoint_body_is_the_inverse_of_format() -> None:
    assert parse_checkpoint_body(format_checkpoint_body(CP)) == CP
