"""The Merkle tree over the stored log: roots and RFC 9162 proofs for any tree size.

Leaf hashes are the records' own `leaf_hash`; perfect subtrees at levels that
are multiples of 8 are stored in MerkleNode as they complete. Any other perfect
subtree is computed from at most 256 stored hashes one tile level below it, so
a proof needs O(log n) hashes in two range queries, whatever the log's size."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any, NamedTuple

from django.db import connection

from compliance_client import merkle

from ..models import Log, MerkleNode, Record
from .log import DEFAULT_LOG, TILE_LEVELS


class ProofRequestError(ValueError):
    """An impossible proof request (400)."""


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


# Constant SQL; every value is a parameter.
_LEAF_RANGE_SQL = (
    f"SELECT 0, seq, leaf_hash FROM {Record._meta.db_table}"  # noqa: S608
    " WHERE log_id = %s AND seq >= %s AND seq < %s"
)
_NODE_RANGE_SQL = (
    f'SELECT level, "index", hash FROM {MerkleNode._meta.db_table}'  # noqa: S608
    ' WHERE log_id = %s AND level = %s AND "index" >= %s AND "index" < %s'
)


def _fetch_stored(
    log: Log | LogSize, spans: dict[int, list[tuple[int, int]]]
) -> dict[int, dict[int, bytes]]:
    """Stored hashes for index spans [start, end) at each tile level, in one round
    trip. Plain SQL on purpose: building the same OR of ranges through the ORM
    cost more than the query itself on the proof endpoints' hot path."""
    # One branch per range: each is a plain index range scan, whatever the
    # table statistics say (an OR of ranges let the planner read every node of
    # a level and filter, a cost that grew with the log).
    parts: list[str] = []
    params: list[Any] = []
    for level, level_spans in spans.items():
        for start, end in _merge(level_spans):
            if level == 0:
                parts.append(_LEAF_RANGE_SQL)
                params += [log.pk, start, end]
            else:
                parts.append(_NODE_RANGE_SQL)
                params += [log.pk, level, start, end]
    out: dict[int, dict[int, bytes]] = {level: {} for level in spans}
    if not parts:
        return out
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        for level, index, digest in cursor.fetchall():
            out[level][index] = bytes(digest)
    return out


def fetcher(log: Log | LogSize, extra: list[merkle.Node] | None = None) -> merkle.NodeFetcher:
    """A node fetcher for compliance_client.merkle; `extra` nodes are fetched in
    the same round trip and can be read back from `fetch.cache`."""

    def fetch(nodes: list[merkle.Node]) -> Mapping[merkle.Node, bytes]:
        wanted = [*nodes, *(extra or [])]
        spans: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for level, index in wanted:
            base = level - level % TILE_LEVELS
            width = 1 << (level - base)
            spans[base].append((index * width, (index + 1) * width))
        stored = _fetch_stored(log, spans)
        out: dict[merkle.Node, bytes] = {}
        for level, index in wanted:
            base = level - level % TILE_LEVELS
            width = 1 << (level - base)
            try:
                hashes = [stored[base][i] for i in range(index * width, (index + 1) * width)]
            except KeyError as exc:
                raise merkle.MissingNodeError(f"node L{level}#{index} is not stored") from exc
            out[(level, index)] = hashes[0] if width == 1 else merkle.root_from_leaf_hashes(hashes)
        fetch.cache.update(out)  # type: ignore[attr-defined]
        return out

    fetch.cache = {}  # type: ignore[attr-defined]
    return fetch


class LogSize(NamedTuple):
    pk: int
    size: int


def _log(log_name: str) -> LogSize:
    """The log's id and size: plain SQL, as the proof endpoints' hot path wants."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, size FROM {Log._meta.db_table} WHERE name = %s", [log_name])  # noqa: S608
        row = cursor.fetchone()
    if row is None:
        raise Log.DoesNotExist(f"no log named {log_name!r}")
    return LogSize(*row)


def root_at(*, tree_size: int, log_name: str = DEFAULT_LOG) -> bytes:
    log = _log(log_name)
    if not 0 <= tree_size <= log.size:
        raise ProofRequestError(f"tree_size {tree_size} is beyond the log's size {log.size}")
    return merkle.root_at(tree_size, fetcher(log))


def current_root(log: Log) -> bytes:
    return merkle.frontier_root([bytes.fromhex(h) for h in log.frontier])


def inclusion_proof(
    *, seq: int, tree_size: int, log_name: str = DEFAULT_LOG
) -> tuple[bytes, list[bytes]]:
    """(leaf_hash, audit path) for record `seq` in the tree of `tree_size` leaves."""
    log = _log(log_name)
    if tree_size > log.size:
        raise ProofRequestError(f"tree_size {tree_size} is beyond the log's size {log.size}")
    if not 0 <= seq < tree_size:
        raise ProofRequestError(f"seq must satisfy 0 <= seq < tree_size ({seq} / {tree_size})")
    fetch = fetcher(log, extra=[(0, seq)])
    path = merkle.inclusion_proof(seq, tree_size, fetch)
    leaf = fetch.cache.get((0, seq)) or fetch([])[(0, seq)]  # type: ignore[attr-defined]
    return leaf, path


def consistency_proof(*, first: int, second: int, log_name: str = DEFAULT_LOG) -> list[bytes]:
    log = _log(log_name)
    if second > log.size:
        raise ProofRequestError(f"second {second} is beyond the log's size {log.size}")
    if not 0 <= first <= second:
        raise ProofRequestError(f"first must satisfy 0 <= first <= second ({first} / {second})")
    return merkle.consistency_proof(first, second, fetcher(log))
