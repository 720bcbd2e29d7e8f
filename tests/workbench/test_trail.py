import base64
import hashlib
import importlib
import json
import shutil
import subprocess

import pytest
import rfc8785
from django.db import DatabaseError, connection, transaction
from django.test import Client

from tests import factories
from workbench.errors import WorkbenchError
from workbench.models import Checkpoint, TrailEvent, TrailHead
from workbench.selectors import trail_event_as_dict
from workbench.services import (
    Actor,
    TrailEntry,
    api_key_create,
    trail_append,
    trail_append_many,
    trail_checkpoint,
    trail_integrate,
    trail_public_key_pem,
    trail_verify,
)
from workbench.services.trail import trail_key_id

triggers = importlib.import_module("workbench.migrations.0002_roles_and_trail_triggers")
ACTOR = Actor.workbench("tests")


def append(count: int, start: int = 0) -> list[TrailEvent]:
    """Append ``count`` events, integrated (on PostgreSQL the sequencer's
    work, done here at once), and return them saved."""
    trail_append_many(
        [
            TrailEntry(
                "case.received",
                ACTOR,
                case=f"WB-TEST-{start + i:04d}",
                system="claims-ai",
                data={"confidence": 0.62, "n": start + i, "text": "é ✓ \u2028"},
            )
            for i in range(count)
        ]
    )
    trail_integrate()
    return list(TrailEvent.objects.order_by("-seq")[:count])[::-1]


def drop_triggers():
    """Inside the test's transaction: rolled back with it."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(triggers.POSTGRES_DROP)
        else:
            for statement in triggers.SQLITE_DROP:
                cursor.execute(statement)


def test_events_chain_by_the_contract_formula(db):
    append(3)
    prev = "0" * 64
    for seq, event in enumerate(TrailEvent.objects.order_by("seq"), start=1):
        exported = trail_event_as_dict(event)
        assert exported["seq"] == seq
        assert exported["prev_hash"] == prev
        unhashed = {k: v for k, v in exported.items() if k not in ("hash", "prev_hash")}
        digest = hashlib.sha256(bytes.fromhex(prev) + rfc8785.dumps(unhashed)).hexdigest()
        assert exported["hash"] == digest
        assert exported["at"].endswith("Z") and len(exported["at"]) == 27
        prev = digest
    assert TrailHead.objects.get().seq == 3
    assert trail_verify().ok


def test_append_outside_a_transaction_is_refused(transactional_db):
    with pytest.raises(WorkbenchError) as caught:
        trail_append(action="x.y", actor=ACTOR)
    assert caught.value.code == "trail_outside_transaction"


def test_outside_a_transaction_the_verdict_is_the_same(transactional_db, monkeypatch):
    """On PostgreSQL the chain is then checked on a connection of its own,
    beside the trees: the same verdict as inside a transaction."""
    from workbench.services.trail import verify as trail

    with transaction.atomic():
        append(2500)
    trail_checkpoint()
    used = []
    own_connection = trail._own_connection
    monkeypatch.setattr(trail, "_own_connection", lambda *a: used.append(1) or own_connection(*a))
    outside = trail_verify()
    with transaction.atomic():
        inside = trail_verify()
    assert outside == inside and outside.ok and outside.checked == 2500
    assert used == ([1] if connection.vendor == "postgresql" else [])


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE workbench_trailevent SET action = 'forged' WHERE seq = 1",
        "DELETE FROM workbench_trailevent WHERE seq = 1",
    ],
)
def test_the_database_refuses_update_and_delete(db, statement):
    append(2)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert TrailEvent.objects.get(seq=1).action == "case.received"
    assert TrailEvent.objects.count() == 2


def test_every_byte_of_every_body_is_covered(db):
    events = append(5)
    drop_triggers()
    refused = detected = 0
    for event in events:
        original = event.body
        for position in range(0, len(original), 7):
            flipped = chr(ord(original[position]) ^ 1)
            tampered = original[:position] + flipped + original[position + 1 :]
            try:
                with transaction.atomic():
                    TrailEvent.objects.filter(seq=event.seq).update(body=tampered)
            except DatabaseError:
                refused += 1  # not JSON: the generated columns cannot be computed
                continue
            result = trail_verify()
            assert (result.ok, result.first_bad_seq) == (False, event.seq)
            detected += 1
            TrailEvent.objects.filter(seq=event.seq).update(body=original)
    assert detected > 50 and refused > 10
    assert trail_verify().ok


@pytest.mark.parametrize(
    ("column", "value", "seq", "problem"),
    [
        ("hash", "f" * 64, 3, "hash does not match the event's content"),
        ("prev_hash", "e" * 64, 3, "prev_hash does not match"),
        ("prev_hash", "not hex at all", 3, "prev_hash does not match"),
    ],
)
def test_tampering_with_a_hash_column_is_detected(db, column, value, seq, problem):
    append(4)
    drop_triggers()
    TrailEvent.objects.filter(seq=3).update(**{column: value})
    result = trail_verify()
    assert (result.ok, result.first_bad_seq) == (False, seq)
    assert problem in result.problem


@pytest.mark.parametrize("column", ["action", "case", "system", "at"])
def test_the_queryable_columns_cannot_be_set_apart_from_the_body(db, column):
    append(2)
    drop_triggers()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE workbench_trailevent SET \"{column}\" = 'forged' WHERE seq = 1")
    event = TrailEvent.objects.get(seq=1)
    assert (event.action, event.case) == ("case.received", "WB-TEST-0000")


def test_a_dropped_event_is_named(db):
    append(5)
    drop_triggers()
    TrailEvent.objects.filter(seq=3).delete()
    result = trail_verify()
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_a_truncated_tail_disagrees_with_the_head(db):
    append(5)
    drop_triggers()
    TrailEvent.objects.filter(seq=5).delete()
    result = trail_verify()
    assert not result.ok
    assert "head" in result.problem


def test_checkpoints_sign_every_thousandth_event_and_the_stale_head(db, settings):
    append(2500)
    made = trail_checkpoint()
    assert [cp.seq for cp in made] == [1000, 2000, 2500]
    assert trail_checkpoint() == []  # nothing new is due
    result = trail_verify()
    assert result.ok and result.checkpoints == 3


def test_a_forged_checkpoint_signature_fails_verification(db):
    append(1000)
    trail_checkpoint()
    signature = bytearray(base64.b64decode(Checkpoint.objects.get().signature))
    signature[0] ^= 1
    Checkpoint.objects.update(signature=base64.b64encode(bytes(signature)).decode())
    result = trail_verify()
    assert (result.ok, result.first_bad_seq) == (False, 1000)


def test_after_a_key_change_old_checkpoints_verify_with_the_retired_key(db, settings, tmp_path):
    append(1000)
    (old,) = trail_checkpoint()
    factories.signing_key_change(settings, tmp_path)
    made = trail_checkpoint()
    # The change is in the trail, once, and the new key signs the head after it.
    changes = TrailEvent.objects.filter(action="trail.key_changed")
    assert [e.seq for e in changes] == [1001]
    assert trail_event_as_dict(changes[0])["data"] == {
        "previous_key_id": old.key_id,
        "key_id": trail_key_id(),
    }
    assert [(cp.seq, cp.key_id) for cp in made] == [(1001, trail_key_id())]
    assert trail_checkpoint() == []
    assert TrailEvent.objects.filter(action="trail.key_changed").count() == 1
    result = trail_verify()
    assert result.ok and result.checkpoints == 2
    # Without the retired key, the old checkpoint cannot be checked: named.
    settings.TRAIL_RETIRED_PUBLIC_KEY_FILES = []
    result = trail_verify()
    assert (result.ok, result.first_bad_seq) == (False, 1000)
    assert f"unknown key {old.key_id}" in result.problem


@pytest.mark.parametrize("content", [b"not a key", None])
def test_a_retired_key_that_cannot_be_loaded_is_named(db, settings, tmp_path, content):
    path = tmp_path / "retired.pem"
    if content is not None:
        path.write_bytes(content)
    settings.TRAIL_RETIRED_PUBLIC_KEY_FILES = [str(path)]
    with pytest.raises(WorkbenchError, match="TRAIL_RETIRED_PUBLIC_KEY_FILES: cannot load"):
        trail_verify()


def test_checkpoints_sign_the_merkle_root_of_the_event_hashes(db):
    from workbench.services.merkle import MerkleTree, frontier_load, frontier_root
    from workbench.services.trail import trail_public_key, tree_message

    append(2500)
    made = trail_checkpoint()
    hashes = [bytes.fromhex(h) for h in TrailEvent.objects.values_list("hash", flat=True)]
    for checkpoint in made:
        # Grown from the previous checkpoint's frontier, the same as built from scratch.
        assert checkpoint.tree_root == MerkleTree(hashes[: checkpoint.seq]).root().hex()
        assert frontier_root(frontier_load(checkpoint.tree_frontier)).hex() == checkpoint.tree_root
        trail_public_key().verify(
            base64.b64decode(checkpoint.tree_signature),
            tree_message(checkpoint.seq, checkpoint.tree_root),
        )
    # An export signs the head at once, even with a fresh checkpoint about.
    append(3, start=2500)
    (head,) = trail_checkpoint(sign_head=True)
    assert head.seq == 2503
    assert trail_verify().ok


@pytest.mark.parametrize("field", ["tree_root", "tree_signature"])
def test_a_forged_tree_root_or_signature_fails_verification(db, field):
    append(1000)
    (checkpoint,) = trail_checkpoint()
    value = getattr(checkpoint, field)
    forged = ("0" if value[0] != "0" else "1") + value[1:]
    Checkpoint.objects.update(**{field: forged})
    result = trail_verify()
    assert (result.ok, result.first_bad_seq) == (False, 1000)
    assert "tree" in result.problem


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_a_checkpoint_verifies_with_openssl(db, tmp_path):
    append(1000)
    (checkpoint,) = trail_checkpoint()
    (tmp_path / "key.pem").write_text(trail_public_key_pem())
    (tmp_path / "msg").write_bytes(f"{checkpoint.seq}:{checkpoint.hash}".encode())
    (tmp_path / "sig").write_bytes(base64.b64decode(checkpoint.signature))
    verified = subprocess.run(
        [
            "openssl",
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "key.pem",
            "-rawin",
            "-in",
            "msg",
            "-sigfile",
            "sig",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Signature Verified Successfully" in verified.stdout


def test_trail_api_needs_a_compliance_key(system):

    ingest = factories.api_client(system)
    compliance = factories.api_client(system, scope="compliance")
    assert ingest.get("/api/v1/trail").status_code == 401
    page = compliance.get("/api/v1/trail?after=1&limit=2").json()
    assert [event["seq"] for event in page["events"]] == [2, 3]
    assert page["next_after"] == 3
    head = compliance.get("/api/v1/trail/head").json()
    assert head["seq"] == TrailHead.objects.get().seq
    assert compliance.get("/api/v1/trail?limit=0").status_code == 422


def test_a_compliance_key_reads_the_whole_chain_and_an_only_system_key_its_own_with_proofs(
    system, chat_system
):
    """§5: a compliance key reads every system's events; one made with
    --only-system reads its own system's, each proven against a signed
    checkpoint as a filtered bundle is, with the offline verifier's code."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from workbench import verify

    factories.ingest(system, factories.claim_payload(1))
    factories.ingest(chat_system, factories.chat_payload(2))
    factories.ingest(system, factories.claim_payload(3))
    trail_checkpoint(sign_head=True)
    factories.ingest(system, factories.claim_payload(4))  # after the checkpoint

    whole = factories.api_client(system, scope="compliance").get("/api/v1/trail").json()
    assert {e["system"] for e in whole["events"]} >= {"claims-ai", "support-bot"}
    assert all(e["proof"] is None for e in whole["events"])

    key = api_key_create(
        system=system, scope="compliance", only_system=True, actor=factories.ACTOR
    ).plaintext
    own = Client(headers={"authorization": f"Bearer {key}"})
    page = own.get("/api/v1/trail?limit=3").json()

    checkpoint = page["checkpoint"]
    signed = Checkpoint.objects.get(seq=checkpoint["seq"])
    assert checkpoint["tree_root"] == signed.tree_root
    assert {e["system"] for e in page["events"]} == {"claims-ai"}
    assert page["next_after"] == page["events"][-1]["seq"]  # more of its own events
    public_key = load_pem_public_key(own.get("/api/v1/trail/public-key").content)
    public_key.verify(
        base64.b64decode(checkpoint["tree_signature"]),
        f"tree:{checkpoint['seq']}:{checkpoint['tree_root']}".encode(),
    )
    rest = own.get(f"/api/v1/trail?after={page['next_after']}").json()
    events = page["events"] + rest["events"]
    assert rest["next_after"] is None
    expected = TrailEvent.objects.filter(system="claims-ai", seq__lte=signed.seq)
    assert [e["seq"] for e in events] == list(
        expected.order_by("seq").values_list("seq", flat=True)
    )
    for event in events:
        body = {k: v for k, v in event.items() if k not in ("hash", "prev_hash", "proof")}
        digest = hashlib.sha256(bytes.fromhex(event["prev_hash"]) + rfc8785.dumps(body))
        assert digest.hexdigest() == event["hash"]
        assert event["proof"]["tree_size"] == signed.seq
        assert verify.path_verify(
            event["seq"] - 1,
            signed.seq,
            bytes.fromhex(event["hash"]),
            [bytes.fromhex(node) for node in event["proof"]["path"]],
            bytes.fromhex(signed.tree_root),
        )
    # The case sent after the checkpoint waits for the next one.
    assert max(e["seq"] for e in events) < TrailHead.objects.get().seq


def test_only_a_compliance_key_can_be_limited_to_its_system(system):
    with pytest.raises(WorkbenchError) as refused:
        api_key_create(system=system, scope="ingest", only_system=True, actor=factories.ACTOR)
    assert refused.value.code == "bad_scope"


def test_public_key_is_published_as_pem(client, db):
    response = client.get("/api/v1/trail/public-key")
    assert response.status_code == 200
    assert response.content.decode().startswith("-----BEGIN PUBLIC KEY-----")


def test_events_carry_no_raw_personal_data(api_client):

    api_client.post("/api/v1/cases", factories.claim_payload(), content_type="application/json")
    bodies = " ".join(TrailEvent.objects.values_list("body", flat=True))
    assert "Ana Ruiz" not in bodies and "ana@example.org" not in bodies
    received = json.loads(TrailEvent.objects.filter(action="case.received").get().body)
    assert received["data"]["subject"] == "MBR-00001"


def test_trail_api_takes_a_compliance_officers_session(system, client):
    officer = factories.UserFactory(role="compliance")
    reviewer = factories.UserFactory(role="reviewer")
    client.force_login(reviewer)
    assert client.get("/api/v1/trail").status_code == 401
    client.force_login(officer)
    page = client.get("/api/v1/trail?limit=1").json()
    assert page["events"][0]["seq"] == 1 and page["next_after"] == 1


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"confidence": 0.62, "tiny": 1e-7, "big": 1e21, "n": -3, "ok": True, "none": None},
        {"text": 'é ✓ \u2028 \U0001f600 "quoted" \\ \t', "nested": {"b": [1, {"z": 2, "a": 1}]}},
        {"\U0001f600": 1, "\uffff": 2, "a": 3},  # member order by UTF-16 code units
    ],
)
def test_a_prepared_body_is_the_rfc8785_form_of_the_whole_event(data):
    from workbench.services.trail import trail_prepare

    entry = TrailEntry(
        "case.routed",
        Actor.user(type("U", (), {"get_username": lambda s: "rev.ä"})()),
        case=None,
        system="claims-ai",
        data=data,
    )
    (prepared,) = trail_prepare([entry])
    body = prepared.body(12345)
    event = json.loads(body)
    assert body == rfc8785.dumps(event)
    assert (event["seq"], event["case"], event["data"]) == (
        12345,
        None,
        json.loads(rfc8785.dumps(data)),
    )


CANONICAL_SAMPLES = [
    None,
    True,
    0,
    -(2**53) + 1,
    2**53 - 1,
    "".join(chr(c) for c in range(0x80)),  # every control character, quote and backslash
    "é ✓ \u2028 \u2029 \ufeff \U0001f600 \ue000",
    {"b": 1, "a": [1, "x", None, {"z": False, "y": ""}], "A": {}, "_": []},
    {"task": 12, "kind": "review", "lease_expires_at": "2026-11-22T17:30:00.123456+00:00"},
    # Not plain: the rfc8785 package writes these.
    0.62,
    1.0,
    {"amount": 4200.5, "n": [1e21, -0.0]},
    {"\U0001f600": 1, "\ue000": 2},  # keys sorted by UTF-16 code units, not code points
]


@pytest.mark.parametrize("value", CANONICAL_SAMPLES)
def test_canonical_json_is_rfc8785(value):
    from workbench.services.trail import canonical_json

    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", ["\ud800", {"k": ["\udfff"]}, 2**53, float("nan")])
def test_canonical_json_refuses_what_rfc8785_refuses(value):
    from workbench.services.trail import canonical_json

    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_json(value)
