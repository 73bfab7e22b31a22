"""The Merkle tree over the stored log: roots and RFC 9162 proofs for any tree size.

Leaf hashes are the records' own `leaf_hash`; perfect subtrees at levels that
are multiples of 8 are stored in MerkleNode as they complete. Any other perfect
subtree is computed from at most 256 stored hashes one tile level below it, so
a proof needs O(log n) hashes read in one round trip (with the log's size),
whatever the log's size. Hashes once read or computed are kept per process
(`node_cache`)."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Mapping

from django.db import connection

from compliance_client import merkle
from compliance_site.exceptions import Invalid

from .. import store
from ..models import Log
from .log import DEFAULT_LOG, TILE_LEVELS


class ProofRequestError(Invalid):
    """An impossible proof request (400)."""

    def __init__(self, detail: str):
        super().__init__("invalid_proof_request", detail)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class _NodeCache:
    """Hashes of perfect subtrees, per process, least recently used out first.

    A perfect subtree's hash never changes once its leaves exist: records are
    append-only (the database refuses UPDATE of a hash and every DELETE) and a
    stored node is written once. So a hash computed from committed rows holds
    for the life of the log. Only those are kept: nothing is stored while a
    transaction is open, whose rows could still roll back (a retried append).
    What stays is what every proof reads: the nodes above the tile level (two
    per 256 leaves, all of them for a log of millions of records) and the
    tree's right edge (a proof against the latest size folds it); a proof
    then reads and hashes little more than the tile of its own leaf."""

    def __init__(self, limit: int):
        self.limit = limit
        self._hashes: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()

    def get(self, log_name: str, node: merkle.Node) -> bytes | None:
        key = (log_name, *node)
        found = self._hashes.get(key)
        if found is not None:
            self._hashes.move_to_end(key)
        return found

    def put(self, log_name: str, hashes: Mapping[merkle.Node, bytes]) -> None:
        if connection.in_atomic_block:
            return
        for (level, index), digest in hashes.items():
            self._hashes[(log_name, level, index)] = digest
        while len(self._hashes) > self.limit:
            self._hashes.popitem(last=False)

    def clear(self) -> None:
        self._hashes.clear()

    def __len__(self) -> int:
        return len(self._hashes)


# 65,536 nodes (16 MB per process) hold every node above the tile level of a
# log of 8 million records, with room for the recent ones below it.
node_cache = _NodeCache(limit=1 << 16)


def _read(
    log_name: str, spans: dict[int, list[tuple[int, int]]]
) -> tuple[int, dict[int, dict[int, bytes]]]:
    """The log's size, and its stored hashes for index spans [start, end) at
    each tile level, in one round trip (audit.store.tree_hashes: building the
    same OR of ranges through the ORM cost more than the query itself on the
    proof endpoints' hot path)."""
    ranges = [
        (level, start, end)
        for level, level_spans in spans.items()
        for start, end in _merge(level_spans)
    ]
    size, rows = store.tree_hashes(log_name, ranges)
    out: dict[int, dict[int, bytes]] = {level: {} for level in spans}
    for level, index, digest in rows:
        out[level][index] = digest
    if size is None:
        raise Log.DoesNotExist(f"no log named {log_name!r}")
    return size, out


def _nodes(log_name: str, wanted: list[merkle.Node]) -> tuple[int, dict[merkle.Node, bytes]]:
    """The log's size and the hashes of the `wanted` perfect subtrees that it
    holds (none of a subtree not complete in the log). Each one is read from
    the cache or computed from at most 256 stored hashes one tile level below."""
    found: dict[merkle.Node, bytes] = {}
    spans: dict[int, list[tuple[int, int]]] = defaultdict(list)
    missing: list[merkle.Node] = []
    for node in wanted:
        cached = node_cache.get(log_name, node)
        if cached is not None:
            found[node] = cached
            continue
        level, index = node
        base = level - level % TILE_LEVELS
        width = 1 << (level - base)
        spans[base].append((index * width, (index + 1) * width))
        missing.append(node)
    size, stored = _read(log_name, spans)
    computed: dict[merkle.Node, bytes] = {}
    for level, index in missing:
        base = level - level % TILE_LEVELS
        width = 1 << (level - base)
        tile = stored[base]
        try:
            hashes = [tile[i] for i in range(index * width, (index + 1) * width)]
        except KeyError:
            continue  # not complete in the log: the caller reports what it misses
        computed[(level, index)] = hashes[0] if width == 1 else merkle.root_from_leaf_hashes(hashes)
    node_cache.put(log_name, computed)
    found.update(computed)
    return size, found


def _given(hashes: Mapping[merkle.Node, bytes]) -> merkle.NodeFetcher:
    """A fetcher over hashes already read, for compliance_client.merkle."""

    def fetch(nodes: list[merkle.Node]) -> Mapping[merkle.Node, bytes]:
        return hashes

    return fetch


def fetcher(log_name: str = DEFAULT_LOG) -> merkle.NodeFetcher:
    """A node fetcher for compliance_client.merkle: one round trip per call."""

    def fetch(nodes: list[merkle.Node]) -> Mapping[merkle.Node, bytes]:
        return _nodes(log_name, nodes)[1]

    return fetch


def root_at(*, tree_size: int, log_name: str = DEFAULT_LOG) -> bytes:
    wanted = merkle.root_at_nodes(tree_size) if tree_size >= 0 else []
    size, hashes = _nodes(log_name, wanted)
    if not 0 <= tree_size <= size:
        raise ProofRequestError(f"tree_size {tree_size} is beyond the log's size {size}")
    return merkle.root_at(tree_size, _given(hashes))


def current_root(log: Log) -> bytes:
    return merkle.frontier_root([bytes.fromhex(h) for h in log.frontier])


def inclusion_proof(
    *, seq: int, tree_size: int, log_name: str = DEFAULT_LOG
) -> tuple[bytes, list[bytes]]:
    """(leaf_hash, audit path) for record `seq` in the tree of `tree_size` leaves."""
    possible = 0 <= seq < tree_size
    wanted = [*merkle.inclusion_proof_nodes(seq, tree_size), (0, seq)] if possible else []
    size, hashes = _nodes(log_name, wanted)
    if tree_size > size:
        raise ProofRequestError(f"tree_size {tree_size} is beyond the log's size {size}")
    if not possible:
        raise ProofRequestError(f"seq must satisfy 0 <= seq < tree_size ({seq} / {tree_size})")
    path = merkle.inclusion_proof(seq, tree_size, _given(hashes))
    leaf = hashes.get((0, seq))
    if leaf is None:
        raise merkle.MissingNodeError(f"leaf {seq} is not stored")
    return leaf, path


def consistency_proof(*, first: int, second: int, log_name: str = DEFAULT_LOG) -> list[bytes]:
    possible = 0 <= first <= second
    wanted = merkle.consistency_proof_nodes(first, second) if possible else []
    size, hashes = _nodes(log_name, wanted)
    if second > size:
        raise ProofRequestError(f"second {second} is beyond the log's size {size}")
    if not possible:
        raise ProofRequestError(f"first must satisfy 0 <= first <= second ({first} / {second})")
    return merkle.consistency_proof(first, second, _given(hashes))
