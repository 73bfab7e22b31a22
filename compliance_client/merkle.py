"""RFC 9162 (Certificate Transparency v2) Merkle tree over 32-byte SHA-256 hashes.

Why this exact construction: an auditor must be able to check our proofs with
any off-the-shelf RFC 9162 / RFC 6962 verifier, and the tree must not have the
"duplicate the odd node" flaw (CVE-2012-2459), where two different leaf lists
share a root. So:

* leaf hash ``SHA-256(0x00 || data)``, interior node ``SHA-256(0x01 || l || r)``
  (the prefixes keep a leaf from ever being confused with a node);
* ``MTH(D[n])`` splits at ``k``, the largest power of two smaller than ``n``;
  an odd node is never duplicated, it is carried up unchanged;
* the root of the empty tree is ``SHA-256(b"")``.

Vocabulary used throughout. A *perfect subtree* ``(level, index)`` is the
complete subtree of height ``level`` covering leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 is a leaf hash. Every
``MTH(D[a:b])`` that shows up in a proof is either perfect or sits on the right
edge of the tree, and a right-edge range decomposes into the perfect subtrees
for the set bits of its width, largest first. That is why a node store only
ever needs perfect subtrees: they never change once complete, so the server can
write each one exactly once (see ``frontier_append``) and answer any proof for
any tree size with one batched read (see ``inclusion_proof``).

The *frontier* (compact range) of a tree of size ``n`` is the list of the
perfect subtrees for the set bits of ``n``, largest first. It is all the state
needed to append and to compute the current root in O(log n).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MissingNodeError",
    "Node",
    "NodeFetcher",
    "chain_next",
    "consistency_proof",
    "consistency_proof_nodes",
    "frontier_append",
    "frontier_extend",
    "frontier_root",
    "hash_children",
    "hash_leaf",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "range_nodes",
    "root_at",
    "root_at_nodes",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
#: Root of the empty tree (RFC 9162 2.1.1: MTH({}) = HASH()).
EMPTY_ROOT = hashlib.sha256(b"").digest()
#: Verification refuses sizes beyond this; no real log gets near it, and it
#: bounds the work an adversarial proof can cause.
MAX_TREE_SIZE = 1 << 63

Node = tuple[int, int]
"""A perfect subtree ``(level, index)``; see the module docstring."""
NodeFetcher = Callable[[list[Node]], Mapping[Node, bytes]]
"""Returns the hashes of the requested perfect subtrees (level 0 = leaf hashes)."""

_sha256 = hashlib.sha256
_LEAF = b"\x00"
_NODE = b"\x01"


class MissingNodeError(LookupError):
    """The node store did not return a perfect subtree the proof needs.

    Not a ValueError on purpose: the request was fine, the store is
    inconsistent (or lags behind the tree size asked for).
    """


def hash_leaf(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || data)."""
    return _sha256(_LEAF + data).digest()


def chain_next(previous: bytes, leaf_hash: bytes) -> bytes:
    """The next link of the log's linear hash chain: SHA-256(previous || leaf_hash),
    with 32 zero bytes before the first record (docs/records.md)."""
    return _sha256(previous + leaf_hash).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(_NODE + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves, iteratively in O(n).

    Pairs neighbours level by level and carries a lone last node up unchanged;
    that yields exactly the RFC 9162 split-at-largest-power-of-two tree (and
    never the duplicate-odd-node one).
    """
    level = list(hashes)
    if not level:
        return EMPTY_ROOT
    sha = _sha256
    node = _NODE
    while len(level) > 1:
        odd = level[-1] if len(level) & 1 else None
        level = [sha(node + a + b).digest() for a, b in zip(level[::2], level[1::2], strict=False)]
        if odd is not None:
            level.append(odd)
    return level[0]


# --------------------------------------------------------------------------
# Frontier (compact range)


def _check_frontier(frontier: Sequence[bytes], size: int) -> None:
    if size < 0:
        raise ValueError(f"tree size must be >= 0, got {size}")
    if len(frontier) != size.bit_count():
        raise ValueError(
            f"frontier has {len(frontier)} hashes but a tree of size {size} "
            f"needs {size.bit_count()} (one per set bit)"
        )


def frontier_append(
    frontier: Sequence[bytes], size: int, leaf_hash: bytes
) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Append one leaf hash to the frontier of a tree of ``size`` leaves.

    Returns ``(new_frontier, completed)`` where ``completed`` lists the perfect
    subtrees of level >= 1 this append finished, as ``(level, index, hash)``
    in increasing level; each perfect subtree is reported exactly once over
    the life of the log, which is what lets the server store it once. The
    input list is not modified. Cost: amortised one SHA-256 per leaf.
    """
    _check_frontier(frontier, size)
    new = list(frontier)
    completed: list[tuple[int, int, bytes]] = []
    _append(new, size, leaf_hash, completed)
    return new, completed


def frontier_extend(
    frontier: Sequence[bytes], size: int, leaf_hashes: Iterable[bytes]
) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Append many leaf hashes; same contract as ``frontier_append``.

    The server appends a whole batch under the log lock, so this validates once
    and copies the frontier once instead of per leaf.
    """
    _check_frontier(frontier, size)
    new = list(frontier)
    completed: list[tuple[int, int, bytes]] = []
    for leaf_hash in leaf_hashes:
        _append(new, size, leaf_hash, completed)
        size += 1
    return new, completed


def _append(
    frontier: list[bytes], size: int, node: bytes, completed: list[tuple[int, int, bytes]]
) -> None:
    """Merge ``node`` (a new leaf) into ``frontier`` in place.

    Each trailing set bit of ``size`` is a perfect subtree of the same level
    as the node being carried, so they merge, like a binary increment.
    """
    if len(node) != HASH_SIZE:
        raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(node)}")
    level = 0
    sha = _sha256
    while size & 1:
        node = sha(_NODE + frontier.pop() + node).digest()
        size >>= 1
        level += 1
        # After the shift, `size` counts whole subtrees of this level before
        # the new one, which is therefore its index.
        completed.append((level, size, node))
    frontier.append(node)


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """Root of the tree described by a frontier (largest subtree first).

    Folds from the right: the smallest subtrees form the deepest right edge.
    """
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for node in reversed(frontier[:-1]):
        root = _sha256(_NODE + node + root).digest()
    return root


# --------------------------------------------------------------------------
# Proof generation over a store of perfect subtrees


def _largest_power_of_two_below(n: int) -> int:
    """k such that k < n <= 2k (n >= 2), the RFC 9162 split point."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[Node]:
    """Perfect subtrees whose fold is MTH(D[start:end]), largest first.

    Valid for every range a proof can name: ``start`` is a multiple of the
    smallest power of two >= the width (the range is either perfect or the
    right edge of the tree). Anything else is a bug in the caller.
    """
    width = end - start
    if width <= 0:
        raise ValueError(f"empty or negative range [{start}, {end})")
    if start & ((1 << (width - 1).bit_length()) - 1):
        raise ValueError(f"range [{start}, {end}) is not aligned to a subtree")
    nodes: list[Node] = []
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """RFC 9162 2.1.3.1 PATH(m, D[n]) as leaf ranges, bottom-up."""
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def _consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """RFC 9162 2.1.4.1 SUBPROOF(m, D[n], true) as leaf ranges, bottom-up."""
    ranges: list[tuple[int, int]] = []
    start, m, n = 0, first, second
    whole_old_tree = True  # the RFC's flag b: still on the old tree's left edge
    while m != n:
        k = _largest_power_of_two_below(n)
        if m <= k:
            ranges.append((start + k, start + n))
            n = k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            n -= k
            whole_old_tree = False
    if not whole_old_tree:
        ranges.append((start, start + n))
    ranges.reverse()
    return ranges


def _check_size(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _check_inclusion_request(index: int, size: int) -> None:
    _check_size("index", index)
    _check_size("tree size", size)
    if index >= size:
        raise ValueError(f"no inclusion proof: index {index} is not below tree size {size}")


def _check_consistency_request(first: int, second: int) -> None:
    _check_size("first", first)
    _check_size("second", second)
    if first > second:
        raise ValueError(f"no consistency proof: first {first} is larger than second {second}")


def _unique_nodes(ranges: Iterable[tuple[int, int]]) -> list[Node]:
    return list(dict.fromkeys(node for r in ranges for node in range_nodes(*r)))


def inclusion_proof_nodes(index: int, size: int) -> list[Node]:
    """The perfect subtrees an inclusion proof for (index, size) reads."""
    _check_inclusion_request(index, size)
    return _unique_nodes(_inclusion_ranges(index, size))


def consistency_proof_nodes(first: int, second: int) -> list[Node]:
    """The perfect subtrees a consistency proof first -> second reads."""
    _check_consistency_request(first, second)
    if first in (0, second):
        return []
    return _unique_nodes(_consistency_ranges(first, second))


def root_at_nodes(size: int) -> list[Node]:
    """The perfect subtrees whose fold is the root of the tree of ``size``."""
    _check_size("tree size", size)
    return range_nodes(0, size) if size else []


def _assemble(ranges: Sequence[tuple[int, int]], fetch: NodeFetcher) -> list[bytes]:
    """Fetch every needed node in one call, then fold each range."""
    needed = _unique_nodes(ranges)
    if not needed:
        return []
    got = fetch(needed)
    out: list[bytes] = []
    for r in ranges:
        parts = []
        for node in range_nodes(*r):
            value = got.get(node)
            if value is None:
                raise MissingNodeError(
                    f"node store has no hash for perfect subtree level={node[0]} index={node[1]}"
                )
            if len(value) != HASH_SIZE:
                raise MissingNodeError(
                    f"node store returned {len(value)} bytes for level={node[0]} index={node[1]}"
                )
            parts.append(value)
        out.append(frontier_root(parts))
    return out


def inclusion_proof(index: int, size: int, fetch: NodeFetcher) -> list[bytes]:
    """RFC 9162 2.1.3.1 inclusion proof (audit path) for leaf ``index`` in a
    tree of ``size`` leaves, bottom-up. Calls ``fetch`` at most once (not at
    all for a one-leaf tree, whose proof is empty).
    """
    _check_inclusion_request(index, size)
    return _assemble(_inclusion_ranges(index, size), fetch)


def consistency_proof(first: int, second: int, fetch: NodeFetcher) -> list[bytes]:
    """RFC 9162 2.1.4.1 consistency proof from tree size ``first`` to
    ``second``. Empty when first == second or first == 0 (nothing to prove).
    Calls ``fetch`` at most once.
    """
    _check_consistency_request(first, second)
    if first in (0, second):
        return []
    return _assemble(_consistency_ranges(first, second), fetch)


def root_at(size: int, fetch: NodeFetcher) -> bytes:
    """Root of the tree of ``size`` leaves, with one fetch of <= log2(n) nodes."""
    _check_size("tree size", size)
    if size == 0:
        return EMPTY_ROOT
    return _assemble([(0, size)], fetch)[0]


# --------------------------------------------------------------------------
# Verification: strict, never raises on bad input


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_TREE_SIZE


def _is_proof(proof: object) -> bool:
    return isinstance(proof, (list, tuple)) and len(proof) <= 2 * 64 and all(map(_is_hash, proof))


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: is ``leaf_hash`` the leaf at ``index`` of the tree of
    ``size`` leaves whose root is ``root``? A proof of the wrong length, wrong
    types or out-of-range numbers yields False, never an exception.
    """
    if not (
        _is_hash(leaf_hash)
        and _is_hash(root)
        and _is_size(index)
        and _is_size(size)
        and _is_proof(proof)
    ):
        return False
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(r, root)


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: is the tree (second, second_root) an append-only
    extension of (first, first_root)? Returns False, never raises, on bad input.

    Edge cases follow RFC 9162 2.1.4.1: from size 0 or to the same size the
    proof is empty; for size 0 the first root must be the empty-tree root and
    for equal sizes the two roots must be equal.
    """
    if not (
        _is_size(first)
        and _is_size(second)
        and _is_hash(first_root)
        and _is_hash(second_root)
        and _is_proof(proof)
    ):
        return False
    if first > second:
        return False
    if first == 0:
        return not proof and hmac.compare_digest(first_root, EMPTY_ROOT)
    if first == second:
        return not proof and hmac.compare_digest(first_root, second_root)
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # exact power of two: the old root is a node of the new tree
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(fr, first_root) and hmac.compare_digest(sr, second_root)
