"""BundleWriter: the layout the verifier expects, and export bugs caught at export time."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from compliance_client.bundle import (
    MEMBERS,
    README_TEXT,
    BundleError,
    BundleWriter,
    parse_keys,
    parse_manifest,
)
from compliance_client.jcs import canonicalize

from .conftest import FakeLog


class Unseekable(io.RawIOBase):
    """A write-only stream, like an HTTP response body."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.buf += data
        return len(data)


def test_bundle_has_exactly_the_documented_members_and_a_valid_manifest(
    fake_log: FakeLog, tmp_path: Path
) -> None:
    path = fake_log.write(tmp_path / "b.zip")
    with zipfile.ZipFile(path) as zf:
        assert [i.filename for i in zf.infolist()] == list(MEMBERS)
        manifest = parse_manifest(zf.read("MANIFEST.sha256").decode())
        for name, digest in manifest.items():
            assert hashlib.sha256(zf.read(name)).hexdigest() == digest
        assert zf.read("README.txt").decode() == README_TEXT
        lines = zf.read("records.jsonl").splitlines()
        assert len(lines) == len(fake_log.records)
        assert all(line == canonicalize(json.loads(line)) for line in lines)
        assert json.loads(zf.read("checkpoints.json")) == fake_log.notes
        log_key, agents = parse_keys(json.loads(zf.read("keys.json")))
        assert log_key.public_key == fake_log.log_key.public_key().public_bytes_raw()
        assert len(agents) == len(fake_log.agent_keys)


def test_writer_streams_to_an_unseekable_file(fake_log: FakeLog) -> None:
    out = Unseekable()
    with BundleWriter(out) as writer:  # type: ignore[arg-type]
        for r in fake_log.records:
            writer.add_record_line(r)
        writer.set_checkpoints(fake_log.notes)
        writer.set_consistency(fake_log.consistency(fake_log.notes))
        writer.set_keys(fake_log.keys_doc())
    with zipfile.ZipFile(io.BytesIO(bytes(out.buf))) as zf:
        assert zf.testzip() is None
        assert len(zf.read("records.jsonl").splitlines()) == len(fake_log.records)


def test_writer_accepts_pre_serialized_canonical_lines(fake_log: FakeLog) -> None:
    out = io.BytesIO()
    with BundleWriter(out) as writer:
        for r in fake_log.records:
            writer.add_record_json(canonicalize(r))
        writer.set_checkpoints(fake_log.notes)
        writer.set_consistency(fake_log.consistency(fake_log.notes))
        writer.set_keys(fake_log.keys_doc())
    with zipfile.ZipFile(out) as zf:
        assert zf.read("records.jsonl") == b"".join(
            canonicalize(r) + b"\n" for r in fake_log.records
        )


def new_writer() -> BundleWriter:
    return BundleWriter(io.BytesIO())


def test_writer_refuses_records_out_of_seq_order(fake_log: FakeLog) -> None:
    writer = new_writer()
    writer.add_record_line(fake_log.records[0])
    with pytest.raises(BundleError, match="expected seq 1"):
        writer.add_record_line(fake_log.records[2])


def test_writer_refuses_records_with_unknown_shape(fake_log: FakeLog) -> None:
    writer = new_writer()
    with pytest.raises(BundleError, match="keys"):
        writer.add_record_line(fake_log.records[0] | {"extra": 1})
    with pytest.raises(BundleError, match="lowercase hex"):
        writer.add_record_line(fake_log.records[0] | {"leaf_hash": "AB" * 32})


def test_writer_refuses_an_omitted_stub_after_exported_records(fake_log: FakeLog) -> None:
    writer = new_writer()
    writer.add_record_line(fake_log.records[0])
    stub = {k: fake_log.records[1][k] for k in ("seq", "leaf_hash", "chain_hash")}
    with pytest.raises(BundleError, match="omitted stub"):
        writer.add_record_line(stub | {"omitted": True})


def test_writer_refuses_to_close_an_incomplete_bundle(fake_log: FakeLog) -> None:
    writer = new_writer()
    writer.set_checkpoints(fake_log.notes)
    with pytest.raises(BundleError, match="not set"):
        writer.close()


def test_writer_validates_keys_and_consistency_documents(fake_log: FakeLog) -> None:
    writer = new_writer()
    bad_keys = fake_log.keys_doc()
    bad_keys["log"]["public_key"] = "AAAA"
    with pytest.raises(BundleError, match="32 raw bytes"):
        writer.set_keys(bad_keys)
    with pytest.raises(BundleError, match="hex"):
        writer.set_consistency([{"first": 1, "second": 2, "hashes": ["zz"]}])
    dup = fake_log.keys_doc()
    dup["agents"].append(dup["agents"][0])
    with pytest.raises(BundleError, match="duplicate"):
        writer.set_keys(dup)
