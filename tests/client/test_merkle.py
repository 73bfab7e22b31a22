"""The RFC 9162 tree: agreement with pymerkle, the published CT vectors, a literal
transcription of the RFC, and rejection of every corrupted proof we can think of."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping

import pymerkle
import pytest

from compliance_client import merkle as m

# --------------------------------------------------------------------------
# helpers


def leaf_data(i: int) -> bytes:
    return b"record-%d" % i


def build(n: int) -> tuple[list[bytes], dict[m.Node, bytes]]:
    """Leaf hashes plus the node store the server would have written.

    The store is filled only from what frontier_extend reports, so every
    proof test also checks that the completed-subtree stream is sufficient.
    """
    leaves = [m.hash_leaf(leaf_data(i)) for i in range(n)]
    store: dict[m.Node, bytes] = {(0, i): h for i, h in enumerate(leaves)}
    _, completed = m.frontier_extend([], 0, leaves)
    for level, index, h in completed:
        store[(level, index)] = h
    return leaves, store


class CountingStore:
    """A fetch callable that records how it was called."""

    def __init__(self, store: Mapping[m.Node, bytes]) -> None:
        self.store = store
        self.calls: list[list[m.Node]] = []

    def __call__(self, nodes: list[m.Node]) -> dict[m.Node, bytes]:
        self.calls.append(list(nodes))
        return {node: self.store[node] for node in nodes if node in self.store}


def pymerkle_tree(n: int) -> pymerkle.InmemoryTree:
    tree = pymerkle.InmemoryTree(algorithm="sha256")  # RFC 9162 prefixes are on by default
    for i in range(n):
        tree.append_entry(leaf_data(i))
    return tree


def rfc_mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 2.1.1 MTH, transcribed literally (recursive)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return m.hash_children(rfc_mth(leaves[:k]), rfc_mth(leaves[k:]))


def rfc_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(m, D[n]), transcribed literally."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if index < k:
        return [*rfc_path(index, leaves[:k]), rfc_mth(leaves[k:])]
    return [*rfc_path(index - k, leaves[k:]), rfc_mth(leaves[:k])]


def rfc_subproof(first: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """RFC 9162 2.1.4.1 SUBPROOF(m, D[n], b), transcribed literally."""
    n = len(leaves)
    if first == n:
        return [] if whole else [rfc_mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if first <= k:
        return [*rfc_subproof(first, leaves[:k], whole), rfc_mth(leaves[k:])]
    return [*rfc_subproof(first - k, leaves[k:], False), rfc_mth(leaves[:k])]


# --------------------------------------------------------------------------
# published vectors (certificate-transparency merkle_tree tests, RFC 6962)

CT_INPUTS = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
H_96A2 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
H_5F08 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
H_6B47 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
H_BC1A = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
H_CA85 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
H_0EBC = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
CT_INCLUSION = [
    (0, 1, []),
    (0, 8, [H_96A2, H_5F08, H_6B47]),
    (5, 8, [H_BC1A, H_CA85, CT_ROOTS[3]]),
    (2, 3, [CT_ROOTS[1]]),
    (1, 5, [CT_ROOTS[0], H_5F08, H_BC1A]),
]
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, [H_96A2, H_5F08, H_6B47]),
    (6, 8, [H_0EBC, H_CA85, CT_ROOTS[3]]),
    (2, 5, [H_5F08, H_BC1A]),
]


def ct_store() -> tuple[list[bytes], CountingStore]:
    leaves = [m.hash_leaf(x) for x in CT_INPUTS]
    store = {(0, i): h for i, h in enumerate(leaves)}
    for level, index, h in m.frontier_extend([], 0, leaves)[1]:
        store[(level, index)] = h
    return leaves, CountingStore(store)


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert m.root_from_leaf_hashes([]) == hashlib.sha256(b"").digest() == m.EMPTY_ROOT
    assert m.frontier_root([]) == m.EMPTY_ROOT
    assert m.root_at(0, CountingStore({})) == m.EMPTY_ROOT


def test_roots_match_the_published_ct_vectors() -> None:
    leaves, store = ct_store()
    for n, expected in enumerate(CT_ROOTS, start=1):
        assert m.root_from_leaf_hashes(leaves[:n]).hex() == expected
        assert m.root_at(n, store).hex() == expected


def test_inclusion_proofs_match_the_published_ct_vectors() -> None:
    leaves, store = ct_store()
    for index, size, expected in CT_INCLUSION:
        proof = m.inclusion_proof(index, size, store)
        assert [h.hex() for h in proof] == expected
        root = bytes.fromhex(CT_ROOTS[size - 1])
        assert m.verify_inclusion(leaves[index], index, size, proof, root)


def test_consistency_proofs_match_the_published_ct_vectors() -> None:
    _, store = ct_store()
    for first, second, expected in CT_CONSISTENCY:
        proof = m.consistency_proof(first, second, store)
        assert [h.hex() for h in proof] == expected
        r1, r2 = bytes.fromhex(CT_ROOTS[first - 1]), bytes.fromhex(CT_ROOTS[second - 1])
        assert m.verify_consistency(first, second, r1, r2, proof)


# --------------------------------------------------------------------------
# agreement with pymerkle and with the RFC text, every size 1..300

N_SMALL = 300


@pytest.fixture(scope="module")
def small() -> tuple[list[bytes], dict[m.Node, bytes], pymerkle.InmemoryTree]:
    leaves, store = build(N_SMALL)
    return leaves, store, pymerkle_tree(N_SMALL)


def test_roots_match_pymerkle_and_the_rfc_for_every_size_up_to_300(small) -> None:
    leaves, store, tree = small
    fetch = CountingStore(store)
    for n in range(N_SMALL + 1):
        expected = tree.get_root(n)
        assert m.root_from_leaf_hashes(leaves[:n]) == expected, n
        assert m.root_at(n, fetch) == expected, n
        assert m.frontier_root(m.frontier_extend([], 0, leaves[:n])[0]) == expected, n
        if n <= 64:
            assert rfc_mth(leaves[:n]) == expected, n


def test_inclusion_proofs_match_pymerkle_for_every_index_of_every_size_up_to_300(small) -> None:
    leaves, store, tree = small
    for n in range(1, N_SMALL + 1):
        root = tree.get_root(n)
        for i in range(n):
            fetch = CountingStore(store)
            proof = m.inclusion_proof(i, n, fetch)
            # pymerkle's path is [leaf, sibling, sibling, ...]; RFC 9162's drops the leaf.
            reference = tree.prove_inclusion(i + 1, n)
            assert proof == reference.path[1:], (i, n)
            assert m.verify_inclusion(leaves[i], i, n, proof, root), (i, n)
            assert len(fetch.calls) == (1 if n > 1 else 0)


def test_inclusion_proofs_match_the_rfc_transcription(small) -> None:
    leaves, store, _ = small
    for n in range(1, 80):
        for i in range(n):
            assert m.inclusion_proof(i, n, CountingStore(store)) == rfc_path(i, leaves[:n])


def test_consistency_proofs_verify_for_every_pair_up_to_300(small) -> None:
    """pymerkle's consistency path is not in RFC 9162 wire order (it walks
    right when the old size equals the split point), so its proofs are not
    compared byte for byte; its roots are the reference, our proofs must tie
    them together, and the wire format is checked against the RFC text."""
    leaves, store, tree = small
    roots = [tree.get_root(n) for n in range(N_SMALL + 1)]
    for second in range(1, N_SMALL + 1):
        for first in range(0, second + 1):
            fetch = CountingStore(store)
            proof = m.consistency_proof(first, second, fetch)
            assert m.verify_consistency(first, second, roots[first], roots[second], proof), (
                first,
                second,
            )
            assert len(fetch.calls) <= 1
    for second in range(1, 90):
        for first in range(1, second + 1):
            expected = rfc_subproof(first, leaves[:second], True)
            assert m.consistency_proof(first, second, CountingStore(store)) == expected


@pytest.mark.parametrize("n", [1000, 4097, 65537])
def test_large_trees_match_pymerkle(n: int) -> None:
    leaves, store = build(n)
    tree = pymerkle_tree(n)
    rng = random.Random(n)
    root = tree.get_root(n)
    assert m.root_from_leaf_hashes(leaves) == root
    assert m.root_at(n, CountingStore(store)) == root
    for i in [0, 1, n // 2, n - 2, n - 1, *rng.sample(range(n), 40)]:
        proof = m.inclusion_proof(i, n, CountingStore(store))
        assert proof == tree.prove_inclusion(i + 1, n).path[1:]
        assert m.verify_inclusion(leaves[i], i, n, proof, root)
    for first in [1, 2, 3, n // 2, n - 1, n, *rng.sample(range(1, n), 40)]:
        proof = m.consistency_proof(first, n, CountingStore(store))
        assert m.verify_consistency(first, n, tree.get_root(first), root, proof)


def test_proof_generation_fetches_each_needed_node_once_in_one_call(small) -> None:
    _, store, _ = small
    fetch = CountingStore(store)
    m.inclusion_proof(5, 300, fetch)
    (call,) = fetch.calls
    assert call == m.inclusion_proof_nodes(5, 300)
    assert len(call) == len(set(call))
    assert all(node in store for node in call)
    fetch = CountingStore(store)
    m.consistency_proof(7, 300, fetch)
    assert fetch.calls == [m.consistency_proof_nodes(7, 300)]
    assert m.root_at_nodes(300) == [(8, 0), (5, 8), (3, 36), (2, 74)]


def test_proof_generation_only_needs_perfect_subtrees() -> None:
    for n in range(1, 200):
        for node in m.root_at_nodes(n):
            assert (node[1] + 1) << node[0] <= n
        for i in range(0, n, 7):
            for level, index in m.inclusion_proof_nodes(i, n):
                assert (index + 1) << level <= n
        for first in range(1, n + 1, 5):
            for level, index in m.consistency_proof_nodes(first, n):
                assert (index + 1) << level <= n


def test_missing_node_in_the_store_is_reported_not_guessed() -> None:
    _, store = build(10)
    del store[(3, 0)]
    with pytest.raises(m.MissingNodeError, match="level=3 index=0"):
        m.inclusion_proof(9, 10, CountingStore(store))


@pytest.mark.parametrize(
    ("index", "size"), [(5, 5), (6, 5), (-1, 5), (0, 0)], ids=["equal", "beyond", "neg", "empty"]
)
def test_impossible_inclusion_requests_raise_value_error(index: int, size: int) -> None:
    with pytest.raises(ValueError, match=r"index|size"):
        m.inclusion_proof(index, size, CountingStore({}))


def test_impossible_consistency_requests_raise_value_error() -> None:
    with pytest.raises(ValueError, match="larger than second"):
        m.consistency_proof(6, 5, CountingStore({}))
    with pytest.raises(ValueError, match="first"):
        m.consistency_proof(-1, 5, CountingStore({}))


def test_trivial_consistency_proofs_are_empty_and_fetch_nothing() -> None:
    fetch = CountingStore({})
    assert m.consistency_proof(0, 10, fetch) == []
    assert m.consistency_proof(10, 10, fetch) == []
    assert fetch.calls == []


# --------------------------------------------------------------------------
# frontier


def test_frontier_matches_root_for_every_size_and_reports_each_subtree_once() -> None:
    leaves = [m.hash_leaf(leaf_data(i)) for i in range(1101)]
    frontier: list[bytes] = []
    seen: dict[tuple[int, int], bytes] = {}
    for size in range(1101):
        assert m.frontier_root(frontier) == m.root_from_leaf_hashes(leaves[:size]), size
        assert len(frontier) == size.bit_count()
        frontier, completed = m.frontier_append(frontier, size, leaves[size])
        for level, index, h in completed:
            assert level >= 1
            assert (level, index) not in seen, "reported twice"
            # the subtree ends exactly at the leaf just appended
            assert (index + 1) << level == size + 1
            assert h == m.root_from_leaf_hashes(leaves[index << level : (index + 1) << level])
            seen[(level, index)] = h
    # every perfect subtree of level >= 1 inside 1101 leaves was reported
    expected = {(lv, ix) for lv in range(1, 11) for ix in range(1101 >> lv)}
    assert set(seen) == expected


def test_frontier_extend_equals_repeated_append() -> None:
    leaves = [m.hash_leaf(leaf_data(i)) for i in range(300)]
    one_by_one: list[bytes] = []
    all_completed = []
    for size, h in enumerate(leaves):
        one_by_one, completed = m.frontier_append(one_by_one, size, h)
        all_completed += completed
    batched, c1 = m.frontier_extend([], 0, leaves[:137])
    batched, c2 = m.frontier_extend(batched, 137, leaves[137:])
    assert batched == one_by_one
    assert c1 + c2 == all_completed


def test_frontier_append_does_not_mutate_its_input() -> None:
    frontier = [m.hash_leaf(b"a")]
    before = list(frontier)
    m.frontier_append(frontier, 1, m.hash_leaf(b"b"))
    assert frontier == before


def test_frontier_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="set bit"):
        m.frontier_append([], 3, m.hash_leaf(b"x"))
    with pytest.raises(ValueError, match="32 bytes"):
        m.frontier_append([], 0, b"short")


# --------------------------------------------------------------------------
# adversarial proofs: none accepted


def flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def test_no_corrupted_inclusion_proof_is_accepted() -> None:
    n = 77
    leaves, store = build(n + 1)
    roots = [m.root_from_leaf_hashes(leaves[:k]) for k in range(n + 2)]
    root = roots[n]
    rng = random.Random(1)
    rejected = 0
    for i in range(n):
        proof = m.inclusion_proof(i, n, CountingStore(store))
        assert m.verify_inclusion(leaves[i], i, n, proof, root)
        bad: list[tuple[bytes, int, int, list[bytes], bytes]] = []
        for j in range(len(proof)):  # bit flips in each proof hash
            p = list(proof)
            p[j] = flip(p[j], rng.randrange(256))
            bad.append((leaves[i], i, n, p, root))
        bad.append((leaves[i], i, n, proof[:-1], root))  # truncated
        bad.append((leaves[i], i, n, [*proof, proof[-1]], root))  # extended
        bad.append((leaves[i], i, n, [*proof, m.EMPTY_ROOT], root))
        if len(proof) > 1:
            bad.append((leaves[i], i, n, proof[::-1], root))  # reordered
        bad.append((leaves[i], (i + 1) % n, n, proof, root))  # wrong index
        # wrong sizes, each with the genuine root of the claimed size (a proof
        # shape can fit several sizes; the root is what pins the size)
        bad.append((leaves[i], i, n + 1, proof, roots[n + 1]))
        if i < n - 1:
            bad.append((leaves[i], i, n - 1, proof, roots[n - 1]))
        bad.append((leaves[i], i + n, n, proof, root))
        bad.append((leaves[(i + 1) % n], i, n, proof, root))  # wrong leaf
        bad.append((flip(leaves[i], 0), i, n, proof, root))
        bad.append((leaves[i], i, n, proof, flip(root, 255)))  # wrong root
        for args in bad:
            assert not m.verify_inclusion(*args), args[1:3]
            rejected += 1
    assert rejected >= 1000


def test_no_corrupted_consistency_proof_is_accepted() -> None:
    n = 70
    leaves, store = build(n + 1)
    roots = [m.root_from_leaf_hashes(leaves[:k]) for k in range(n + 2)]
    rng = random.Random(2)
    rejected = 0
    for first in range(1, n):
        second = rng.randrange(first + 1, n + 1)
        proof = m.consistency_proof(first, second, CountingStore(store))
        r1, r2 = roots[first], roots[second]
        assert m.verify_consistency(first, second, r1, r2, proof)
        bad = []
        for j in range(len(proof)):
            p = list(proof)
            p[j] = flip(p[j], rng.randrange(256))
            bad.append((first, second, r1, r2, p))
        bad.append((first, second, r1, r2, proof[:-1]))
        bad.append((first, second, r1, r2, [*proof, proof[0]]))
        if len(proof) > 1 and proof[0] != proof[-1]:
            bad.append((first, second, r1, r2, proof[::-1]))
        bad.append((first, second, r1, r2, []))
        # wrong sizes, with the genuine roots of the claimed sizes
        if first + 1 < second:
            bad.append((first + 1, second, roots[first + 1], r2, proof))
        bad.append((first - 1, second, roots[first - 1], r2, proof))
        bad.append((first, second + 1, r1, roots[second + 1], proof))
        if second - 1 > first:
            bad.append((first, second - 1, r1, roots[second - 1], proof))
        bad.append((second, first, r2, r1, proof))
        bad.append((first, second, flip(r1, 7), r2, proof))
        bad.append((first, second, r1, flip(r2, 7), proof))
        bad.append((first, second, roots[first - 1], r2, proof))
        bad.append((first, second, r2, r1, proof))
        for args in bad:
            assert not m.verify_consistency(*args), args[:2]
            rejected += 1
    assert rejected >= 500


def test_equal_and_zero_size_consistency_edges() -> None:
    leaves, _ = build(5)
    r5 = m.root_from_leaf_hashes(leaves)
    assert m.verify_consistency(5, 5, r5, r5, [])
    assert not m.verify_consistency(5, 5, r5, flip(r5, 1), [])
    assert not m.verify_consistency(5, 5, r5, r5, [r5])
    assert m.verify_consistency(0, 5, m.EMPTY_ROOT, r5, [])
    assert not m.verify_consistency(0, 5, r5, r5, [])
    assert not m.verify_consistency(0, 5, m.EMPTY_ROOT, r5, [r5])


@pytest.mark.parametrize(
    "args",
    [
        (None, 0, 1, [], b"\x00" * 32),
        (b"\x00" * 31, 0, 1, [], b"\x00" * 31),
        (b"\x00" * 32, True, 2, [b"\x00" * 32], b"\x00" * 32),
        (b"\x00" * 32, 0, 1 << 64, [], b"\x00" * 32),
        (b"\x00" * 32, -1, 1, [], b"\x00" * 32),
        (b"\x00" * 32, 0, 2, ["00" * 32], b"\x00" * 32),
        (b"\x00" * 32, 0, 2, None, b"\x00" * 32),
        (b"\x00" * 32, 0, 2, [b"\x00" * 32] * 200, b"\x00" * 32),
        ("00" * 32, 0, 1, [], "00" * 32),
    ],
)
def test_verify_inclusion_returns_false_on_garbage_instead_of_raising(args) -> None:
    assert m.verify_inclusion(*args) is False


@pytest.mark.parametrize(
    "args",
    [
        (1, 2, None, b"\x00" * 32, [b"\x00" * 32]),
        (1.0, 2, b"\x00" * 32, b"\x00" * 32, [b"\x00" * 32]),
        (1, 2, b"\x00" * 32, b"\x00" * 32, [b"\x00"]),
        (3, 2, b"\x00" * 32, b"\x00" * 32, [b"\x00" * 32]),
        (1, 2, b"\x00" * 32, b"\x00" * 32, "x" * 32),
    ],
)
def test_verify_consistency_returns_false_on_garbage_instead_of_raising(args) -> None:
    assert m.verify_consistency(*args) is False


def test_chain_next_links_each_leaf_to_the_chain_before_it():
    # given two leaves of a log
    first, second = m.hash_leaf(b"record 0"), m.hash_leaf(b"record 1")
    assert first == hashlib.sha256(b"\x00record 0").digest()
    # then the chain starts from 32 zero bytes and links each leaf to the one before
    link0 = m.chain_next(bytes(32), first)
    assert link0 == hashlib.sha256(bytes(32) + first).digest()
    assert m.chain_next(link0, second) == hashlib.sha256(link0 + second).digest()
    assert m.chain_next(link0, second) != m.chain_next(bytes(32), second)
