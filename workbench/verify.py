"""Check a trail export bundle offline: ``python -m workbench.verify BUNDLE.zip``.

Implements docs/bundle.md (format 1), DESIGN §6. Exit status: 0 the bundle
verifies; 1 it does not (one line names the first problem, with the ``seq``
or the file it concerns); 2 usage error, or the file is not a readable zip.

This module stands alone: the standard library and ``cryptography`` (for
Ed25519), nothing from Django or the rest of Workbench, so that a copy of
this one file is enough to check a bundle (``python verify.py BUNDLE.zip``).

Speed: ``events.jsonl`` streams from the zip and is never held whole. A
reader thread inflates it and digests it for the manifest (zlib and hashlib
release the GIL on large buffers). The hashed body is cut out of each line by
position, as the spec defines it, so no JSON is parsed per event: one
``rfind``, slices that validate the fixed tail of the line, one SHA-256.
Every line carries its own ``prev_hash``, so a range bundle's lines are
checked in blocks of about 4 MB, by one worker process per CPU when
events.jsonl is large (``--jobs``); only the seams between blocks, and the
Merkle subtrees that span them, are checked in order (see ``_check_range``).
"""

import argparse
import base64
import binascii
import collections
import hashlib
import json
import mmap
import multiprocessing
import os
import queue
import re
import struct
import sys
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # reported by main(), with what to install
    Ed25519PublicKey = None

FORMAT = "workbench-trail-bundle"
VERSION = 1
GENESIS = "0" * 64
REQUIRED = ("events.jsonl", "checkpoints.jsonl", "public_key.pem", "VERIFY.md")
KNOWN = frozenset((*REQUIRED, "proofs.jsonl"))

CHUNK = 1 << 22  # bytes read from the zip at a time
MAX_LINE = 16 << 20  # a longer line is refused rather than buffered
MAX_MANIFEST = 1 << 20
MAX_PEM = 64 << 10
MAX_PATH = 64  # an audit path has at most log2(tree size) elements
# events.jsonl from this size on is checked by worker processes (starting
# them costs about a tenth of a second; 32 MB is about 50,000 events).
PARALLEL_MIN_BYTES = 32 << 20

# Everything on an event line from its top-level "hash" on: RFC 8785 puts
# hash, prev_hash, seq and system last, in this order (docs/bundle.md).
# Anchored and matched to the end of the line, it also rules out a "hash"
# that belongs to an object nested in "data".
_TAIL = re.compile(
    rb',"hash":"([0-9a-f]{64})","prev_hash":"([0-9a-f]{64})","seq":(0|[1-9][0-9]{0,18}),'
    rb'"system":(?:null|"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*")\}\Z'
)
# The same, piece by piece, for the hot loop of a range bundle (slicing is
# several times cheaper than the regular expression there).
_HASH_AT = b',"hash":"'
_PREV_AT = b'","prev_hash":"'
_SYSTEM = re.compile(rb'(?:null|"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*")\}\Z')
# What the hashed body leaves out of a line: '"hash":"<64>","prev_hash":"<64>",'.
_CUT = len('"hash":"') + 64 + len('","prev_hash":"') + 64 + len('",')

try:  # CPython's own SHA-256: on 33- and 65-byte Merkle inputs it costs about
    # half of OpenSSL's per-call setup; the same function, and hashlib's if absent.
    from _sha2 import sha256 as _small_sha256  # Python 3.12+
except ImportError:
    try:
        from _sha256 import sha256 as _small_sha256
    except ImportError:
        _small_sha256 = hashlib.sha256
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")

# What zipfile raises on a damaged, truncated or hostile archive.
_ZIP_ERRORS = (
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    ValueError,
    OverflowError,
    NotImplementedError,
    RuntimeError,
)


class Failure(Exception):
    """The bundle does not verify (exit 1)."""


class Unreadable(Exception):
    """Not a readable zip, or a usage error (exit 2)."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    signature: bytes
    key_id: str
    tree_size: int | None
    tree_root: str
    tree_signature: bytes


@dataclass
class Report:
    kind: str
    count: int
    first_seq: int | None
    last_seq: int | None
    checkpoints: int
    trees: int
    proofs: int
    key_id: str


# --- Reading the zip -------------------------------------------------------------------------


class Member:
    """One file of the bundle, read in chunks while its SHA-256 and size are
    taken; ``finish()`` compares them with the manifest."""

    def __init__(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, expected: dict):
        self.zf, self.info, self.name = zf, info, info.filename
        self.expected = expected
        self.digest = hashlib.sha256()
        self.size = 0

    def _raw_chunks(self) -> Iterator[bytes]:
        try:
            handle = self.zf.open(self.info)
        except _ZIP_ERRORS as error:
            raise Unreadable(f"{self.name}: cannot read it from the zip ({error})") from None
        with handle:
            while True:
                try:
                    chunk = handle.read(CHUNK)
                except _ZIP_ERRORS as error:
                    raise Unreadable(f"{self.name}: the zip is damaged ({error})") from None
                if not chunk:
                    return
                self.digest.update(chunk)
                self.size += len(chunk)
                if self.size > self.expected["bytes"]:
                    raise Failure(
                        f"{self.name}: longer than the {self.expected['bytes']} bytes"
                        " manifest.json gives"
                    )
                yield chunk

    def chunks(self) -> Iterator[bytes]:
        """The chunks, inflated and digested ahead by a second thread."""
        ahead: queue.Queue = queue.Queue(maxsize=4)
        stop = threading.Event()

        def offer(item) -> bool:
            while not stop.is_set():
                try:
                    ahead.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False  # the reader gave up

        def produce() -> None:
            try:
                for chunk in self._raw_chunks():
                    if not offer(chunk):
                        return
                offer(None)
            except BaseException as error:  # handed over to the reading thread
                offer(error)

        thread = threading.Thread(target=produce, name=f"read {self.name}", daemon=True)
        thread.start()
        try:
            while True:
                item = ahead.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join()

    def read_all(self, limit: int) -> bytes:
        if self.info.file_size > limit:
            raise Failure(f"{self.name}: larger than {limit} bytes, not a bundle file")
        data = b"".join(self._raw_chunks())
        self.finish()
        return data

    def blocks(self) -> Iterator[bytes]:
        """Runs of whole lines, each with its ``\\n`` (one copy of the data)."""
        rest = b""
        for chunk in self.chunks():
            cut = chunk.rfind(b"\n") + 1
            if not cut:
                rest += chunk
            elif rest:
                yield b"".join((rest, memoryview(chunk)[:cut]))
                rest = chunk[cut:]
            else:
                yield chunk if cut == len(chunk) else chunk[:cut]
                rest = chunk[cut:]
            if len(rest) > MAX_LINE:
                raise Failure(f"{self.name}: a line longer than {MAX_LINE} bytes")
        if rest:
            raise Failure(f"{self.name}: the last line does not end with a newline")

    def line_batches(self) -> Iterator[list[bytes]]:
        """Lists of whole lines, without their ``\\n``."""
        for blob in self.blocks():
            lines = blob.split(b"\n")
            lines.pop()
            yield lines

    def finish(self) -> None:
        if self.size != self.expected["bytes"]:
            raise Failure(
                f"{self.name}: {self.size} bytes, manifest.json gives {self.expected['bytes']}"
            )
        if self.digest.hexdigest() != self.expected["sha256"]:
            raise Failure(f"{self.name}: its SHA-256 does not match manifest.json")


def _open_zip(path: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise Unreadable(f"{path}: not a zip file, or a truncated one") from None
    except _ZIP_ERRORS as error:
        raise Unreadable(f"{path}: cannot read it ({error})") from None


# --- Parsing ---------------------------------------------------------------------------------


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return result


def _json(text: bytes, where: str):
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise Failure(f"{where}: not valid JSON ({error})") from None


def _is_int(value) -> bool:
    return type(value) is int  # not bool


def _b64(value, where: str) -> bytes:
    if not isinstance(value, str):
        raise Failure(f"{where} is not base64 text")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Failure(f"{where} is not valid base64") from None
    if len(raw) != 64:
        raise Failure(f"{where} is not an Ed25519 signature (64 bytes)")
    return raw


def _manifest(data: bytes) -> dict:
    manifest = _json(data, "manifest.json")
    if not isinstance(manifest, dict):
        raise Failure("manifest.json: not a JSON object")
    if manifest.get("format") != FORMAT:
        raise Failure(f"manifest.json: format is not {FORMAT!r}")
    if not _is_int(manifest.get("version")) or manifest["version"] != VERSION:
        raise Failure(f"manifest.json: version {manifest.get('version')!r} is not {VERSION}")
    kind = manifest.get("kind")
    if kind not in ("range", "filtered"):
        raise Failure(f"manifest.json: kind {kind!r} is neither 'range' nor 'filtered'")
    count = manifest.get("count")
    if not _is_int(count) or count < 0:
        raise Failure("manifest.json: count is not a whole number")
    span = manifest.get("range")
    # An empty bundle has no range: {"first_seq": null, "last_seq": null}, or null.
    first = last = None
    if isinstance(span, dict):
        first, last = span.get("first_seq"), span.get("last_seq")
    elif span is not None:
        raise Failure("manifest.json: range is not an object")
    if count == 0:
        if first is not None or last is not None:
            raise Failure("manifest.json: count is 0 but range is not empty")
    elif not (_is_int(first) and _is_int(last) and 1 <= first <= last):
        raise Failure("manifest.json: range is not first_seq <= last_seq, both from 1")
    elif kind == "range" and count != last - first + 1:
        raise Failure(f"manifest.json: count {count} does not fill range {first}..{last}")
    elif kind == "filtered" and (count > last - first + 1 or (count == 1) != (first == last)):
        raise Failure(f"manifest.json: count {count} does not fit range {first}..{last}")
    if not isinstance(manifest.get("key_id"), str):
        raise Failure("manifest.json: key_id is not text")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise Failure("manifest.json: files is not an object")
    for name, entry in files.items():
        if name not in KNOWN:
            raise Failure(f"manifest.json: lists {name!r}, which bundle format 1 does not have")
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("sha256"), str)
            and _HEX64.match(entry["sha256"])
            and _is_int(entry.get("bytes"))
            and entry["bytes"] >= 0
        ):
            raise Failure(f"manifest.json: the entry for {name} is not {{sha256, bytes}}")
    for name in REQUIRED:
        if name not in files:
            raise Failure(f"manifest.json: does not list {name}")
    if kind == "range" and "proofs.jsonl" in files:
        raise Failure("manifest.json: lists proofs.jsonl in a range bundle")
    if kind == "filtered" and count and "proofs.jsonl" not in files:
        raise Failure("manifest.json: a filtered bundle without proofs.jsonl")
    manifest["range"] = {"first_seq": first, "last_seq": last}
    return manifest


def _checkpoint(line: bytes, number: int) -> Checkpoint:
    where = f"checkpoints.jsonl line {number}"
    cp = _json(line, where)
    if not isinstance(cp, dict):
        raise Failure(f"{where}: not a JSON object")
    seq = cp.get("seq")
    if not _is_int(seq) or seq < 1:
        raise Failure(f"{where}: seq is not a positive whole number")
    where = f"checkpoints.jsonl seq {seq}"
    for name in ("hash", "signature", "key_id", "tree_size", "tree_root", "tree_signature"):
        if name not in cp:
            raise Failure(f"{where}: has no {name}")
    digest, root, size = cp["hash"], cp["tree_root"], cp["tree_size"]
    if not isinstance(digest, str) or not _HEX64.match(digest):
        raise Failure(f"{where}: hash is not 64 lowercase hex digits")
    if not isinstance(cp["key_id"], str):
        raise Failure(f"{where}: key_id is not text")
    signature = _b64(cp["signature"], f"{where}: signature")
    if root in ("", None):
        # Signed before trees were added: no tree to check (docs/bundle.md).
        if cp["tree_signature"] not in ("", None) or not (size is None or _is_int(size)):
            raise Failure(f"{where}: a tree_signature or tree_size without a tree_root")
        return Checkpoint(seq, digest, signature, cp["key_id"], None, "", b"")
    if not isinstance(root, str) or not _HEX64.match(root):
        raise Failure(f"{where}: tree_root is not 64 lowercase hex digits")
    if not _is_int(size) or size != seq:
        raise Failure(f"{where}: tree_size {size!r} is not the checkpoint's seq")
    tree_signature = _b64(cp["tree_signature"], f"{where}: tree_signature")
    return Checkpoint(seq, digest, signature, cp["key_id"], size, root, tree_signature)


def _public_key(pem: bytes, where: str):
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as error:
        raise Failure(f"{where}: not a PEM public key ({error})") from None
    except Exception as error:  # cryptography's unsupported-algorithm and the like
        raise Failure(f"{where}: not a usable public key ({error})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise Failure(f"{where}: not an Ed25519 key")
    return key


def _raw(key) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key) -> str:
    """First 16 hex digits of SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(_raw(key)).hexdigest()[:16]


def _verify_signatures(checkpoints: list[Checkpoint], key, kid: str) -> None:
    for cp in checkpoints:
        where = f"checkpoints.jsonl seq {cp.seq}"
        if cp.key_id != kid:
            raise Failure(f"{where}: signed by key {cp.key_id!r}, the bundle's key is {kid}")
        try:
            key.verify(cp.signature, f"{cp.seq}:{cp.hash}".encode())
        except InvalidSignature:
            raise Failure(f"{where}: the signature does not verify with public_key.pem") from None
        if cp.tree_root:
            try:
                key.verify(cp.tree_signature, f"tree:{cp.tree_size}:{cp.tree_root}".encode())
            except InvalidSignature:
                raise Failure(
                    f"{where}: the tree signature does not verify with public_key.pem"
                ) from None


# --- Merkle trees (RFC 6962 / RFC 9162) ------------------------------------------------------


def _node(left: bytes, right: bytes) -> bytes:
    return _small_sha256(b"\x01" + left + right).digest()


def _root(frontier: list[bytes]) -> bytes:
    """MTH from the roots of the perfect subtrees covering the leaves, left to
    right: RFC 6962 splits at the largest power of two below the size, the
    first of them, so the root folds from the right."""
    root = frontier[-1]
    for left in reversed(frontier[:-1]):
        root = _node(left, root)
    return root


def path_verify(index: int, size: int, event_hash: bytes, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: whether ``path`` leads from leaf ``index`` to ``root``."""
    if index >= size:
        return False
    fn, sn = index, size - 1
    node = _small_sha256(b"\x00" + event_hash).digest()
    for sibling in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            node = _node(sibling, node)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            node = _node(node, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and node == root


# --- The events ------------------------------------------------------------------------------


def _bad_line(number: int, seq: int | None = None) -> Failure:
    hint = f" (seq {seq} expected)" if seq is not None else ""
    return Failure(
        f"events.jsonl line {number}{hint}: not an event line as docs/bundle.md lays it out"
        ' (…,"hash":…,"prev_hash":…,"seq":…,"system":…})'
    )


def _range_line_problem(line: bytes, number: int, expected: int) -> Failure:
    """Why a line failed the fast checks: a wrong seq, or a malformed line."""
    i = line.rfind(_HASH_AT)
    m = _TAIL.match(line, i) if i >= 0 else None
    if m is None:
        return _bad_line(number, expected)
    return Failure(
        f"events.jsonl line {number}: seq {m.group(3).decode()} where seq {expected} should be"
    )


# --- The events of a range bundle ------------------------------------------------------------
#
# Every line carries its own prev_hash, so the lines can be checked in blocks,
# each on its own (``_check_block``: format, seq, each hash, the links inside
# the block, the checkpoint hashes, the block's own Merkle subtrees), by
# worker processes when the bundle is large; ``_check_range`` then puts the
# blocks together in order: the seq and the link at the start of each block,
# the tree roots at the checkpoints. The first problem reported is the same
# either way: a block stops at its first problem, and what only
# ``_check_range`` can check of a block's first line is checked in the place
# it has in the line's own order of checks.


@dataclass
class Block:
    """What ``_check_block`` makes of a run of whole lines."""

    lines: int
    first_seq: int = 0  # the first line's seq, if it could be read
    first_prev: bytes = b""  # the first line's prev_hash (hex)
    last_hex: bytes = b""  # the last line's hash (hex)
    # Merkle: the roots of the perfect subtrees the block's leaves make up by
    # themselves, left to right (their sizes: ``_subtree_sizes``); and the
    # same up to each checkpoint that has a tree root.
    nodes: list[bytes] = field(default_factory=list)
    at_checkpoints: list[tuple[int, list[bytes]]] = field(default_factory=list)
    failure: str | None = None  # the block's first problem
    failed_at: int = -1  # on which line of the block
    before_link: bool = False  # on line 0, found before its link is checked


def _check_block(
    blob: bytes, first: int, last: int, stops: dict[int, tuple[bytes, bool]], trees: bool
) -> Block:
    """Whole lines of a range bundle from ``first`` to ``last`` (``blob``:
    each line ends with ``\\n``), from the seq the first of them gives.
    ``stops``: the hash (hex) of each checkpoint, and whether it has a tree
    root. Runs in a worker process: plain values in and out."""
    sha256, small, hexlify = hashlib.sha256, _small_sha256, binascii.hexlify
    lines = blob.split(b"\n")
    lines.pop()  # after the last newline
    block = Block(len(lines))
    nodes = block.nodes
    i = lines[0].rfind(_HASH_AT)
    m = _TAIL.match(lines[0], i) if i >= 0 else None
    if m is None:  # _check_range names the line
        block.failed_at, block.before_link = 0, True
        return block
    seq = expected = block.first_seq = int(m.group(3))
    tails: set[bytes] = set()  # the ',"system":…}' ends seen valid (few distinct)
    prev_hex = prev = b""

    def fail(failure: Failure, before_link: bool = False) -> Block:
        block.failure, block.failed_at = str(failure), expected - seq
        block.before_link = before_link
        return block

    for line in lines:
        i = line.rfind(_HASH_AT)
        mark = b'","seq":%d,"system":' % expected
        if i < 0 or line[i + 73 : i + 88] != _PREV_AT or not line.startswith(mark, i + 152):
            return fail(_range_line_problem(line, expected - first + 1, expected), True)
        tail = line[i + 152 + len(mark) :]
        if tail not in tails:
            if not _SYSTEM.match(tail):
                return fail(_bad_line(expected - first + 1, expected), True)
            if len(tails) < 4096:
                tails.add(tail)
        if expected > last:
            return fail(Failure(f"events.jsonl seq {expected}: beyond range.last_seq {last}"), True)
        prev_hash = line[i + 88 : i + 152]
        if expected == seq:
            # Its link to the block before is _check_range's; the very first
            # line of a bundle that starts after seq 1 is linked to nothing.
            block.first_prev = prev_hash
            try:
                prev = binascii.unhexlify(prev_hash)
            except (binascii.Error, ValueError):
                return fail(_bad_line(1, expected))
            if hexlify(prev) != prev_hash:
                return fail(_bad_line(1, expected))
        elif prev_hash != prev_hex:
            return fail(
                Failure(
                    f"events.jsonl seq {expected}: prev_hash is not the hash of seq {expected - 1}"
                )
            )
        # The hashed body: the line without '"hash":"…","prev_hash":"…",'.
        digest = sha256(prev + line[: i + 1] + line[i + 1 + _CUT :]).digest()
        prev_hex = hexlify(digest)
        digest_hex = line[i + 9 : i + 73]
        if prev_hex != digest_hex:
            return fail(Failure(f"events.jsonl seq {expected}: hash does not match the event"))
        prev = digest
        if trees:
            # A right child joins its left sibling when the sibling is in the
            # block (_check_range joins the subtrees of different blocks).
            node, k, size = small(b"\x00" + digest).digest(), expected, 2
            while not k & 1 and expected - seq + 1 >= size:
                node = small(b"\x01" + nodes.pop() + node).digest()
                k >>= 1
                size <<= 1
            nodes.append(node)
        stop = stops.get(expected)
        if stop is not None:
            if stop[0] != digest_hex:
                return fail(
                    Failure(
                        f"checkpoints.jsonl seq {expected}: hash is not that of event {expected}"
                    )
                )
            if trees and stop[1]:
                block.at_checkpoints.append((expected, list(nodes)))
        expected += 1
    block.last_hex = prev_hex
    return block


def _subtree_sizes(start: int, end: int) -> list[int]:
    """The sizes, left to right, of the largest perfect subtrees that leaves
    ``start`` to ``end`` (counted from 1) make up by themselves."""
    sizes, done = [], start - 1
    while done < end:
        size = done & -done or 1 << ((end - done).bit_length() - 1)
        while done + size > end:
            size >>= 1
        sizes.append(size)
        done += size
    return sizes


def _join(frontier: list[tuple[int, bytes]], start: int, end: int, nodes: list[bytes]) -> None:
    """Add the subtrees of leaves ``start`` to ``end`` to the frontier of the
    tree of leaves 1 to ``start - 1`` (its perfect subtrees, as (size,
    root)): RFC 6962 joins two neighbours of the same size."""
    for size, node in zip(_subtree_sizes(start, end), nodes, strict=True):
        while frontier and frontier[-1][0] == size:
            node = _node(frontier.pop()[1], node)
            size <<= 1
        frontier.append((size, node))


def _blocks(events: Member, task: tuple, jobs: int) -> Iterator[Block]:
    """The blocks of events.jsonl checked (``task``: the other arguments of
    ``_check_block``), in order: by ``jobs`` worker processes, a few blocks
    ahead of the reader, or here."""
    pool = _Pool.start(jobs, task) if jobs > 1 else None
    if pool is None:
        for blob in events.blocks():
            yield _check_block(blob, *task)
        return
    ahead: collections.deque = collections.deque()
    with pool:
        try:
            for blob in events.blocks():
                ahead.append(pool.submit(blob))
                if len(ahead) > pool.ahead:
                    yield pool.result(ahead.popleft())
            while ahead:
                yield pool.result(ahead.popleft())
        finally:
            for future, _ in ahead:
                future.cancel()


# In a worker process: the arguments of _check_block but the blob, and the
# memory that a forking parent hands blocks over in (pickling them through a
# pipe instead costs more than a third of checking them).
_TASK: tuple = ()
_RING: mmap.mmap | None = None


def _worker_start(task: tuple) -> None:
    global _TASK
    _TASK = task


def _check_sent(blob: bytes) -> Block:
    return _check_block(blob, *_TASK)


def _check_shared(offset: int, length: int) -> Block:
    return _check_block(_RING[offset : offset + length], *_TASK)


class _Pool:
    """Worker processes for ``_check_block``, given at most ``ahead`` blocks
    at a time; in shared memory slots of ``slot`` bytes when forked."""

    def __init__(self, executor: ProcessPoolExecutor, jobs: int, slot: int):
        self.executor, self.ahead, self.slot = executor, 2 * jobs, slot
        self.free = collections.deque(range(self.ahead + 1) if slot else ())

    @classmethod
    def start(cls, jobs: int, task: tuple) -> "_Pool | None":
        """Forked while this process has one thread (quick, and blocks go
        through shared memory), spawned otherwise; started before the reader
        thread. None if they cannot start (a spawned worker must be able to
        import ``__main__``): the bundle is then checked here."""
        global _RING
        fork = threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()
        slot = 2 * CHUNK if fork else 0
        if fork:
            _RING = mmap.mmap(-1, slot * (2 * jobs + 1))
        executor = ProcessPoolExecutor(
            jobs,
            mp_context=multiprocessing.get_context("fork" if fork else "spawn"),
            initializer=_worker_start,
            initargs=(task,),
        )
        try:
            executor.submit(int).result()  # up and running
        except BrokenProcessPool:
            executor.shutdown(cancel_futures=True)
            _ring_close()
            return None
        return cls(executor, jobs, slot)

    def submit(self, blob: bytes) -> tuple:
        if len(blob) > self.slot or not self.free:
            return self.executor.submit(_check_sent, blob), None
        index = self.free.popleft()
        offset = index * self.slot
        _RING[offset : offset + len(blob)] = blob
        return self.executor.submit(_check_shared, offset, len(blob)), index

    def result(self, submitted: tuple) -> Block:
        future, index = submitted
        block = future.result()
        if index is not None:
            self.free.append(index)
        return block

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.executor.shutdown(cancel_futures=True)
        _ring_close()


def _ring_close() -> None:
    global _RING
    if _RING is not None:
        _RING.close()
        _RING = None


def _check_range(
    events: Member, first: int, last: int, checkpoints: list[Checkpoint], jobs: int = 1
) -> tuple[int, int]:
    """Checks 1-6 of a range bundle, streaming. Returns (events, tree roots recomputed)."""
    inside = [cp for cp in checkpoints if first <= cp.seq <= last]
    stops = {cp.seq: (cp.hash.encode(), bool(cp.tree_root)) for cp in inside}
    roots_at = {cp.seq: cp.tree_root for cp in inside if cp.tree_root}
    # The tree over events 1..seq can be rebuilt only from the first event on.
    trees = first == 1 and bool(roots_at)
    frontier: list[tuple[int, bytes]] = []
    roots = 0
    expected = first
    prev_hex = GENESIS.encode() if first == 1 else None
    for block in _blocks(events, (first, last, stops, trees), jobs):
        # The block's first line: its seq, then (after the checks of its
        # format and range) its link to the block before.
        if block.first_seq == 0:
            raise _bad_line(expected - first + 1, expected)
        if block.first_seq != expected:
            raise Failure(
                f"events.jsonl line {expected - first + 1}: seq {block.first_seq}"
                f" where seq {expected} should be"
            )
        if block.failure and block.failed_at == 0 and block.before_link:
            raise Failure(block.failure)
        if prev_hex is not None and block.first_prev != prev_hex:
            if expected == 1:
                raise Failure("events.jsonl seq 1: prev_hash is not 64 zeros")
            raise Failure(
                f"events.jsonl seq {expected}: prev_hash is not the hash of seq {expected - 1}"
            )
        for seq, nodes in block.at_checkpoints:
            tree = list(frontier)
            _join(tree, expected, seq, nodes)
            if _root([node for _, node in tree]).hex() != roots_at[seq]:
                raise Failure(
                    f"checkpoints.jsonl seq {seq}: tree_root does not match"
                    f" the tree of the event hashes 1..{seq}"
                )
            roots += 1
        if block.failure:
            raise Failure(block.failure)
        if trees:
            _join(frontier, expected, expected + block.lines - 1, block.nodes)
        prev_hex = block.last_hex
        expected += block.lines
    events.finish()
    if expected <= last:
        raise Failure(f"events.jsonl: ends at seq {expected - 1}, range.last_seq is {last}")
    if not any(cp.seq == last for cp in checkpoints):
        raise Failure(f"checkpoints.jsonl: no checkpoint at seq {last}, the end of the range")
    return expected - first, roots


def _proof_lines(proofs: Member) -> Iterator[bytes]:
    for lines in proofs.line_batches():
        yield from lines


def _check_filtered(
    events: Member,
    proofs: Member | None,
    first: int | None,
    last: int | None,
    checkpoints: list[Checkpoint],
) -> int:
    """Checks 1-4 of a filtered bundle (5, the signatures, is done before)."""
    sha256, unhexlify, hexlify = hashlib.sha256, binascii.unhexlify, binascii.hexlify
    by_seq = {cp.seq: cp for cp in checkpoints}
    proof_lines = _proof_lines(proofs) if proofs else iter(())
    count, prev_seq, prev_hex = 0, None, None
    for lines in events.line_batches():
        for line in lines:
            count += 1
            i = line.rfind(b',"hash":"')
            m = _TAIL.match(line, i) if i > 0 else None
            if m is None:
                raise _bad_line(count)
            digest_hex, prev_hash, seq_text = m.group(1, 2, 3)
            seq = int(seq_text)
            where = f"events.jsonl seq {seq}"
            if prev_seq is None:
                if seq != first:
                    raise Failure(f"{where}: the first event, range.first_seq is {first}")
            elif seq <= prev_seq:
                raise Failure(f"{where}: after seq {prev_seq} (seq must increase)")
            if seq == 1 and prev_hash != GENESIS.encode():
                raise Failure(f"{where}: prev_hash is not 64 zeros")
            if prev_seq is not None and seq == prev_seq + 1 and prev_hash != prev_hex:
                raise Failure(f"{where}: prev_hash is not the hash of seq {prev_seq}")
            digest = sha256(unhexlify(prev_hash) + line[: i + 1] + line[i + 1 + _CUT :]).digest()
            prev_hex = hexlify(digest)
            if prev_hex != digest_hex:
                raise Failure(f"{where}: hash does not match the event")
            cp = by_seq.get(seq)
            if cp is not None and cp.hash != digest_hex.decode():
                raise Failure(f"checkpoints.jsonl seq {seq}: hash is not that of event {seq}")
            _check_proof(next(proof_lines, None), count, seq, digest, by_seq)
            prev_seq = seq
    events.finish()
    if next(proof_lines, None) is not None:
        raise Failure(f"proofs.jsonl line {count + 1}: a proof without an event")
    if proofs:
        proofs.finish()
    if prev_seq != last:
        raise Failure(f"events.jsonl: ends at seq {prev_seq}, range.last_seq is {last}")
    return count


def _check_proof(
    line: bytes | None, number: int, seq: int, digest: bytes, by_seq: dict[int, Checkpoint]
) -> None:
    where = f"proofs.jsonl line {number}"
    if line is None:
        raise Failure(f"{where}: missing, event seq {seq} has no proof")
    proof = _json(line, where)
    if not isinstance(proof, dict):
        raise Failure(f"{where}: not a JSON object")
    if proof.get("seq") != seq or not _is_int(proof.get("seq")):
        raise Failure(f"{where}: proves seq {proof.get('seq')!r}, the event is seq {seq}")
    where = f"proofs.jsonl seq {seq}"
    size, path = proof.get("tree_size"), proof.get("path")
    if not _is_int(size):
        raise Failure(f"{where}: tree_size is not a whole number")
    cp = by_seq.get(size)
    if cp is None:
        raise Failure(f"{where}: no checkpoint in checkpoints.jsonl has tree_size {size}")
    if not cp.tree_root:
        raise Failure(f"{where}: checkpoint {size} has no tree_root to prove against")
    if size < seq:
        raise Failure(f"{where}: tree_size {size} is before the event")
    if not isinstance(path, list) or len(path) > MAX_PATH:
        raise Failure(f"{where}: path is not a list of hashes")
    nodes = []
    for element in path:
        if not isinstance(element, str) or not _HEX64.match(element):
            raise Failure(f"{where}: a path element is not 64 lowercase hex digits")
        nodes.append(bytes.fromhex(element))
    if not path_verify(seq - 1, size, digest, nodes, bytes.fromhex(cp.tree_root)):
        raise Failure(
            f"{where}: the audit path does not lead to the tree_root of checkpoint {size}"
        )


# --- The bundle ------------------------------------------------------------------------------


def default_jobs(events_bytes: int) -> int:
    """One worker process per CPU this process may use, for a large bundle."""
    if events_bytes < PARALLEL_MIN_BYTES:
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def verify_bundle(path: str, expected_key=None, jobs: int | None = None) -> Report:
    """Every check of docs/bundle.md; raises Failure or Unreadable at the first
    problem. ``jobs``: worker processes for the events of a range bundle
    (1: none; None: ``default_jobs``)."""
    with _open_zip(path) as zf:
        try:
            infos = zf.infolist()
        except _ZIP_ERRORS as error:
            raise Unreadable(f"{path}: cannot read the zip's directory ({error})") from None
        by_name: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.filename in by_name:
                raise Failure(f"{info.filename}: in the zip twice")
            by_name[info.filename] = info
        if "manifest.json" not in by_name:
            raise Failure("manifest.json: not in the zip")
        manifest_info = by_name.pop("manifest.json")
        limit = {"sha256": "", "bytes": MAX_MANIFEST}
        manifest_member = Member(zf, manifest_info, limit)
        if manifest_info.file_size > MAX_MANIFEST:
            raise Failure(f"manifest.json: larger than {MAX_MANIFEST} bytes")
        manifest = _manifest(b"".join(manifest_member._raw_chunks()))
        files = manifest["files"]
        for name in sorted(by_name):
            if name not in files:
                raise Failure(f"{name}: in the zip but not listed in manifest.json")
        for name in files:
            if name not in by_name:
                raise Failure(f"{name}: listed in manifest.json but not in the zip")
            if by_name[name].file_size != files[name]["bytes"]:
                raise Failure(
                    f"{name}: {by_name[name].file_size} bytes, manifest.json gives"
                    f" {files[name]['bytes']}"
                )
        member = {name: Member(zf, by_name[name], files[name]) for name in files}

        key = _public_key(member["public_key.pem"].read_all(MAX_PEM), "public_key.pem")
        kid = key_id(key)
        if manifest["key_id"] != kid:
            raise Failure(f"manifest.json: key_id {manifest['key_id']!r}, public_key.pem is {kid}")
        if expected_key is not None and _raw(expected_key) != _raw(key):
            raise Failure(
                f"public_key.pem: key {kid} is not the expected key {key_id(expected_key)}"
                " (--public-key)"
            )
        for _ in member["VERIFY.md"]._raw_chunks():
            pass
        member["VERIFY.md"].finish()

        checkpoints, number, previous = [], 0, 0
        for lines in member["checkpoints.jsonl"].line_batches():
            for line in lines:
                number += 1
                cp = _checkpoint(line, number)
                if cp.seq <= previous:
                    raise Failure(f"checkpoints.jsonl seq {cp.seq}: after seq {previous}")
                checkpoints.append(cp)
                previous = cp.seq
        member["checkpoints.jsonl"].finish()
        _verify_signatures(checkpoints, key, kid)

        first, last = manifest["range"]["first_seq"], manifest["range"]["last_seq"]
        kind, count = manifest["kind"], manifest["count"]
        roots = proofs = 0
        if kind == "range" and count:
            if jobs is None:
                jobs = default_jobs(files["events.jsonl"]["bytes"])
            seen, roots = _check_range(member["events.jsonl"], first, last, checkpoints, jobs)
        else:
            seen = _check_filtered(
                member["events.jsonl"], member.get("proofs.jsonl"), first, last, checkpoints
            )
            proofs = seen
        if seen != count:
            raise Failure(f"events.jsonl: {seen} events, manifest.json count is {count}")
        return Report(kind, count, first, last, len(checkpoints), roots, proofs, kid)


# --- Command line ----------------------------------------------------------------------------


def _load_expected_key(path: str):
    try:
        with open(path, "rb") as handle:
            pem = handle.read(MAX_PEM)
    except OSError as error:
        raise Unreadable(f"--public-key {path}: cannot read it ({error.strerror})") from None
    try:
        return _public_key(pem, f"--public-key {path}")
    except Failure as error:
        raise Unreadable(str(error)) from None


def _summary(report: Report, seconds: float, pinned: bool) -> str:
    span = f"seq {report.first_seq:,} to {report.last_seq:,}" if report.count else "no events"
    checks = f"{report.checkpoints:,} checkpoint(s) checked, both signatures"
    if report.kind == "range" and report.count:
        checks += f"; {report.trees:,} tree root(s) recomputed"
        what = "every hash recomputes and links"
    else:
        checks += f"; {report.proofs:,} Merkle proof(s) verified"
        what = "every hash recomputes"
    key = f"key id {report.key_id}"
    key += (
        " (the key given with --public-key)"
        if pinned
        else " (compare it with GET /api/v1/trail/public-key, or pass --public-key)"
    )
    rate = report.count / seconds if seconds > 0 else 0.0
    return "\n".join(
        [
            f"OK: {report.kind} bundle, {report.count:,} event(s), {span}",
            f"  {what}; {checks}",
            f"  {key}",
            f"  {seconds:.2f} s, {rate:,.0f} events/s",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.verify",
        description="Check a Workbench trail export bundle offline (docs/bundle.md).",
        epilog="Exit status: 0 verified, 1 does not verify, 2 usage error or unreadable zip.",
    )
    parser.add_argument("bundle", help="the bundle, a .zip file")
    parser.add_argument(
        "--public-key",
        metavar="PEM",
        help="the key the checkpoints must be signed with (from /api/v1/trail/public-key)",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        metavar="N",
        help="worker processes for a large bundle (default: one per CPU; 1: none)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help, or a usage error already printed
        return exit.code if isinstance(exit.code, int) else 2
    if Ed25519PublicKey is None:
        print(
            "error: this verifier needs the 'cryptography' package for Ed25519"
            " (pip install cryptography)",
            file=sys.stderr,
        )
        return 2
    started = time.perf_counter()
    try:
        expected = _load_expected_key(args.public_key) if args.public_key else None
        if os.path.isdir(args.bundle):
            raise Unreadable(f"{args.bundle}: a directory, not a zip file")
        if args.jobs is not None and args.jobs < 1:
            raise Unreadable("--jobs: at least 1")
        report = verify_bundle(args.bundle, expected, args.jobs)
    except Failure as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    except Unreadable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # never a traceback, and never a pass
        print(
            f"FAILED: could not check the bundle ({type(error).__name__}: {error})", file=sys.stderr
        )
        return 1
    if not args.quiet:
        try:
            print(_summary(report, time.perf_counter() - started, expected is not None))
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader left (``| head``): the verdict is the exit status.
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the interpreter's exit flush
    return 0


if __name__ == "__main__":
    sys.exit(main())
