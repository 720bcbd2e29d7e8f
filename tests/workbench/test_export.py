"""Trail exports: the bundle of docs/bundle.md, JSON lines and CSV; the
command, and the compliance officer's export screens."""

import base64
import csv
import hashlib
import io
import json
import logging
import zipfile
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.utils import timezone

from tests import factories
from tests.factories import client_for
from workbench.models import Checkpoint, TrailEvent, TrailExport
from workbench.services.export import ExportFilters, export_plan, export_stream
from workbench.services.merkle import path_verify
from workbench.services.trail import (
    checkpoint_message,
    trail_public_key,
    tree_message,
)
from workbench.services.trail import trail_key_id as trail_public_key_id


@pytest.fixture
def dana(db):
    return factories.UserFactory(username="comp.dana", role="compliance")


def cases(system, count: int, start: int = 1) -> list:
    return [
        factories.ingest(system, factories.claim_payload(n)) for n in range(start, start + count)
    ]


def bundle(filters: ExportFilters) -> zipfile.ZipFile:
    plan = export_plan(filters)
    return zipfile.ZipFile(io.BytesIO(b"".join(export_stream(plan, "bundle"))))


def body_of(line: str) -> tuple[dict, bytes]:
    event = json.loads(line)
    cut = f'"hash":"{event["hash"]}","prev_hash":"{event["prev_hash"]}",'
    assert line.count(cut) == 1
    return event, line.replace(cut, "").encode()


def check(archive: zipfile.ZipFile) -> tuple[dict, list[dict]]:
    """The spec's checks, written out plainly (the offline verifier is tested
    on its own, and on these bundles in test_verify)."""
    manifest = json.loads(archive.read("manifest.json"))
    assert set(archive.namelist()) == set(manifest["files"]) | {"manifest.json"}
    for name, entry in manifest["files"].items():
        data = archive.read(name)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    key = trail_public_key()
    checkpoints = {}
    for line in archive.read("checkpoints.jsonl").decode().splitlines():
        cp = json.loads(line)
        key.verify(base64.b64decode(cp["signature"]), checkpoint_message(cp["seq"], cp["hash"]))
        key.verify(base64.b64decode(cp["tree_signature"]), tree_message(cp["seq"], cp["tree_root"]))
        checkpoints[cp["seq"]] = cp
    events = []
    for line in archive.read("events.jsonl").decode().splitlines():
        event, body = body_of(line)
        digest = hashlib.sha256(bytes.fromhex(event["prev_hash"]) + body).hexdigest()
        assert digest == event["hash"]
        events.append(event)
    assert len(events) == manifest["count"]
    return manifest, events, checkpoints


def test_a_whole_trail_bundle_chains_from_genesis_to_a_signed_checkpoint(system):
    cases(system, 3)
    manifest, events, checkpoints = check(bundle(ExportFilters()))
    assert manifest["kind"] == "range" and manifest["version"] == 1
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["prev_hash"] == "0" * 64
    for before, after in zip(events, events[1:], strict=False):
        assert after["prev_hash"] == before["hash"]
    # Every event is under a signature: the export signed the head.
    assert events[-1]["seq"] in checkpoints
    assert checkpoints[events[-1]["seq"]]["hash"] == events[-1]["hash"]
    assert manifest["range"] == {"first_seq": 1, "last_seq": events[-1]["seq"]}
    # Byte for byte what the database holds.
    stored = {e.seq: e for e in TrailEvent.objects.all()}
    assert all(stored[e["seq"]].hash == e["hash"] for e in events)


def test_a_date_range_runs_on_to_the_next_checkpoint(system, settings):
    settings.TRAIL_CHECKPOINT_EVERY = 4
    cases(system, 2)  # 4+ events yesterday
    with time_machine.travel(timezone.now() + timedelta(days=1)):
        cases(system, 2, start=10)
        day = timezone.now().date()
        manifest, events, checkpoints = check(bundle(ExportFilters(date_from=day, date_to=day)))
    first_today = TrailEvent.objects.filter(at__gte=day.isoformat()).order_by("seq").first()
    assert events[0]["seq"] == first_today.seq
    assert events[-1]["seq"] in checkpoints
    assert manifest["filters"]["from"] == day.isoformat()


def test_a_case_bundle_holds_that_case_alone_each_event_proven(system):
    one, other = cases(system, 2)
    archive = bundle(ExportFilters(case=one.reference))
    manifest, events, checkpoints = check(archive)
    assert manifest["kind"] == "filtered"
    assert {e["case"] for e in events} == {one.reference}
    assert other.reference not in archive.read("events.jsonl").decode()
    (checkpoint,) = checkpoints.values()
    proofs = [json.loads(line) for line in archive.read("proofs.jsonl").decode().splitlines()]
    assert [p["seq"] for p in proofs] == [e["seq"] for e in events]
    for event, proof in zip(events, proofs, strict=True):
        assert proof["tree_size"] == checkpoint["seq"]
        path = [bytes.fromhex(node) for node in proof["path"]]
        root = bytes.fromhex(checkpoint["tree_root"])
        assert path_verify(
            event["seq"] - 1, proof["tree_size"], bytes.fromhex(event["hash"]), path, root
        )
        # A changed body gives another hash, which no longer proves.
        assert not path_verify(
            event["seq"] - 1, proof["tree_size"], hashlib.sha256(b"x").digest(), path, root
        )


def test_a_system_bundle_and_an_empty_one(system, chat_system):
    cases(system, 2)
    factories.ingest(chat_system, factories.chat_payload(1))
    _, events, _ = check(bundle(ExportFilters(system="support-bot")))
    assert events and {e["system"] for e in events} == {"support-bot"}
    manifest, events, _ = check(bundle(ExportFilters(case="WB-NONE-NONE")))
    assert events == [] and manifest["count"] == 0 and manifest["range"]["first_seq"] is None


def test_jsonl_is_the_bundle_lines_and_csv_defuses_formulas(system):
    case = factories.ingest(system, factories.claim_payload(1, external_id="=HYPERLINK(1)"))
    plan = export_plan(ExportFilters(case=case.reference))
    jsonl = b"".join(export_stream(plan, "jsonl"))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(export_stream(plan, "bundle"))))
    assert jsonl == archive.read("events.jsonl")
    rows = list(csv.DictReader(StringIO(b"".join(export_stream(plan, "csv")).decode())))
    assert [int(r["seq"]) for r in rows] == [json.loads(line)["seq"] for line in jsonl.splitlines()]
    received = json.loads(rows[0]["data"])
    assert received["external_id"] == "=HYPERLINK(1)"  # inside JSON text: not a formula
    assert rows[0]["action"] == "case.received" and rows[0]["actor_type"] == "system"


def test_the_command_writes_a_bundle_and_refuses_bad_dates(system, tmp_path):
    cases(system, 1)
    target = tmp_path / "trail.zip"
    err = StringIO()
    call_command("trail_export", "--output", str(target), stderr=err)
    check(zipfile.ZipFile(target))
    assert "wrote" in err.getvalue()
    assert TrailEvent.objects.filter(action="trail.exported").count() == 1
    with pytest.raises(CommandError, match="not a date"):
        call_command("trail_export", "--from", "yesterday")
    with pytest.raises(CommandError, match="ends before it starts"):
        call_command("trail_export", "--from", "2026-02-01", "--to", "2026-01-01")


# --- The screens ------------------------------------------------------------------------------


def test_a_small_export_streams_to_the_compliance_officer(system, dana):
    cases(system, 2)
    client = client_for(dana)
    assert "Export trail" in client.get("/compliance/export/").content.decode()
    response = client.post("/compliance/export/", {"format": "bundle", "system": "claims-ai"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith(
        'attachment; filename="workbench-trail-claims-ai'
    )
    check(zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))))
    event = json.loads(TrailEvent.objects.get(action="trail.exported").body)
    assert event["actor"] == {"type": "user", "id": "comp.dana"}


def test_a_large_export_runs_in_celery_with_progress_then_downloads(system, dana, settings):
    settings.EXPORT_STREAM_MAX_EVENTS = 3
    cases(system, 3)
    client = client_for(dana)
    with pytest.MonkeyPatch.context() as patch:
        from workbench import tasks

        ran = []
        patch.setattr(tasks.trail_export_run, "delay", lambda export_id: ran.append(export_id))
        response = client.post("/compliance/export/", {"format": "jsonl"})
    export = TrailExport.objects.get()
    assert (
        response.status_code == 302 and response["Location"] == f"/compliance/export/{export.id}/"
    )
    assert ran == [] or ran == [str(export.id)]  # enqueued after the commit
    page = client.get(f"/compliance/export/{export.id}/", headers={"HX-Request": "true"})
    assert 'hx-trigger="every 1s"' in page.content.decode()  # polls while queued
    assert client.get(f"/compliance/export/{export.id}/download/").status_code == 404

    tasks.trail_export_run(str(export.id))  # what the worker does
    export.refresh_from_db()
    assert (export.status, export.done, export.total) == ("done", export.total, export.total)
    done = client.get(f"/compliance/export/{export.id}/").content.decode()
    assert "Download" in done and "every 1s" not in done
    download = client.get(f"/compliance/export/{export.id}/download/")
    lines = b"".join(download.streaming_content).splitlines()
    assert len(lines) == export.total
    # Someone else's export stays theirs.
    other = factories.UserFactory(role="compliance")
    assert client_for(other).get(f"/compliance/export/{export.id}/").status_code == 404


def test_an_exports_file_is_deleted_after_the_retention_period(system, dana, settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path
    settings.EXPORT_RETENTION_DAYS = 7
    cases(system, 2)
    from workbench import tasks
    from workbench.celery import app

    export = TrailExport.objects.create(requested_by=dana, format="jsonl")
    tasks.trail_export_run(str(export.id))
    export.refresh_from_db()
    path = tmp_path / f"{export.id}-{export.file_name}"
    assert path.exists()
    client = client_for(dana)
    with time_machine.travel(export.finished_at + timedelta(days=6)):
        assert tasks.exports_expire() == 0
    download = client.get(f"/compliance/export/{export.id}/download/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content).count(b"\n") == export.total
    with time_machine.travel(export.finished_at + timedelta(days=7, seconds=1)):
        assert tasks.exports_expire() == 1
    export.refresh_from_db()
    assert export.status == "expired" and not path.exists()
    gone = client.get(f"/compliance/export/{export.id}/download/")
    assert gone.status_code == 410
    assert "deleted 7 days after it was written" in gone.content.decode()
    assert "Export again" in client.get(f"/compliance/export/{export.id}/").content.decode()
    assert app.conf.beat_schedule["exports-expire"]["schedule"] == 3600.0


@pytest.mark.parametrize("role", ["reviewer", "supervisor", "appeal_reviewer", "admin"])
def test_the_export_is_for_compliance_officers_only_and_refusals_are_logged(db, role, caplog):
    user = factories.UserFactory(role=role)
    with caplog.at_level(logging.WARNING, logger="workbench.compliance"):
        assert client_for(user).get("/compliance/export/").status_code == 404
        assert client_for(user).post("/compliance/export/", {"format": "csv"}).status_code == 404
    assert "not a compliance officer" in caplog.text
    assert Client().get("/compliance/export/").status_code == 302  # to the login page
    assert not TrailEvent.objects.filter(action="trail.exported").exists()


def test_a_bad_export_form_is_refused_with_the_field_named(dana):
    response = client_for(dana).post(
        "/compliance/export/",
        {"format": "bundle", "date_from": "2026-03-01", "date_to": "2026-02-01"},
    )
    assert response.status_code == 422
    assert "choose a date on or after the start" in response.content.decode()


@override_settings(TRAIL_CHECKPOINT_EVERY=1000)
def test_checkpoints_in_a_range_bundle_are_the_ones_inside_it(system):
    cases(system, 1)
    check(bundle(ExportFilters()))
    assert Checkpoint.objects.count() >= 1


def test_the_offline_verifier_accepts_what_the_exporter_writes(system, tmp_path):
    """The exporter and workbench.verify, each written from docs/bundle.md."""
    import subprocess
    import sys

    one, _ = cases(system, 2)
    for name, filters in [
        ("all.zip", ExportFilters()),
        ("case.zip", ExportFilters(case=one.reference)),
        ("system.zip", ExportFilters(system="claims-ai")),
    ]:
        path = tmp_path / name
        path.write_bytes(b"".join(export_stream(export_plan(filters), "bundle")))
        done = subprocess.run(
            [sys.executable, "-m", "workbench.verify", str(path)], capture_output=True, text=True
        )
        assert done.returncode == 0, (name, done.stdout, done.stderr)
        assert "OK" in done.stdout


def test_after_a_key_change_a_bundle_carries_the_new_keys_checkpoints_only(
    system, settings, tmp_path
):
    """A bundle has one public key: the chain runs through the events of the
    old key's checkpoints, up to one of the new key's."""
    import subprocess
    import sys

    from workbench.services.trail import trail_checkpoint

    settings.TRAIL_CHECKPOINT_EVERY = 5
    one, *_ = cases(system, 4)
    trail_checkpoint()
    old = set(Checkpoint.objects.values_list("key_id", flat=True))
    factories.signing_key_change(settings, tmp_path)
    for name, filters in [
        ("all.zip", ExportFilters()),
        ("case.zip", ExportFilters(case=one.reference)),
    ]:
        archive = bundle(filters)
        keys = {
            json.loads(line)["key_id"]
            for line in archive.read("checkpoints.jsonl").decode().splitlines()
        }
        assert keys == {trail_public_key_id()} and not keys & old
        path = tmp_path / name
        path.write_bytes(b"".join(export_stream(export_plan(filters), "bundle")))
        done = subprocess.run(
            [sys.executable, "-m", "workbench.verify", str(path)], capture_output=True, text=True
        )
        assert done.returncode == 0, (name, done.stdout, done.stderr)
