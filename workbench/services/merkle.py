"""RFC 6962 Merkle trees over the trail's event hashes (docs/bundle.md).

The hash chain proves a whole run of events; a Merkle tree over the same
events proves one event on its own, with about log2(n) hashes, against a
signed root. Checkpoints sign both. Leaves are the 32 bytes of each event's
hash: ``leaf = SHA-256(0x00 || hash)``, ``node = SHA-256(0x01 || left || right)``.
"""

import hashlib
from collections.abc import Iterable

EMPTY_ROOT = hashlib.sha256(b"").digest()

# A frontier: the roots of the perfect subtrees that cover the leaves so
# far, left to right, as (size, root); sizes are decreasing powers of two
# (the binary digits of the leaf count). Enough to extend the tree and to
# compute its root without the leaves.
Frontier = list[tuple[int, bytes]]


try:  # CPython's own SHA-256: on 33- and 65-byte inputs about half the cost
    # of OpenSSL's per-call setup (the same function).
    from _sha256 import sha256 as _small_sha256
except ImportError:  # pragma: no cover - other Pythons
    _small_sha256 = hashlib.sha256


def leaf_hash(event_hash: bytes) -> bytes:
    return _small_sha256(b"\x00" + event_hash).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _small_sha256(b"\x01" + left + right).digest()


def frontier_extend(frontier: Frontier, event_hashes: Iterable[bytes]) -> Frontier:
    """The frontier after appending the leaves of ``event_hashes``."""
    return frontier_extend_leaves(frontier, map(leaf_hash, event_hashes))


def frontier_extend_leaves(frontier: Frontier, leaves: Iterable[bytes]) -> Frontier:
    """The frontier after appending ``leaves`` (already ``leaf_hash``-ed)."""
    frontier = list(frontier)
    small = _small_sha256
    for root in leaves:
        size = 1
        while frontier and frontier[-1][0] == size:
            root = small(b"\x01" + frontier.pop()[1] + root).digest()
            size *= 2
        frontier.append((size, root))
    return frontier


def frontier_root(frontier: Frontier) -> bytes:
    """The tree hash: RFC 6962 splits at the largest power of two below the
    size, which is the frontier's first subtree; so the root folds from the
    right."""
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1][1]
    for _, left in reversed(frontier[:-1]):
        root = node_hash(left, root)
    return root


def frontier_dump(frontier: Frontier) -> list[list]:
    return [[size, root.hex()] for size, root in frontier]


def frontier_load(data: list) -> Frontier:
    return [(int(size), bytes.fromhex(root)) for size, root in data]


class MerkleTree:
    """The whole tree of ``size`` leaves, level by level, to give audit paths.

    Level ``j`` holds the roots of the complete, aligned subtrees of 2**j
    leaves, packed 32 bytes each: about 64 bytes per leaf in all (64 MB for
    a million events). Any subtree the RFC's recursion asks for is either one
    of these or the ragged right edge, which the frontier of that range gives.
    """

    def __init__(self, event_hashes: Iterable[bytes]):
        level = bytearray()
        for event_hash in event_hashes:
            level += leaf_hash(event_hash)
        self.size = len(level) // 32
        self.levels = [bytes(level)]
        while len(self.levels[-1]) >= 64:
            below, above = self.levels[-1], bytearray()
            for offset in range(0, len(below) - 63, 64):
                above += node_hash(below[offset : offset + 32], below[offset + 32 : offset + 64])
            self.levels.append(bytes(above))

    def _perfect(self, start: int, size: int) -> bytes:
        level = size.bit_length() - 1
        index = start >> level
        return self.levels[level][index * 32 : index * 32 + 32]

    def range_root(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end), where ``start`` is aligned to the
        largest power of two that fits (as in the RFC's recursion)."""
        frontier = []
        while start < end:
            size = 1 << ((end - start).bit_length() - 1)
            while start % size:
                size //= 2
            frontier.append((size, self._perfect(start, size)))
            start += size
        return frontier_root(frontier)

    def root(self) -> bytes:
        return self.range_root(0, self.size)

    def path(self, index: int) -> list[bytes]:
        """RFC 9162 §2.1.3.1 PATH(index, D[0:size]), leaf first."""
        if not 0 <= index < self.size:
            raise IndexError(index)
        path = []
        start, end = 0, self.size
        while end - start > 1:
            split = 1 << ((end - start - 1).bit_length() - 1)
            if index < start + split:
                path.append(self.range_root(start + split, end))
                end = start + split
            else:
                path.append(self.range_root(start, start + split))
                start += split
        path.reverse()
        return path


def path_verify(index: int, size: int, event_hash: bytes, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: whether ``path`` leads from the leaf to ``root``."""
    if index >= size:
        return False
    fn, sn, node = index, size - 1, leaf_hash(event_hash)
    for sibling in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and node == root
