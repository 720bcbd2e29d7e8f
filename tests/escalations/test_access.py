"""Data-subject access: one zip with everything about one subject."""

import io
import json
import uuid
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from escalations.services import appeal_file
from tests import factories
from tests.factories import client_for, decided_case
from workbench.models import TrailEvent

PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture
def dana(db):
    return factories.UserFactory(username="comp.dana", role="compliance")


def subject_zip(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_a_subject_gets_their_cases_decisions_appeal_files_and_a_verifiable_trail(
    system, alice, dana
):
    case = decided_case(system, alice)
    appeal_file(
        case=case,
        statement="<b>My</b> doctor's letter.",
        evidence=[SimpleUploadedFile("letter.pdf", PDF)],
        idempotency_key=uuid.uuid4().hex,
    )
    factories.ingest(system, factories.claim_payload(2))  # someone else's case

    response = client_for(dana).post("/subjects/access/", {"reference": case.subject.reference})
    assert response.status_code == 200
    archive = subject_zip(response)
    document = json.loads(archive.read("subject.json"))
    assert document["subject"]["contact"] == {"email": "ana@example.org", "name": "Ana Ruiz"}
    (only,) = document["cases"]
    assert only["reference"] == case.reference
    assert only["decisions"][0]["verdict"] == "agree"
    (appeal,) = only["appeals"]
    assert appeal["statement"] == "<b>My</b> doctor's letter."  # as written, in JSON
    assert archive.read(appeal["evidence"][0]["file"]) == PDF
    bundle = zipfile.ZipFile(io.BytesIO(archive.read("trail-bundle.zip")))
    manifest = json.loads(bundle.read("manifest.json"))
    assert manifest["kind"] == "filtered" and manifest["filters"]["cases"] == [case.reference]
    lines = bundle.read("events.jsonl").decode().splitlines()
    assert {json.loads(line)["case"] for line in lines} == {case.reference}
    assert TrailEvent.objects.filter(action="subject.access_exported").count() == 1


def test_an_unknown_subject_is_named_and_others_are_refused(system, alice, dana):
    response = client_for(dana).post("/subjects/access/", {"reference": "NOBODY"})
    assert response.status_code == 422
    assert "no subject" in response.content.decode()
    assert client_for(alice).get("/subjects/access/").status_code == 404


def test_the_command_writes_the_zip(system, alice, tmp_path):
    case = decided_case(system, alice)
    target = tmp_path / "subject.zip"
    call_command("subject_access", case.subject.reference, "--output", str(target))
    assert "subject.json" in zipfile.ZipFile(target).namelist()
    with pytest.raises(CommandError, match="no subject"):
        call_command("subject_access", "NOBODY")


def test_a_chat_customer_gets_their_own_turns_and_why_they_contested(chat_system, dana):
    payload = factories.chat_payload(1, text="Where is my parcel 4711?")
    case = factories.ingest(chat_system, payload)
    api = factories.api_client(chat_system)
    reason = "The customer says the parcel never came."
    api.post(f"/api/v1/cases/{case.reference}/contest", {"reason": reason}, "application/json")

    response = client_for(dana).post("/subjects/access/", {"reference": case.subject.reference})
    (only,) = json.loads(subject_zip(response).read("subject.json"))["cases"]
    assert only["input"]["conversation"] == [
        {"role": "customer", "text": "Where is my parcel 4711?"}
    ]
    assert [contest["reason"] for contest in only["contested"]] == [reason]


def test_the_customers_answers_to_the_two_questions_are_in_their_export(system, alice, dana):
    from reviews.services import feedback_record
    from workbench.services import Actor

    case = decided_case(system, alice)
    feedback_record(
        case=case,
        listened=2,
        explained=4,
        comment="Nobody asked me.",
        source="notice",
        actor=Actor.customer(case.subject.reference),
    )

    response = client_for(dana).post("/subjects/access/", {"reference": case.subject.reference})
    (only,) = json.loads(subject_zip(response).read("subject.json"))["cases"]
    [answer] = only["feedback"]
    assert (answer["stage"], answer["listened"], answer["explained"]) == ("decision", 2, 4)
    assert answer["comment"] == "Nobody asked me." and answer["source"] == "notice"
