"""The Merkle tree over the stored log: roots and RFC 9162 proofs for any tree size.

Leaf hashes are the records' own `leaf_hash`; perfect subtrees at levels that
are multiples of 8 are stored in MerkleNode as they complete. Any other perfect
subtree is computed from at most 256 stored hashes one tile level below it, so
a proof needs O(log n) hashes in two range queries, whatever the log's size."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from functools import reduce
from operator import or_

from django.db.models import Q

from compliance_client import merkle

from ..models import Log, MerkleNode, Record
from .log import DEFAULT_LOG, TILE_LEVELS


class ProofRequestError(ValueError):
    """An impossible proof request (400)."""


def _fetch_base(log: Log, level: int, spans: Iterable[tuple[int, int]]) -> dict[int, bytes]:
    """Stored hashes at a tile level for index spans [start, end)."""
    spans = list(spans)
    if not spans:
        return {}
    if level == 0:
        where = reduce(or_, (Q(seq__gte=a, seq__lt=b) for a, b in spans))
        leaves = Record.objects.filter(where, log=log).values_list("seq", "leaf_hash")
        return {index: bytes(h) for index, h in leaves}
    where = reduce(or_, (Q(index__gte=a, index__lt=b) for a, b in spans))
    nodes = MerkleNode.objects.filter(where, log=log, level=level).values_list("index", "hash")
    return {index: bytes(h) for index, h in nodes}


def fetcher(log: Log) -> merkle.NodeFetcher:
    def fetch(nodes: list[merkle.Node]) -> Mapping[merkle.Node, bytes]:
        spans: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for level, index in nodes:
            base = level - level % TILE_LEVELS
            width = 1 << (level - base)
            spans[base].append((index * width, (index + 1) * width))
        stored = {base: _fetch_base(log, base, s) for base, s in spans.items()}
        out: dict[merkle.Node, bytes] = {}
        for level, index in nodes:
            base = level - level % TILE_LEVELS
            width = 1 << (level - base)
            try:
                hashes = [stored[base][i] for i in range(index * width, (index + 1) * width)]
            except KeyError as exc:
                raise merkle.MissingNodeError(f"node L{level}#{index} is not stored") from exc
            out[(level, index)] = hashes[0] if width == 1 else merkle.root_from_leaf_hashes(hashes)
        return out

    return fetch


def _log(log_name: str) -> Log:
    return Log.objects.get(name=log_name)


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
    fetch = fetcher(log)
    leaf = fetch([(0, seq)])[(0, seq)]
    return leaf, merkle.inclusion_proof(seq, tree_size, fetch)


def consistency_proof(*, first: int, second: int, log_name: str = DEFAULT_LOG) -> list[bytes]:
    log = _log(log_name)
    if second > log.size:
        raise ProofRequestError(f"second {second} is beyond the log's size {log.size}")
    if not 0 <= first <= second:
        raise ProofRequestError(f"first must satisfy 0 <= first <= second ({first} / {second})")
    return merkle.consistency_proof(first, second, fetcher(log))
