"""The offline bundle verifier (``python -m workbench.verify``, docs/bundle.md).

Bundles are made here by a small builder that follows docs/bundle.md on its
own (RFC 8785 via ``rfc8785``, recursive RFC 6962 trees and audit paths), not
with the verifier's code, so that each side checks the other.
"""

import base64
import functools
import hashlib
import json
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from workbench import verify

ROOT = Path(__file__).resolve().parents[2]
VERIFY_MD = ROOT / "workbench" / "templates_bundle" / "VERIFY.md"
GENESIS = "0" * 64

# --- A builder that follows docs/bundle.md -------------------------------------------------


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1, recursively, over event hashes."""
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def audit_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n])."""
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return audit_path(m, leaves[:k]) + [mth(leaves[k:])]
    return audit_path(m - k, leaves[k:]) + [mth(leaves[:k])]


def pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(key: Ed25519PrivateKey, text: str) -> str:
    return base64.b64encode(key.sign(text.encode("ascii"))).decode()


def checkpoint(key: Ed25519PrivateKey, seq: int, digest: str, root: str | None) -> dict:
    return {
        "seq": seq,
        "hash": digest,
        "signature": sign(key, f"{seq}:{digest}"),
        "key_id": key_id(key),
        "tree_size": seq if root else None,
        "tree_root": root or "",
        "tree_signature": sign(key, f"tree:{seq}:{root}") if root else "",
    }


ACTIONS = ["case.received", "case.assigned", "case.decided", "appeal.filed", "policy.changed"]


def event_body(seq: int) -> dict:
    """A realistic event, varied: unicode, nulls, nested data, and now and
    then a ``data`` that itself has hash/prev_hash/seq/system members."""
    data: dict = {
        "confidence": round(0.5 + (seq % 50) / 100, 2),
        "reason_code": f"CO-{seq % 97}",
        "text_sha256": hashlib.sha256(f"free text {seq}".encode()).hexdigest(),
        "note": 'é ✓ \u2028 "quoted" \\ back',
    }
    if seq % 7 == 3:
        data["linked"] = {
            "hash": hashlib.sha256(b"x%d" % seq).hexdigest(),
            "prev_hash": GENESIS,
            "seq": seq + 1,
            "system": "other-ai",
        }
    return {
        "action": ACTIONS[seq % len(ACTIONS)],
        "actor": {"id": f"rev.user{seq % 5}", "type": "user" if seq % 3 else "system"},
        "at": f"2026-11-{1 + seq % 28:02d}T10:15:{seq % 60:02d}.{seq:06d}Z",
        "case": f"WB-{seq % 11:04d}-M9TX" if seq % 13 else None,
        "data": data,
        "seq": seq,
        "system": "claims-ai" if seq % 2 else ("support-ai" if seq % 4 else None),
    }


@dataclass
class Trail:
    key: Ed25519PrivateKey
    lines: list[bytes]  # index seq - 1
    hashes: list[str]
    checkpoints: dict[int, dict] = field(default_factory=dict)

    def leaves(self, size: int) -> list[bytes]:
        return [bytes.fromhex(h) for h in self.hashes[:size]]


def make_trail(count: int = 60, every: int = 10, key: Ed25519PrivateKey | None = None) -> Trail:
    key = key or Ed25519PrivateKey.generate()
    lines, hashes, prev = [], [], GENESIS
    for seq in range(1, count + 1):
        event = event_body(seq)
        digest = hashlib.sha256(bytes.fromhex(prev) + rfc8785.dumps(event)).hexdigest()
        lines.append(rfc8785.dumps({**event, "hash": digest, "prev_hash": prev}) + b"\n")
        hashes.append(digest)
        prev = digest
    trail = Trail(key, lines, hashes)
    for seq in [*range(every, count + 1, every), count]:
        root = mth(trail.leaves(seq)).hex()
        trail.checkpoints[seq] = checkpoint(key, seq, hashes[seq - 1], root)
    return trail


def jsonl(items) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


def range_files(trail: Trail, first: int = 1, last: int | None = None) -> dict:
    last = last or len(trail.lines)
    cps = [cp for seq, cp in sorted(trail.checkpoints.items()) if first <= seq <= last]
    return {
        "events.jsonl": b"".join(trail.lines[first - 1 : last]),
        "checkpoints.jsonl": jsonl(cps),
        "public_key.pem": pem(trail.key),
        "VERIFY.md": VERIFY_MD.read_bytes(),
    }


def filtered_files(trail: Trail, seqs: list[int]) -> dict:
    head = max(trail.checkpoints)
    leaves = trail.leaves(head)
    proofs = [
        {"seq": seq, "tree_size": head, "path": [n.hex() for n in audit_path(seq - 1, leaves)]}
        for seq in seqs
    ]
    files = {
        "events.jsonl": b"".join(trail.lines[seq - 1] for seq in seqs),
        "checkpoints.jsonl": jsonl([trail.checkpoints[head]]),
        "public_key.pem": pem(trail.key),
        "VERIFY.md": VERIFY_MD.read_bytes(),
    }
    if seqs:
        files["proofs.jsonl"] = jsonl(proofs)
    return files


def manifest_for(files: dict, kind: str, key: Ed25519PrivateKey) -> dict:
    seqs = [json.loads(line)["seq"] for line in files["events.jsonl"].splitlines()]
    return {
        "format": "workbench-trail-bundle",
        "version": 1,
        "kind": kind,
        "created_at": "2026-11-22T10:15:03.123456Z",
        "filters": {"from": None, "to": None, "system": None, "case": None},
        "range": {"first_seq": seqs[0] if seqs else None, "last_seq": seqs[-1] if seqs else None},
        "count": len(seqs),
        "key_id": key_id(key),
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in files.items()
        },
    }


def write_zip(path: Path, files: dict, manifest: dict | bytes) -> Path:
    if isinstance(manifest, dict):
        manifest = json.dumps(manifest, indent=2).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("manifest.json", manifest)
    return path


def redigest(manifest: dict, files: dict) -> dict:
    manifest["files"] = {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        for name, data in files.items()
    }
    return manifest


def write_bundle(path: Path, files: dict, kind: str, key: Ed25519PrivateKey, edit=None) -> Path:
    """The zip, with a manifest that matches the files as given (as a forger
    would make it), so the checks behind the digests are reached."""
    manifest = manifest_for(files, kind, key)
    if edit:
        edit(manifest)
    return write_zip(path, files, manifest)


def write_forged(path: Path, original: dict, files: dict, kind: str, key) -> Path:
    """The original manifest (count, range) with digests that match the
    changed files: what a forger who fixes up the digests would ship."""
    return write_zip(path, files, redigest(manifest_for(original, kind, key), files))


# --- Running it ------------------------------------------------------------------------------


def run(capsys, *argv) -> tuple[int, str, str]:
    code = verify.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def check_fails(capsys, bundle: Path, *pattern: str, args=()) -> str:
    code, out, err = run(capsys, bundle, *args)
    assert code == 1, (out, err)
    assert out == ""
    assert err.startswith("FAILED: ") and err.count("\n") == 1, err
    assert "could not check" not in err, err  # a handled failure, not a stray exception
    for part in pattern:
        assert re.search(part, err), (part, err)
    return err


@pytest.fixture(scope="module")
def trail() -> Trail:
    return make_trail(60, every=10)


@pytest.fixture
def good_range(tmp_path, trail) -> Path:
    return write_bundle(tmp_path / "range.zip", range_files(trail), "range", trail.key)


FILTERED = [1, 2, 3, 9, 17, 18, 30, 41, 59, 60]


@pytest.fixture
def good_filtered(tmp_path, trail) -> Path:
    files = filtered_files(trail, FILTERED)
    return write_bundle(tmp_path / "filtered.zip", files, "filtered", trail.key)


def test_a_whole_range_bundle_verifies(capsys, good_range, trail):
    code, out, err = run(capsys, good_range)
    assert (code, err) == (0, "")
    assert "OK: range bundle, 60 event(s), seq 1 to 60" in out
    assert "6 checkpoint(s) checked" in out
    assert "6 tree root(s) recomputed" in out
    assert f"key id {key_id(trail.key)}" in out
    assert "events/s" in out


def test_a_range_that_starts_later_verifies(capsys, tmp_path, trail):
    bundle = write_bundle(tmp_path / "b.zip", range_files(trail, 24, 50), "range", trail.key)
    code, out, _ = run(capsys, bundle)
    assert code == 0
    assert "seq 24 to 50" in out
    assert "3 checkpoint(s)" in out


def test_a_filtered_bundle_verifies(capsys, good_filtered):
    code, out, err = run(capsys, good_filtered)
    assert (code, err) == (0, "")
    assert "OK: filtered bundle, 10 event(s), seq 1 to 60" in out
    assert "10 Merkle proof(s) verified" in out


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 16, 17])
def test_filtered_proofs_in_trees_of_every_shape(capsys, tmp_path, size):
    trail = make_trail(size, every=size)
    seqs = sorted({1, size, (size + 1) // 2})
    bundle = write_bundle(tmp_path / "b.zip", filtered_files(trail, seqs), "filtered", trail.key)
    assert run(capsys, bundle)[0] == 0


def test_an_empty_filtered_bundle_verifies(capsys, tmp_path, trail):
    bundle = write_bundle(tmp_path / "b.zip", filtered_files(trail, []), "filtered", trail.key)
    code, out, _ = run(capsys, bundle)
    assert code == 0
    assert "0 event(s), no events" in out


def test_quiet_prints_nothing(capsys, good_range):
    assert run(capsys, good_range, "--quiet") == (0, "", "")


def test_a_checkpoint_before_trees_is_checked_without_its_tree(capsys, tmp_path):
    trail = make_trail(30, every=10)
    trail.checkpoints[10] = checkpoint(trail.key, 10, trail.hashes[9], None)
    bundle = write_bundle(tmp_path / "b.zip", range_files(trail), "range", trail.key)
    code, out, _ = run(capsys, bundle)
    assert code == 0
    assert "3 checkpoint(s) checked" in out and "2 tree root(s)" in out


# --- Tampering with the events -------------------------------------------------------------


def tampered(tmp_path, trail, kind, change, seqs=FILTERED) -> Path:
    original = range_files(trail) if kind == "range" else filtered_files(trail, seqs)
    lines = original["events.jsonl"].splitlines(keepends=True)
    files = {**original, "events.jsonl": b"".join(change(lines))}
    return write_forged(tmp_path / "t.zip", original, files, kind, trail.key)


def replace_in(line: bytes, old: bytes, new: bytes) -> bytes:
    assert old in line
    return line.replace(old, new, 1)


def at(lines, index, new):
    return [*lines[:index], new, *lines[index + 1 :]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # In data: the content no longer hashes to its hash.
        (lambda line: replace_in(line, b'"CO-', b'"CX-'), r"seq 17: hash does not match"),
        (lambda line: replace_in(line, b'"rev.user', b'"rev.usex'), r"seq 17: hash does not"),
        (lambda line: replace_in(line, b"2026-11", b"2026-12"), r"seq 17: hash does not match"),
        (lambda line: replace_in(line, b'"claims-ai"}', b'"claims-ah"}'), r"seq 17: hash does"),
        # In seq.
        (lambda line: replace_in(line, b'"seq":17', b'"seq":18'), r"line 17: seq 18 where seq 17"),
        (lambda line: replace_in(line, b'"seq":17', b'"seq":1x'), r"line 17 \(seq 17 expected\)"),
        (lambda line: replace_in(line, b'"seq":17', b'"seq":017'), r"line 17"),
        # The line's structure.
        # (event 17's data has a "hash" of its own: the top-level one is the last)
        (lambda line: b'"hash": "'.join(line.rsplit(b'"hash":"', 1)), r"line 17 \(seq 17"),
        (lambda line: replace_in(line, b'"hash":"', b'"hash": "'), r"seq 17: hash does not"),
        (lambda line: line[:-1] + b" \n", r"line 17"),
        (lambda line: line[:-1] + b"\r\n", r"line 17"),
    ],
)
def test_a_changed_event_in_a_range_bundle(capsys, tmp_path, trail, change, message):
    bundle = tampered(tmp_path, trail, "range", lambda lines: at(lines, 16, change(lines[16])))
    check_fails(capsys, bundle, message)


def hash_span(line: bytes, name: bytes) -> int:
    return line.rindex(b'"%s":"' % name) + len(name) + 4


def test_a_changed_hash_and_prev_hash(capsys, tmp_path, trail):
    def flip(name):
        def change(lines):
            line = lines[16]
            i = hash_span(line, name) + 5
            digit = b"0" if line[i : i + 1] != b"0" else b"1"
            return at(lines, 16, line[:i] + digit + line[i + 1 :])

        return change

    check_fails(capsys, tampered(tmp_path, trail, "range", flip(b"hash")), r"seq 17: hash does not")
    bundle = tampered(tmp_path, trail, "range", flip(b"prev_hash"))
    check_fails(capsys, bundle, r"seq 17: prev_hash is not the hash of seq 16")


def test_every_single_byte_changed_in_a_line_is_caught(capsys, tmp_path, trail):
    files = range_files(trail)
    lines = files["events.jsonl"].splitlines(keepends=True)
    line = lines[4]
    for position in range(len(line)):
        flip = 0x20 if position % 2 else 0x01  # a bit, or the case of a letter
        changed = line[:position] + bytes([line[position] ^ flip]) + line[position + 1 :]
        changed_files = {**files, "events.jsonl": b"".join(at(lines, 4, changed))}
        bundle = write_forged(tmp_path / "t.zip", files, changed_files, "range", trail.key)
        check_fails(capsys, bundle, r"\b(seq|line) 5\b")


def test_a_dropped_event(capsys, tmp_path, trail):
    bundle = tampered(tmp_path, trail, "range", lambda lines: lines[:20] + lines[21:])
    check_fails(capsys, bundle, r"line 21: seq 22 where seq 21 should be")


def test_the_last_event_dropped(capsys, tmp_path, trail):
    # (A manifest cannot say 59 events in 1..60, and 1..59 ends at no checkpoint.)
    bundle = tampered(tmp_path, trail, "range", lambda lines: lines[:59])
    check_fails(capsys, bundle, r"ends at seq 59, range.last_seq is 60")


def test_a_range_that_does_not_end_at_a_checkpoint(capsys, tmp_path, trail):
    bundle = write_bundle(tmp_path / "t.zip", range_files(trail, 1, 55), "range", trail.key)
    check_fails(capsys, bundle, r"no checkpoint at seq 55")


def test_two_lines_swapped(capsys, tmp_path, trail):
    def swap(lines):
        lines = list(lines)
        lines[30], lines[31] = lines[31], lines[30]
        return lines

    check_fails(capsys, tampered(tmp_path, trail, "range", swap), r"line 31: seq 32 where seq 31")


def test_a_line_duplicated(capsys, tmp_path, trail):
    bundle = tampered(tmp_path, trail, "range", lambda lines: lines[:31] + lines[30:59])
    check_fails(capsys, bundle, r"line 32: seq 31 where seq 32")


def test_an_event_added_past_the_range(capsys, tmp_path, trail):
    extra = make_trail(61).lines[60]
    bundle = tampered(tmp_path, trail, "range", lambda lines: [*lines, extra])
    check_fails(capsys, bundle, r"seq 61: beyond")


def test_a_forged_tail_rehashed_is_not_signed(capsys, tmp_path, trail):
    """Change event 55 and rehash it and every event after it: the chain holds,
    but the checkpoint at 60 signed the old hash."""
    lines = [json.loads(line) for line in trail.lines]
    lines[54]["data"]["reason_code"] = "CO-FORGED"
    prev = lines[53]["hash"]
    for event in lines[54:]:
        body = {k: v for k, v in event.items() if k not in ("hash", "prev_hash")}
        event["prev_hash"] = prev
        event["hash"] = prev = hashlib.sha256(
            bytes.fromhex(event["prev_hash"]) + rfc8785.dumps(body)
        ).hexdigest()
    files = range_files(trail)
    files["events.jsonl"] = b"".join(rfc8785.dumps(e) + b"\n" for e in lines)
    bundle = write_bundle(tmp_path / "t.zip", files, "range", trail.key)
    check_fails(capsys, bundle, r"checkpoints.jsonl seq 60: hash is not that of event 60")


def test_the_first_event_must_start_from_zeros(capsys, tmp_path):
    key = Ed25519PrivateKey.generate()
    event = event_body(1)
    prev = "11" * 32
    digest = hashlib.sha256(bytes.fromhex(prev) + rfc8785.dumps(event)).hexdigest()
    trail = Trail(
        key,
        [rfc8785.dumps({**event, "hash": digest, "prev_hash": prev}) + b"\n"],
        [digest],
        {1: checkpoint(key, 1, digest, mth([bytes.fromhex(digest)]).hex())},
    )
    bundle = write_bundle(tmp_path / "t.zip", range_files(trail), "range", key)
    check_fails(capsys, bundle, r"seq 1: prev_hash is not 64 zeros")


# --- Tampering with checkpoints and the key --------------------------------------------------


def with_checkpoints(tmp_path, trail, change, kind="range") -> Path:
    files = range_files(trail) if kind == "range" else filtered_files(trail, FILTERED)
    cps = [json.loads(line) for line in files["checkpoints.jsonl"].splitlines()]
    change(cps)
    files["checkpoints.jsonl"] = jsonl(cps)
    return write_bundle(tmp_path / "t.zip", files, kind, trail.key)


def other_signature(text: str = "something else") -> str:
    return sign(Ed25519PrivateKey.generate(), text)


def test_a_checkpoint_signature_changed(capsys, tmp_path, trail):
    def change(cps):
        raw = bytearray(base64.b64decode(cps[2]["signature"]))
        raw[10] ^= 1
        cps[2]["signature"] = base64.b64encode(bytes(raw)).decode()

    bundle = with_checkpoints(tmp_path, trail, change)
    check_fails(capsys, bundle, r"checkpoints.jsonl seq 30: the signature does not verify")


def test_a_tree_signature_changed(capsys, tmp_path, trail):
    def change(cps):
        cps[0]["tree_signature"] = other_signature()

    bundle = with_checkpoints(tmp_path, trail, change, "filtered")
    check_fails(capsys, bundle, r"seq 60: the tree signature does not verify")


def test_a_checkpoint_that_signs_another_hash(capsys, tmp_path, trail):
    """Well signed (say, by a server bug), but not the event's hash."""

    def change(cps):
        cps[1] = checkpoint(trail.key, 20, trail.hashes[18], cps[1]["tree_root"])

    bundle = with_checkpoints(tmp_path, trail, change)
    check_fails(capsys, bundle, r"checkpoints.jsonl seq 20: hash is not that of event 20")


def test_a_signed_tree_root_that_does_not_recompute(capsys, tmp_path, trail):
    def change(cps):
        root = mth(trail.leaves(39)).hex()
        cps[3] = {**cps[3], "tree_root": root, "tree_signature": sign(trail.key, f"tree:40:{root}")}

    bundle = with_checkpoints(tmp_path, trail, change)
    check_fails(capsys, bundle, r"checkpoints.jsonl seq 40: tree_root does not match")


@pytest.mark.parametrize(
    ("field_", "value", "message"),
    [
        ("signature", "not base64!", r"seq 10: signature is not valid base64"),
        ("signature", base64.b64encode(b"short").decode(), r"not an Ed25519 signature"),
        ("signature", 12, r"signature is not base64 text"),
        ("hash", "AB" * 32, r"hash is not 64 lowercase hex"),
        ("seq", "10", r"line 1: seq is not a positive whole number"),
        ("seq", True, r"line 1: seq is not"),
        ("tree_size", 11, r"tree_size 11 is not the checkpoint's seq"),
        ("tree_root", ["x"], r"tree_root is not 64"),
        ("key_id", "0123456789abcdef", r"signed by key '0123456789abcdef'"),
        ("key_id", None, r"key_id is not text"),
    ],
)
def test_malformed_checkpoints(capsys, tmp_path, trail, field_, value, message):
    def change(cps):
        cps[0][field_] = value

    check_fails(capsys, with_checkpoints(tmp_path, trail, change), message)


def test_checkpoints_out_of_order(capsys, tmp_path, trail):
    bundle = with_checkpoints(tmp_path, trail, lambda cps: cps.insert(2, cps[0]))
    check_fails(capsys, bundle, r"checkpoints.jsonl seq 10: after seq 20")


def test_another_key_without_resigning(capsys, tmp_path, trail):
    other = Ed25519PrivateKey.generate()
    files = range_files(trail)
    files["public_key.pem"] = pem(other)
    bundle = write_bundle(tmp_path / "t.zip", files, "range", other)
    check_fails(capsys, bundle, rf"seq 10: signed by key '{key_id(trail.key)}'")

    files["checkpoints.jsonl"] = jsonl(
        {**json.loads(line), "key_id": key_id(other)}
        for line in range_files(trail)["checkpoints.jsonl"].splitlines()
    )
    bundle = write_bundle(tmp_path / "t.zip", files, "range", other)
    check_fails(capsys, bundle, r"seq 10: the signature does not verify with public_key.pem")


def test_another_key_and_everything_resigned_fails_against_the_pinned_key(capsys, tmp_path, trail):
    forger = Ed25519PrivateKey.generate()
    forged = make_trail(60, every=10, key=forger)  # a whole other trail, consistently signed
    bundle = write_bundle(tmp_path / "t.zip", range_files(forged), "range", forger)
    published = tmp_path / "published.pem"
    published.write_bytes(pem(trail.key))

    code, out, _ = run(capsys, bundle)  # it verifies, against its own key...
    assert code == 0 and f"key id {key_id(forger)}" in out
    check_fails(  # ...which is not Workbench's
        capsys,
        bundle,
        rf"public_key.pem: key {key_id(forger)} is not the expected key {key_id(trail.key)}",
        args=("--public-key", published),
    )
    assert run(capsys, write_bundle(tmp_path / "g.zip", range_files(trail), "range", trail.key),
               "--public-key", published)[0] == 0  # fmt: skip


def test_the_manifest_key_id_must_be_the_keys(capsys, tmp_path, trail):
    def edit(manifest):
        manifest["key_id"] = "0000000000000000"

    bundle = write_bundle(tmp_path / "t.zip", range_files(trail), "range", trail.key, edit)
    check_fails(capsys, bundle, r"manifest.json: key_id '0000000000000000', public_key.pem is")


@pytest.mark.parametrize(
    "content",
    [
        b"garbage",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    ],
)
def test_a_public_key_that_is_not_one(capsys, tmp_path, trail, content):
    files = range_files(trail)
    files["public_key.pem"] = content
    bundle = write_bundle(tmp_path / "t.zip", files, "range", trail.key)
    check_fails(capsys, bundle, r"public_key.pem: not a")


def test_a_public_key_of_another_kind(capsys, tmp_path, trail):
    from cryptography.hazmat.primitives.asymmetric import ec

    files = range_files(trail)
    files["public_key.pem"] = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    bundle = write_bundle(tmp_path / "t.zip", files, "range", trail.key)
    check_fails(capsys, bundle, r"public_key.pem: not an Ed25519 key")


# --- The manifest and the zip ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["events.jsonl", "checkpoints.jsonl", "public_key.pem", "VERIFY.md"]
)
def test_a_file_that_does_not_match_its_digest(capsys, tmp_path, trail, name):
    def edit(manifest):
        manifest["files"][name]["sha256"] = hashlib.sha256(b"other").hexdigest()

    bundle = write_bundle(tmp_path / "t.zip", range_files(trail), "range", trail.key, edit)
    check_fails(capsys, bundle, rf"{re.escape(name)}: its SHA-256 does not match manifest.json")


def test_a_proofs_file_that_does_not_match_its_digest(capsys, tmp_path, trail):
    def edit(manifest):
        manifest["files"]["proofs.jsonl"]["sha256"] = "0" * 64

    files = filtered_files(trail, FILTERED)
    bundle = write_bundle(tmp_path / "t.zip", files, "filtered", trail.key, edit)
    check_fails(capsys, bundle, r"proofs.jsonl: its SHA-256 does not match")


def test_a_file_whose_size_is_not_the_manifests(capsys, tmp_path, trail):
    def edit(manifest):
        manifest["files"]["VERIFY.md"]["bytes"] += 1

    bundle = write_bundle(tmp_path / "t.zip", range_files(trail), "range", trail.key, edit)
    check_fails(capsys, bundle, r"VERIFY.md: \d+ bytes, manifest.json gives \d+")


def test_an_extra_file(capsys, tmp_path, trail):
    files = range_files(trail)
    manifest = manifest_for(files, "range", trail.key)
    files["notes.txt"] = b"trust me"
    check_fails(capsys, write_zip(tmp_path / "t.zip", files, manifest), r"notes.txt: in the zip")
    bundle = write_bundle(tmp_path / "t.zip", files, "range", trail.key)
    check_fails(capsys, bundle, r"manifest.json: lists 'notes.txt'")


def test_a_missing_file(capsys, tmp_path, trail):
    files = range_files(trail)
    manifest = manifest_for(files, "range", trail.key)
    del files["VERIFY.md"]
    bundle = write_zip(tmp_path / "t.zip", files, manifest)
    check_fails(capsys, bundle, r"VERIFY.md: listed in manifest.json but not in the zip")
    bundle = write_bundle(tmp_path / "t.zip", files, "range", trail.key)
    check_fails(capsys, bundle, r"manifest.json: does not list VERIFY.md")


def test_a_file_twice_in_the_zip(capsys, tmp_path, good_range):
    with zipfile.ZipFile(good_range, "a") as zf, pytest.warns(UserWarning, match="Duplicate"):
        zf.writestr("events.jsonl", b"")
    check_fails(capsys, good_range, r"events.jsonl: in the zip twice")


def test_no_manifest(capsys, tmp_path, trail):
    bundle = tmp_path / "t.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        for name, data in range_files(trail).items():
            zf.writestr(name, data)
    check_fails(capsys, bundle, r"manifest.json: not in the zip")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format="other"), r"format is not"),
        (lambda m: m.update(version=2), r"version 2 is not 1"),
        (lambda m: m.update(version="1"), r"version '1' is not 1"),
        (lambda m: m.update(kind="all"), r"kind 'all'"),
        (lambda m: m.update(count=59), r"count 59 does not fill range 1..60"),
        (lambda m: m.update(count=-1), r"count is not a whole number"),
        (lambda m: m.update(count=None), r"count is not a whole number"),
        (lambda m: m.update(range=[1, 60]), r"range is not an object"),
        (lambda m: m["range"].update(first_seq="1"), r"range is not first_seq <= last_seq"),
        (lambda m: m["range"].update(first_seq=2, last_seq=61), r"events.jsonl line 1: seq 1"),
        (lambda m: m.update(key_id=7), r"key_id is not text"),
        (lambda m: m.update(files=[]), r"files is not an object"),
        (lambda m: m["files"].update({"VERIFY.md": "x"}), r"the entry for VERIFY.md"),
        (lambda m: m["files"]["VERIFY.md"].update(bytes=-1), r"the entry for VERIFY.md"),
        (lambda m: m["files"]["VERIFY.md"].update(sha256="X" * 64), r"the entry for VERIFY.md"),
        (lambda m: m["files"].update({"proofs.jsonl": m["files"]["VERIFY.md"]}), r"proofs.jsonl"),
    ],
)
def test_a_malformed_manifest(capsys, tmp_path, trail, edit, message):
    bundle = write_bundle(tmp_path / "t.zip", range_files(trail), "range", trail.key, edit)
    check_fails(capsys, bundle, message)


@pytest.mark.parametrize(
    "manifest",
    [b"", b"not json", b"[]", b'{"format": NaN}', b"[" * 100_000, b'{"a": 1, "a": 2}', b"\xff"],
)
def test_a_manifest_that_is_not_json(capsys, tmp_path, trail, manifest):
    check_fails(capsys, write_zip(tmp_path / "t.zip", range_files(trail), manifest), "manifest")


def test_a_truncated_zip(capsys, tmp_path, good_range):
    data = good_range.read_bytes()
    for size in (len(data) - 1, len(data) // 2, 30, 0):
        bundle = tmp_path / f"cut{size}.zip"
        bundle.write_bytes(data[:size])
        code, out, err = run(capsys, bundle)
        assert code == 2 and out == ""
        assert err.startswith("error: ") and err.count("\n") == 1, err


def test_not_a_zip(capsys, tmp_path):
    bundle = tmp_path / "b.zip"
    bundle.write_text("hello\n")
    assert run(capsys, bundle)[0] == 2
    assert run(capsys, tmp_path / "missing.zip")[0] == 2
    assert run(capsys, tmp_path)[0] == 2


def test_a_damaged_member_is_unreadable(capsys, tmp_path, trail):
    bundle = tmp_path / "b.zip"
    write_bundle(bundle, range_files(trail), "range", trail.key)
    data = bytearray(bundle.read_bytes())
    offset = data.index(b"events.jsonl") + 200  # inside its deflated bytes
    data[offset] ^= 0xFF
    bundle.write_bytes(bytes(data))
    code, _, err = run(capsys, bundle)
    assert code in (1, 2) and err.count("\n") == 1  # the zip's CRC or the chain catches it


def test_usage_errors(capsys, tmp_path, good_range):
    assert run(capsys)[0] == 2
    assert run(capsys, good_range, "--unknown")[0] == 2
    code, _, err = run(capsys, good_range, "--public-key", tmp_path / "nope.pem")
    assert code == 2 and "--public-key" in err
    bad = tmp_path / "bad.pem"
    bad.write_text("nope")
    assert run(capsys, good_range, "--public-key", bad)[0] == 2


def test_jobs_must_be_at_least_one(capsys, good_range):
    code, _, err = run(capsys, good_range, "--jobs", "0")
    assert code == 2 and "--jobs" in err


# --- In blocks, and by worker processes ------------------------------------------------------


def flip_prev_hash(lines, n):
    i = hash_span(lines[n], b"prev_hash") + 5
    digit = b"0" if lines[n][i : i + 1] != b"0" else b"1"
    return at(lines, n, lines[n][:i] + digit + lines[n][i + 1 :])


def bad_root(trail):
    def change(cps):
        cps[2]["tree_root"] = "ab" * 32
        cps[2]["tree_signature"] = sign(trail.key, f"tree:{cps[2]['seq']}:{'ab' * 32}")

    return change


# Every kind of problem, at the places where blocks can start and end.
AT_LINE = {
    "data": lambda lines, n: at(lines, n, replace_in(lines[n], b'"rev.user', b'"rev.usex')),
    "seq": lambda lines, n: at(
        lines, n, replace_in(lines[n], b'"seq":%d,' % (n + 1), b'"seq":%d,' % (n + 2))
    ),
    "format": lambda lines, n: at(lines, n, lines[n][:-1] + b" \n"),
    "prev_hash": flip_prev_hash,
    "dropped": lambda lines, n: lines[:n] + lines[n + 1 :],
    "duplicated": lambda lines, n: lines[: n + 1] + lines[n:],
}
TAMPERS = {
    "none": lambda lines: lines,
    **{
        f"{what} at line {n + 1}": functools.partial(change, n=n)
        for n in (0, 1, 16, 17, 59)
        for what, change in AT_LINE.items()
    },
    "past the range": lambda lines: [*lines, make_trail(61).lines[60]],
    "garbage": lambda lines: [b"{}\n", *lines[1:]],
}
SPLITS = {
    "a line or so a block": (300, 1),
    "two workers, a line or so a block": (300, 2),
    "two workers, a few lines a block": (2000, 2),
}


def verdict(capsys, bundle, *args) -> tuple[int, str, str]:
    code, out, err = run(capsys, bundle, *args)
    return code, "\n".join(out.splitlines()[:2]), err  # not the time it took


@pytest.mark.parametrize("split", SPLITS)
def test_the_same_verdict_however_the_events_are_split(capsys, tmp_path, monkeypatch, split):
    """The first problem named does not depend on where blocks begin or on
    who checks them: each tamper is checked in one block, then split."""
    trail = make_trail(60, every=10)
    chunk, jobs = SPLITS[split]
    cases = {}
    for number, (name, change) in enumerate(TAMPERS.items()):
        (tmp_path / str(number)).mkdir()
        cases[name] = tampered(tmp_path / str(number), trail, "range", change)
    cases["a later range"] = write_bundle(
        tmp_path / "later.zip", range_files(trail, 24, 50), "range", trail.key
    )
    (tmp_path / "root").mkdir()
    cases["a tree root"] = with_checkpoints(tmp_path / "root", trail, bad_root(trail))
    whole = {name: verdict(capsys, bundle, "--jobs", "1") for name, bundle in cases.items()}
    assert whole["none"][0] == 0 and whole["a later range"][0] == 0
    assert sum(code == 1 for code, _, _ in whole.values()) == len(cases) - 2

    monkeypatch.setattr(verify, "CHUNK", chunk)
    started = []
    start = verify._Pool.start
    monkeypatch.setattr(verify._Pool, "start", lambda *a: started.append(start(*a)) or started[-1])
    for name, bundle in cases.items():
        assert verdict(capsys, bundle, "--jobs", str(jobs)) == whole[name], name
    assert all(started) and len(started) == (len(cases) if jobs > 1 else 0)


def test_worker_processes_are_spawned_when_threads_run(capsys, good_range, monkeypatch):
    """A forked copy of a process with other threads could inherit a held
    lock: then workers are spawned, and blocks are sent to them."""
    monkeypatch.setattr(verify, "CHUNK", 2000)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        code, out, err = run(capsys, good_range, "--jobs", "2")
    finally:
        stop.set()
        thread.join()
    assert (code, err) == (0, "")
    assert "6 tree root(s) recomputed" in out


def test_checked_here_when_workers_cannot_start(tmp_path, good_range):
    """A spawned worker imports ``__main__``; a program read from stdin has
    none to import, so the bundle is checked in the process itself."""
    program = textwrap.dedent(
        f"""
        import threading
        from workbench import verify
        threading.Thread(target=lambda: None).start()  # so workers are spawned
        verify.CHUNK = 2000
        report = verify.verify_bundle({str(good_range)!r}, jobs=2)
        print(report.count, report.trees)
        """
    )
    result = subprocess.run(
        [sys.executable, "-"], input=program, capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["60", "6"]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 9, 31, 64, 100])
def test_tree_roots_of_every_shape_across_blocks(capsys, tmp_path, monkeypatch, size):
    trail = make_trail(size, every=3)
    bundle = write_bundle(tmp_path / "b.zip", range_files(trail), "range", trail.key)
    monkeypatch.setattr(verify, "CHUNK", 700)
    code, out, err = run(capsys, bundle, "--jobs", "1")
    assert (code, err) == (0, "")
    assert f"{len(trail.checkpoints)} tree root(s) recomputed" in out


# --- Filtered bundles ------------------------------------------------------------------------


def with_proofs(tmp_path, trail, change) -> Path:
    files = filtered_files(trail, FILTERED)
    proofs = [json.loads(line) for line in files["proofs.jsonl"].splitlines()]
    change(proofs)
    files["proofs.jsonl"] = jsonl(proofs)
    return write_bundle(tmp_path / "t.zip", files, "filtered", trail.key)


def test_a_proof_path_element_changed(capsys, tmp_path, trail):
    def change(proofs):
        node = bytearray(bytes.fromhex(proofs[4]["path"][2]))
        node[0] ^= 1
        proofs[4]["path"][2] = node.hex()

    bundle = with_proofs(tmp_path, trail, change)
    check_fails(capsys, bundle, r"proofs.jsonl seq 17: the audit path does not lead to")


def test_a_proof_for_another_seq(capsys, tmp_path, trail):
    def relabel(proofs):
        proofs[4]["seq"], proofs[5]["seq"] = proofs[5]["seq"], proofs[4]["seq"]

    check_fails(capsys, with_proofs(tmp_path, trail, relabel), r"line 5: proves seq 18")

    def swap_paths(proofs):
        proofs[4]["path"], proofs[5]["path"] = proofs[5]["path"], proofs[4]["path"]

    check_fails(capsys, with_proofs(tmp_path, trail, swap_paths), r"seq 17: the audit path")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.pop(), r"proofs.jsonl line 10: missing"),
        (lambda p: p.append(p[-1]), r"proofs.jsonl line 11: a proof without an event"),
        (
            lambda p: p[0].update(tree_size=50),
            r"no checkpoint in checkpoints.jsonl has tree_size 50",
        ),
        (lambda p: p[0].update(tree_size="60"), r"tree_size is not a whole number"),
        (lambda p: p[0].update(path="ab" * 32), r"path is not a list"),
        (lambda p: p[0].update(path=[1]), r"a path element is not"),
        (lambda p: p[0]["path"].append("00" * 32), r"seq 1: the audit path"),
        (lambda p: p[0]["path"].pop(), r"seq 1: the audit path"),
        (lambda p: p.__setitem__(0, []), r"line 1: not a JSON object"),
    ],
)
def test_malformed_proofs(capsys, tmp_path, trail, change, message):
    check_fails(capsys, with_proofs(tmp_path, trail, change), message)


def test_a_filtered_event_whose_body_changed(capsys, tmp_path, trail):
    def change(lines):
        return at(lines, 6, replace_in(lines[6], b'"CO-', b'"CX-'))  # seq 30

    check_fails(capsys, tampered(tmp_path, trail, "filtered", change), r"seq 30: hash does not")


def test_a_filtered_event_changed_and_rehashed(capsys, tmp_path, trail):
    """The forger recomputes the event's hash: the proof then fails."""

    def change(lines):
        event = json.loads(lines[6])
        event["data"]["reason_code"] = "CO-FORGED"
        body = {k: v for k, v in event.items() if k not in ("hash", "prev_hash")}
        event["hash"] = hashlib.sha256(
            bytes.fromhex(event["prev_hash"]) + rfc8785.dumps(body)
        ).hexdigest()
        return at(lines, 6, rfc8785.dumps(event) + b"\n")

    bundle = tampered(tmp_path, trail, "filtered", change)
    check_fails(capsys, bundle, r"proofs.jsonl seq 30: the audit path does not lead")


def test_filtered_order_and_links(capsys, tmp_path, trail):
    order = [1, 2, 3, 17, 9, 18, 30, 41, 59, 60]  # events and their proofs, both swapped
    bundle = write_bundle(tmp_path / "t.zip", filtered_files(trail, order), "filtered", trail.key)
    check_fails(capsys, bundle, r"events.jsonl seq 9: after seq 17")

    def swap(lines):  # the events only
        return [*lines[:3], lines[4], lines[3], *lines[5:]]

    bundle = tampered(tmp_path, trail, "filtered", swap)
    check_fails(capsys, bundle, r"proofs.jsonl line 4: proves seq 9, the event is seq 17")

    def relink(lines):  # seq 18 claims another predecessor than seq 17
        return at(lines, 5, replace_in(lines[5], trail.hashes[16].encode(), b"0" * 64))

    check_fails(capsys, tampered(tmp_path, trail, "filtered", relink), r"seq 18: prev_hash is not")


def test_every_single_byte_changed_in_a_filtered_line_is_caught(capsys, tmp_path, trail):
    files = filtered_files(trail, FILTERED)
    lines = files["events.jsonl"].splitlines(keepends=True)
    line = lines[3]  # seq 9
    for position in range(len(line)):
        changed = line[:position] + bytes([line[position] ^ 0x01]) + line[position + 1 :]
        changed_files = {**files, "events.jsonl": b"".join(at(lines, 3, changed))}
        bundle = write_forged(tmp_path / "t.zip", files, changed_files, "filtered", trail.key)
        code, _, err = run(capsys, bundle)
        assert code == 1, (position, err)
        assert "could not check" not in err


# --- Hostile input ---------------------------------------------------------------------------


def test_a_huge_line_is_refused(capsys, tmp_path, trail, monkeypatch):
    monkeypatch.setattr(verify, "MAX_LINE", 1000)
    monkeypatch.setattr(verify, "CHUNK", 512)
    bundle = tampered(tmp_path, trail, "range", lambda lines: [b"x" * 5000 + b"\n", *lines])
    check_fails(capsys, bundle, r"longer")


@pytest.mark.parametrize(
    "events",
    [b"", b"\n", b"not json\n", b"{}\n", b"[]\n", b"\xff\xfe\n", b"x" * 100_000, b"{" * 50_000],
)
def test_garbage_events(capsys, tmp_path, trail, events):
    bundle = tampered(tmp_path, trail, "range", lambda lines: [events])
    check_fails(capsys, bundle, r"events.jsonl")


@pytest.mark.parametrize(
    "value", [None, True, 1.5, -1, 2**70, "", "x" * 10_000, [], {}, [[[]]], {"a": None}]
)
def test_wrong_types_anywhere(capsys, tmp_path, trail, value):
    """Each field of the manifest, a checkpoint and a proof set to a wrong
    type in turn: always a named failure, never an unexpected error."""
    base = filtered_files(trail, FILTERED)
    manifest = manifest_for(base, "filtered", trail.key)
    targets = [("manifest", key) for key in manifest if key not in ("filters", "created_at")]
    targets += [("manifest.range", key) for key in manifest["range"]]
    targets += [("checkpoint", key) for key in json.loads(base["checkpoints.jsonl"])]
    targets += [("proof", key) for key in ("seq", "tree_size", "path")]
    for where, key in targets:
        files, changed = dict(base), json.loads(json.dumps(manifest))
        if where == "manifest":
            changed[key] = value
        elif where == "manifest.range":
            changed["range"][key] = value
        else:
            name = "checkpoints.jsonl" if where == "checkpoint" else "proofs.jsonl"
            items = [json.loads(line) for line in files[name].splitlines()]
            items[0][key] = value
            files[name] = jsonl(items)
            changed["files"][name] = {
                "sha256": hashlib.sha256(files[name]).hexdigest(),
                "bytes": len(files[name]),
            }
        code, out, err = run(capsys, write_zip(tmp_path / "t.zip", files, changed))
        assert code == 1, (where, key, value, out)
        assert err.count("\n") == 1 and "could not check" not in err, (where, key, value, err)


# --- The command line, in a process ----------------------------------------------------------


def cli(*args, **kwargs) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "workbench.verify", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False, **kwargs)


def test_cli_exit_codes(tmp_path, trail, good_range):
    ok = cli(good_range)
    assert ok.returncode == 0 and ok.stdout.startswith("OK: range bundle") and ok.stderr == ""

    bundle = tampered(tmp_path, trail, "range", lambda lines: lines[:20] + lines[21:])
    bad = cli(bundle)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("FAILED: events.jsonl line 21") and bad.stderr.count("\n") == 1

    cut = tmp_path / "cut.zip"
    cut.write_bytes(good_range.read_bytes()[:-100])
    truncated = cli(cut)
    assert truncated.returncode == 2 and "Traceback" not in truncated.stderr

    assert cli().returncode == 2
    assert cli(good_range, "--quiet").stdout == ""


STANDALONE = """
import importlib.abc, runpy, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"django", "celery", "kombu", "rfc8785", "environ"} or (
            name.startswith("workbench.") and name != "workbench.verify"
        ):
            raise ImportError(f"{name} must not be imported by the verifier")

sys.meta_path.insert(0, Refuse())
sys.path.insert(0, sys.argv.pop(1))
sys.argv[0] = "verify"
try:
    runpy.run_module("workbench.verify", run_name="__main__")
finally:
    assert not any(m.startswith(("django", "celery")) for m in sys.modules)
"""


def test_the_verifier_needs_neither_django_nor_the_rest_of_workbench(tmp_path, good_range):
    """``workbench/__init__.py`` loads Celery (and with it ``django.conf``), so
    the module is run here from a copy beside an empty package ``__init__``,
    with Django, Celery and the rest of Workbench refused on import."""
    package = tmp_path / "alone" / "workbench"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    shutil.copy(ROOT / "workbench" / "verify.py", package / "verify.py")
    command = [sys.executable, "-I", "-c", STANDALONE, str(tmp_path / "alone"), str(good_range)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK: range bundle")
    script = subprocess.run(  # and as a plain script
        [sys.executable, "-I", str(package / "verify.py"), "-q", str(good_range)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (script.returncode, script.stdout, script.stderr) == (0, "", "")


# --- VERIFY.md, followed by hand --------------------------------------------------------------


def snippets() -> dict[str, str]:
    text = VERIFY_MD.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    return {re.match(r"# (\S+\.py)", block).group(1): block for block in blocks}


def shell_lines(prefix: str) -> list[str]:
    text = VERIFY_MD.read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith(prefix)]


def unpack(bundle: Path, into: Path) -> Path:
    into.mkdir()
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(into)
    for name, code in snippets().items():
        (into / name).write_text(code)
    return into


def python(folder: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-I", *map(str, args)],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )


def openssl_ready() -> bool:
    if not shutil.which("openssl"):
        return False
    version = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout
    return not re.match(r"OpenSSL (0\.|1\.0|1\.1\.0)", version)


def shell(folder: Path, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, shell=True, cwd=folder, capture_output=True, text=True, check=False
    )


def test_verify_md_has_the_snippets_it_promises():
    assert set(snippets()) == {"chain.py", "checkpoint.py", "proofs.py"}
    for code in snippets().values():
        compile(code, "snippet", "exec")
        assert not re.search(r"^(import|from) (?!hashlib|json|base64|sys)", code, re.M)


def test_verify_md_by_hand_on_a_range_bundle(tmp_path, good_range):
    folder = unpack(good_range, tmp_path / "bundle")
    chain = python(folder, "chain.py")
    assert chain.returncode == 0, chain.stderr
    assert chain.stdout == "chain OK: 60 events, the last one seq 60\n"
    written = python(folder, "checkpoint.py")
    assert written.returncode == 0 and written.stdout.startswith("checkpoint 60: ")
    if openssl_ready():
        for command in shell_lines("openssl pkeyutl -verify"):
            done = shell(folder, command)
            assert done.returncode == 0, (command, done.stdout, done.stderr)
            assert "Signature Verified Successfully" in done.stdout
        key_id_line = shell_lines("openssl pkey -pubin -in public_key.pem -outform DER")[0]
        if shutil.which("sha256sum"):
            printed = shell(folder, key_id_line).stdout.strip()
            assert printed == json.loads((folder / "manifest.json").read_text())["key_id"]
            digests = shell(folder, shell_lines("python3 -c")[0].replace("python3", sys.executable))
            assert digests.returncode == 0 and digests.stdout.count(": OK") == 4, digests.stdout


def test_verify_md_by_hand_on_a_filtered_bundle(tmp_path, good_filtered):
    folder = unpack(good_filtered, tmp_path / "bundle")
    for script, expected in [
        ("chain.py", "chain OK: 10 events, the last one seq 60\n"),
        ("proofs.py", "proofs OK: 10 events, each in a signed tree\n"),
    ]:
        done = python(folder, script)
        assert (done.returncode, done.stdout) == (0, expected), done.stderr
    assert python(folder, "checkpoint.py", 60).returncode == 0
    if openssl_ready():
        for command in shell_lines("openssl pkeyutl -verify"):
            done = shell(folder, command)
            assert done.returncode == 0 and "Verified Successfully" in done.stdout, done.stderr


def test_verify_md_by_hand_catches_tampering(tmp_path, trail):
    def change(lines):
        return at(lines, 6, replace_in(lines[6], b'"CO-', b'"CX-'))

    folder = unpack(tampered(tmp_path, trail, "filtered", change), tmp_path / "bad")
    done = python(folder, "chain.py")
    assert done.returncode == 1 and "seq 30: the hash does not match" in done.stderr

    def change_proof(proofs):
        proofs[2]["path"][0] = "00" * 32

    folder = unpack(with_proofs(tmp_path, trail, change_proof), tmp_path / "bad-proof")
    done = python(folder, "proofs.py")
    assert done.returncode == 1 and "seq 3: the proof does not lead" in done.stderr
    if openssl_ready():
        (folder / "msg").write_bytes(b"60:" + b"0" * 64)
        python(folder, "-c", textwrap.dedent("""
            import base64, json
            cp = json.loads(open("checkpoints.jsonl").read())
            open("sig", "wb").write(base64.b64decode(cp["signature"]))
        """))  # fmt: skip
        done = shell(folder, shell_lines("openssl pkeyutl -verify")[0])
        assert done.returncode != 0


def test_report_numbers_come_from_a_real_run(capsys, tmp_path):
    """A bigger bundle end to end, in process (no timing asserted)."""
    trail = make_trail(1500, every=1000)
    bundle = write_bundle(tmp_path / "b.zip", range_files(trail), "range", trail.key)
    code, out, _ = run(capsys, bundle)
    assert code == 0 and "1,500 event(s)" in out and "2 tree root(s)" in out
    assert out.count("\n") == 4


def test_a_reader_that_leaves_early_gets_no_traceback(good_range):
    """``python -m workbench.verify bundle.zip | head -1``: the pipe closes."""
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench.verify", str(good_range)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # as head does, before the summary is written
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait() == 0
    assert "Traceback" not in stderr
